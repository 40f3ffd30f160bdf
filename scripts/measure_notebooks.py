"""Run notebooks top to bottom and report wall time and the kernel's peak resident memory.

    python scripts/measure_notebooks.py solutions/01_derivation.ipynb notebooks/01_derivation.ipynb

Peak memory is the kernel process's resident set (with its children), sampled every 50 ms: what
Binder's 2 GB limit counts. Prints a markdown table; `--json FILE` also writes the numbers.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import threading
import time
from pathlib import Path

import psutil

from dpo_course.course.notebooks import execute_notebook


def measure(path: Path, timeout: int = 600) -> dict:
    """Run `path` with the course's runner while a thread samples the kernel's resident memory."""
    peak = {"rss": 0}

    @contextlib.contextmanager
    def sampling(pid: int):
        stop = threading.Event()

        def sample() -> None:
            proc = psutil.Process(pid)
            while not stop.is_set():
                try:
                    rss = proc.memory_info().rss + sum(
                        c.memory_info().rss for c in proc.children(recursive=True)
                    )
                    peak["rss"] = max(peak["rss"], rss)
                except psutil.Error:
                    pass
                time.sleep(0.05)

        thread = threading.Thread(target=sample, daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    run = execute_notebook(path, timeout=timeout, watch=sampling)
    return {
        "notebook": str(path),
        "seconds": round(run.seconds, 1),
        "peak_mib": round(peak["rss"] / 2**20),
        "error": run.error,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    os.environ.setdefault("MPLBACKEND", "Agg")
    rows = []
    print("| notebook | seconds | peak MiB | status |\n|---|---|---|---|")
    for path in args.notebooks:
        row = measure(path)
        rows.append(row)
        print(
            f"| {row['notebook']} | {row['seconds']} | {row['peak_mib']} | {row['error'] or 'ok'} |",
            flush=True,
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()

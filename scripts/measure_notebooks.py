"""Run notebooks top to bottom and report wall time and the kernel's peak resident memory.

    python scripts/measure_notebooks.py solutions/01_derivation.ipynb notebooks/01_derivation.ipynb

Peak memory is the kernel process's resident set (with its children), sampled every 50 ms: what
Binder's 2 GB limit counts. Prints a markdown table; `--json FILE` also writes the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from pathlib import Path

import nbformat
import psutil
from nbclient import NotebookClient


def measure(path: Path, timeout: int = 600) -> dict:
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    peak = {"rss": 0}
    stop = threading.Event()

    def sample(pid: int) -> None:
        proc = psutil.Process(pid)
        while not stop.is_set():
            try:
                rss = proc.memory_info().rss + sum(c.memory_info().rss for c in proc.children(recursive=True))
                peak["rss"] = max(peak["rss"], rss)
            except psutil.Error:
                pass
            time.sleep(0.05)

    start = time.time()
    error = None
    with client.setup_kernel():
        pid = client.km.provisioner.process.pid
        thread = threading.Thread(target=sample, args=(pid,), daemon=True)
        thread.start()
        try:
            for index, cell in enumerate(nb.cells):
                client.execute_cell(cell, index)
        except Exception as exc:  # report, keep measuring the others
            error = f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1][:200]}"
        finally:
            stop.set()
            thread.join()
    return {
        "notebook": str(path),
        "seconds": round(time.time() - start, 1),
        "peak_mib": round(peak["rss"] / 2**20),
        "error": error,
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

"""The ``dpo-course`` command: ``course`` (run every notebook headless), ``doctor``, ``progress``, ``train``.

Taught in 00_welcome. Each sub-command lives in its own module; this file only dispatches.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_course(out: Path, folder: Path = ROOT / "solutions", timeout: int = 600) -> int:
    """Execute every notebook of `folder` top to bottom; write the executed copies under `out`."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    out.mkdir(parents=True, exist_ok=True)
    failures = 0
    for path in sorted(folder.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        start = time.time()
        try:
            NotebookClient(
                nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(folder)}}
            ).execute()
            status = "ok"
        except CellExecutionError as exc:
            failures += 1
            status = "FAILED: " + str(exc).strip().splitlines()[-1][:200]
        nbformat.write(nb, out / path.name)
        print(f"{path.name:40s} {time.time() - start:6.1f} s  {status}", flush=True)
    print(f"executed notebooks are in {out}/")
    return 1 if failures else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="dpo-course", description="The DPO course's command line.")
    sub = parser.add_subparsers(dest="command", required=True)
    p_course = sub.add_parser("course", help="execute every solution notebook headless into build/")
    p_course.add_argument("--out", type=Path, default=Path("build"))
    p_course.add_argument("--folder", type=Path, default=ROOT / "solutions")
    sub.add_parser("doctor", help="check this environment and say what to fix", add_help=False)
    sub.add_parser("progress", help="which exercises of a learner's notebooks pass", add_help=False)
    sub.add_parser("train", help="train with TRL from a YAML or command-line config", add_help=False)
    args, rest = parser.parse_known_args(argv)
    if args.command == "course":
        return run_course(args.out, args.folder)
    if args.command == "doctor":
        from dpo_course.course.doctor import main as doctor_main

        return doctor_main(rest)
    if args.command == "progress":
        from dpo_course.course.progress import main as progress_main

        return progress_main(rest)
    from dpo_course.train.trl_command import main as train_main

    return train_main(rest)


if __name__ == "__main__":
    sys.exit(main())

"""The ``dpo-course`` command: ``course`` (run the notebooks headless), ``doctor``, ``progress``, ``train``.

Course tooling for instructors (README, "For instructors"), not taught in a notebook. Each sub-command lives in its own module; this file only dispatches. Every command
that needs the notebooks finds them with `dpo_course.course.notebooks.find_notebooks`, so they work from a
copy of the course after a plain ``pip install .`` as well as from a checkout::

    dpo-course course                          # every solution notebook, executed copies in build/
    dpo-course course --folder notebooks --notebooks 00 01 --out build/students
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dpo_course.course.notebooks import NotebooksNotFound, execute_notebook, find_notebooks, select_notebooks


def run_course(
    out: Path, folder: Path | None = None, wanted: list[str] | None = None, timeout: int = 600
) -> int:
    """Execute the notebooks of `folder` (default: the solutions) top to bottom; write the executed copies."""
    import nbformat

    try:
        folder = find_notebooks(folder, kind="solutions")
    except NotebooksNotFound as exc:
        print(exc, file=sys.stderr)
        return 2
    paths = select_notebooks(folder, wanted)
    if not paths:
        print(f"no notebooks in {folder}" + (f" match {wanted}" if wanted else ""), file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    failures = 0
    for path in paths:
        run = execute_notebook(path, timeout=timeout)
        failures += run.error is not None
        nbformat.write(run.nb, out / path.name)
        status = "ok" if run.error is None else f"FAILED: {run.error}"
        print(f"{path.name:40s} {run.seconds:6.1f} s  {status}", flush=True)
    print(f"{len(paths)} notebook(s) from {folder}; executed copies are in {out}/")
    return 1 if failures else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="dpo-course", description="The DPO course's command line.")
    sub = parser.add_subparsers(dest="command", required=True)
    p_course = sub.add_parser("course", help="execute the solution notebooks headless into build/")
    p_course.add_argument("--out", type=Path, default=Path("build"), help="where the executed copies go")
    p_course.add_argument(
        "--folder", type=Path, default=None, help="the notebooks to run (default: the course's solutions/)"
    )
    p_course.add_argument("--notebooks", nargs="+", metavar="NN", help="only these, by number or name prefix")
    p_course.add_argument("--timeout", type=int, default=600, help="seconds one cell may run (default 600)")
    sub.add_parser("doctor", help="check this environment and say what to fix", add_help=False)
    sub.add_parser("progress", help="which exercises of a learner's notebooks pass", add_help=False)
    sub.add_parser("train", help="train with TRL from a YAML or command-line config", add_help=False)
    args, rest = parser.parse_known_args(argv)
    if args.command == "course":
        if rest:
            parser.error(f"unrecognized arguments: {' '.join(rest)}")
        return run_course(args.out, args.folder, args.notebooks, args.timeout)
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

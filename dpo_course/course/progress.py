"""``dpo-course progress [NOTEBOOK_DIR]``: which exercises of a learner's notebooks pass, per notebook.

Course tooling for instructors during a workshop (README, "For instructors"). Each notebook runs headless, top to bottom, in a fresh kernel (nbclient; the file
is never written) with ``DPO_COURSE_PROGRESS_LOG`` set, so that every ``exNN.qK.check(...)`` appends its
verdict to a log (`dpo_course.exercises.framework`). The exercises a notebook checks are read from its
code (``exNN.qK.check(``); one whose check never ran (a cell above it failed) shows as "not run".
Learners' errors do not stop the run: cells keep executing, as "Run All" with errors allowed would::

    dpo-course progress                       # every notebook `find_notebooks` finds (./notebooks, ...)
    dpo-course progress ~/my-copy --notebooks 01 02 --timeout 300
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from dpo_course.course.notebooks import NotebooksNotFound, execute_notebook, find_notebooks, select_notebooks
from dpo_course.exercises.framework import CORRECT, NOT_ATTEMPTED, PROGRESS_LOG_ENV, WRONG

NOT_RUN = "not run"
ICONS = {CORRECT: "✅", WRONG: "❌", NOT_ATTEMPTED: "📝", NOT_RUN: "⏭️"}
CHECK_CALL = re.compile(r"\b(ex\d+)\.(q\d+)\.check\(")


@dataclass
class NotebookProgress:
    """The verdicts of one notebook: (exercise name, status) in notebook order, plus what went wrong."""

    notebook: str
    exercises: list[tuple[str, str]] = field(default_factory=list)
    cell_errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    failure: str | None = None  # the run itself broke (timeout, dead kernel)

    @property
    def passed(self) -> int:
        return sum(status == CORRECT for _, status in self.exercises)


def exercises_checked(nb) -> list[str]:
    """Names of the exercises that `nb`'s code checks, in order (``ex01.q2.check(`` -> ex01.q2's name)."""
    import importlib

    names: list[str] = []
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        for module, question in CHECK_CALL.findall(source):
            try:
                name = getattr(importlib.import_module(f"dpo_course.exercises.{module}"), question).name
            except (ImportError, AttributeError):
                name = f"{module}.{question}"
            if name not in names:
                names.append(name)
    return names


def run_notebook(path: Path, *, timeout: int = 600, progress_bar: bool = True) -> NotebookProgress:
    """Execute `path` in a fresh kernel (errors allowed) and collect every exercise's last verdict."""
    import nbformat
    from tqdm.auto import tqdm

    nb = nbformat.read(path, as_version=4)
    expected = exercises_checked(nb)
    cells = sum(c.cell_type == "code" for c in nb.cells)
    bar = tqdm(
        total=cells, desc=path.name, unit="cell", leave=False, disable=not progress_bar, file=sys.stderr
    )
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "progress.jsonl"
        # Strict mode would make a wrong answer raise; the learner's kernel draws nothing on screen.
        env = {PROGRESS_LOG_ENV: str(log), "DPO_COURSE_STRICT": "0", "MPLBACKEND": "Agg"}
        try:
            run = execute_notebook(
                path, timeout=timeout, allow_errors=True, env=env, on_cell=lambda i, c: bar.update(1)
            )
        finally:
            bar.close()
        verdicts: dict[str, str] = {}
        if log.exists():
            for line in log.read_text(encoding="utf-8").splitlines():
                entry = json.loads(line)
                verdicts[entry["exercise"]] = entry["status"]  # the last check of an exercise counts
    names = expected + [n for n in verdicts if n not in expected]
    return NotebookProgress(
        path.name,
        exercises=[(name, verdicts.get(name, NOT_RUN)) for name in names],
        cell_errors=run.cell_errors,
        seconds=run.seconds,
        failure=run.error,
    )


def render(reports: list[NotebookProgress]) -> str:
    """The per-notebook table of verdicts and a total."""
    lines = []
    for r in reports:
        head = f"{r.notebook}: {r.passed}/{len(r.exercises)} exercises pass ({r.seconds:.0f} s)"
        lines.append(head if r.exercises else f"{r.notebook}: no exercises ({r.seconds:.0f} s)")
        width = max((len(name) for name, _ in r.exercises), default=0)
        lines += [f"  {ICONS.get(status, '?')} {name:<{width}}  {status}" for name, status in r.exercises]
        lines += [f"  ⚠️  {err}" for err in r.cell_errors]
        if r.failure:
            lines.append(f"  ⚠️  the run stopped: {r.failure}")
    total = sum(len(r.exercises) for r in reports)
    lines.append(
        f"\nTotal: {sum(r.passed for r in reports)}/{total} exercises pass in {len(reports)} notebook(s)."
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="dpo-course progress", description="Which exercises of your notebooks pass."
    )
    parser.add_argument(
        "folder",
        nargs="?",
        type=Path,
        default=None,
        help="your notebooks (default: $DPO_COURSE_NOTEBOOKS, ./notebooks, or the current directory)",
    )
    parser.add_argument(
        "--notebooks", nargs="+", metavar="NN", help="only these notebooks, by number or name prefix"
    )
    parser.add_argument("--timeout", type=int, default=600, help="seconds one cell may run (default 600)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        args.folder = find_notebooks(args.folder)
    except NotebooksNotFound as exc:
        print(exc, file=sys.stderr)
        return 2
    paths = select_notebooks(args.folder, args.notebooks)
    if not paths:
        print(
            f"no notebooks in {args.folder}" + (f" match {args.notebooks}" if args.notebooks else ""),
            file=sys.stderr,
        )
        return 2
    reports = [run_notebook(p, timeout=args.timeout, progress_bar=not args.no_progress) for p in paths]
    print(render(reports))
    return 1 if any(r.failure for r in reports) else 0


if __name__ == "__main__":
    sys.exit(main())

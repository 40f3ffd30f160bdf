"""``dpo-course progress [NOTEBOOK_DIR]``: which exercises of a learner's notebooks pass, per notebook.

Taught in 00_welcome. Each notebook runs headless, top to bottom, in a fresh kernel (nbclient; the file
is never written) with ``DPO_COURSE_PROGRESS_LOG`` set, so that every ``exNN.qK.check(...)`` appends its
verdict to a log (`dpo_course.exercises.framework`). The exercises a notebook checks are read from its
code (``exNN.qK.check(``); one whose check never ran (a cell above it failed) shows as "not run".
Learners' errors do not stop the run: cells keep executing, as "Run All" with errors allowed would::

    dpo-course progress                       # every notebook in ./notebooks
    dpo-course progress ~/my-copy --notebooks 01 02 --timeout 300
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

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


@contextlib.contextmanager
def _environ(**values: str):
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def run_notebook(path: Path, *, timeout: int = 600, progress_bar: bool = True) -> NotebookProgress:
    """Execute `path` in a fresh kernel (errors allowed) and collect every exercise's last verdict."""
    import nbformat
    from nbclient import NotebookClient
    from tqdm.auto import tqdm

    nb = nbformat.read(path, as_version=4)
    expected = exercises_checked(nb)
    report = NotebookProgress(path.name)
    code = [(i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        allow_errors=True,
        resources={"metadata": {"path": str(path.parent)}},
    )
    start = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "progress.jsonl"
        # Strict mode would make a wrong answer raise; the learner's kernel draws nothing on screen.
        with _environ(**{PROGRESS_LOG_ENV: str(log), "DPO_COURSE_STRICT": "0", "MPLBACKEND": "Agg"}):
            bar = tqdm(
                total=len(code),
                desc=path.name,
                unit="cell",
                leave=False,
                disable=not progress_bar,
                file=sys.stderr,
            )
            try:
                with client.setup_kernel():
                    for index, cell in code:
                        client.execute_cell(cell, index)
                        bar.update(1)
                        for out in cell.get("outputs", []):
                            if out.get("output_type") == "error":
                                report.cell_errors.append(
                                    f"cell {index}: {out.get('ename')}: {out.get('evalue', '')}"[:200]
                                )
            except Exception as exc:  # a timeout or a dead kernel: report it, keep the verdicts so far
                report.failure = f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1][:160] if str(exc).strip() else ''}"
            finally:
                bar.close()
        verdicts: dict[str, str] = {}
        if log.exists():
            for line in log.read_text(encoding="utf-8").splitlines():
                entry = json.loads(line)
                verdicts[entry["exercise"]] = entry["status"]  # the last check of an exercise counts
    report.seconds = time.time() - start
    names = expected + [n for n in verdicts if n not in expected]
    report.exercises = [(name, verdicts.get(name, NOT_RUN)) for name in names]
    return report


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


def select_notebooks(folder: Path, wanted: list[str] | None) -> list[Path]:
    """The notebooks of `folder`, or only those whose name starts with one of `wanted` ("01", "02_dpo")."""
    paths = sorted(p for p in folder.glob("*.ipynb") if not p.name.startswith("."))
    if wanted:
        paths = [p for p in paths if any(p.name.startswith(w) or p.stem == w for w in wanted)]
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="dpo-course progress", description="Which exercises of your notebooks pass."
    )
    parser.add_argument(
        "folder", nargs="?", type=Path, default=Path("notebooks"), help="your notebooks (default: notebooks/)"
    )
    parser.add_argument(
        "--notebooks", nargs="+", metavar="NN", help="only these notebooks, by number or name prefix"
    )
    parser.add_argument("--timeout", type=int, default=600, help="seconds one cell may run (default 600)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if not args.folder.is_dir():
        print(f"{args.folder} is not a folder: pass the folder that holds your notebooks", file=sys.stderr)
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

"""One source, two notebooks: make the student notebooks in ``notebooks/`` from ``solutions/``.

Run ``python -m dpo_course.course.authoring`` to regenerate, ``--check`` to fail when they have drifted
(the test suite runs it). Solutions mark the code a learner writes:

    def pi_star(...):
        # BEGIN SOLUTION
        ...the answer...
        # END SOLUTION

becomes ``raise NotImplementedError("Your code here")`` at the marker's indentation. A marker can
name its own stub, e.g. ``# BEGIN SOLUTION stub: answer = None``. In markdown cells,
``<!-- BEGIN SOLUTION -->`` ... ``<!-- END SOLUTION -->`` becomes a prompt to write the answer.
``--from-percent SRC.py DEST.ipynb`` turns a ``# %%`` script into a notebook (authoring aid).
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from pathlib import Path

from dpo_course.course.notebooks import NotebooksNotFound, find_course_root

BEGIN = re.compile(r"^(?P<indent>[ \t]*)# BEGIN SOLUTION(?:\s+stub:\s*(?P<stub>.+))?\s*$")
END = re.compile(r"^[ \t]*# END SOLUTION\s*$")
MD_SOLUTION = re.compile(r"<!-- BEGIN SOLUTION -->.*?<!-- END SOLUTION -->", re.S)
DEFAULT_STUB = 'raise NotImplementedError("Your code here")'
REPO_URL = "https://github.com/dpo-course/dpo-course"
# The first code cell of every notebook: installs the course on Colab only; a no-op elsewhere.
SETUP_CELL = f"""# Setup: on Google Colab this installs the course; anywhere else it does nothing.
import sys

if "google.colab" in sys.modules:
    import subprocess

    course = "dpo-course @ git+{REPO_URL}"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", course], check=True)"""
MD_STUB = "*Write your answer here.*"
BRANCH = "main"
# The first cell of every notebook: "Open in Colab" and "launch Binder" badges for that very file. `sync`
# writes it (solutions/ link to solutions/, notebooks/ to notebooks/) and finds it again by this tag.
BADGE_TAG = "badges"
_GITHUB_PATH = REPO_URL.removeprefix("https://github.com/")


def colab_url(folder: str, name: str) -> str:
    """Colab's URL for `folder/name` on GitHub's main branch (Colab opens it straight from GitHub)."""
    return f"https://colab.research.google.com/github/{_GITHUB_PATH}/blob/{BRANCH}/{folder}/{name}"


def binder_url(folder: str, name: str) -> str:
    """mybinder.org's URL that builds the repository (binder/) and opens `folder/name` in JupyterLab."""
    return f"https://mybinder.org/v2/gh/{_GITHUB_PATH}/{BRANCH}?labpath={folder}%2F{name}"


def badges_markdown(folder: str, name: str) -> str:
    """The two badges as markdown (also used in the README's course map)."""
    return (
        f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({colab_url(folder, name)}) "
        f"[![Launch Binder](https://mybinder.org/badge_logo.svg)]({binder_url(folder, name)})"
    )


def badge_cell(folder: str, name: str) -> dict:
    """The tagged markdown cell holding `folder/name`'s badges."""
    return {
        "cell_type": "markdown",
        "id": BADGE_TAG,
        "metadata": {"tags": [BADGE_TAG]},
        "source": badges_markdown(folder, name),
    }


def _is_badge_cell(cell: dict) -> bool:
    return BADGE_TAG in cell.get("metadata", {}).get("tags", [])


def has_badges(nb: dict, folder: str, name: str) -> bool:
    """Whether the first cell of `nb` is the current badge cell for `folder/name`."""
    first = nb["cells"][0] if nb.get("cells") else {}
    return _is_badge_cell(first) and _source(first) == badges_markdown(folder, name)


def with_badges(nb: dict, folder: str, name: str) -> dict:
    """A copy of `nb` whose first cell is the current badge cell (an older one is replaced, never duplicated)."""
    nb = copy.deepcopy(nb)
    nb["cells"] = [badge_cell(folder, name)] + [c for c in nb["cells"] if not _is_badge_cell(c)]
    return nb


class MarkerError(ValueError):
    pass


def strip_code(source: str, where: str = "") -> str:
    """Replace every marked solution block of a code cell by its stub."""
    out, inside = [], False
    for number, line in enumerate(source.split("\n"), 1):
        begin = BEGIN.match(line)
        if begin:
            if inside:
                raise MarkerError(f"{where} line {number}: BEGIN SOLUTION inside another block")
            inside = True
            out.append(begin["indent"] + (begin["stub"] or DEFAULT_STUB).strip())
        elif END.match(line):
            if not inside:
                raise MarkerError(f"{where} line {number}: END SOLUTION without BEGIN")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise MarkerError(f"{where}: BEGIN SOLUTION is never closed")
    return "\n".join(out)


def _source(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def clean(nb: dict) -> dict:
    """A copy of the notebook without outputs, execution counts or widget state."""
    nb = copy.deepcopy(nb)
    nb.get("metadata", {}).pop("widgets", None)
    for cell in nb["cells"]:
        cell["source"] = _source(cell)
        if cell["cell_type"] == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
        cell.get("metadata", {}).pop("execution", None)
    return nb


def to_student(nb: dict, name: str = "") -> dict:
    """The student version of a solution notebook."""
    nb = clean(nb)
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            cell["source"] = strip_code(cell["source"], f"{name} cell {i}")
        elif cell["cell_type"] == "markdown":
            cell["source"] = MD_SOLUTION.sub(MD_STUB, cell["source"])
    return nb


def dumps(nb: dict) -> str:
    return json.dumps(nb, indent=1, ensure_ascii=False, sort_keys=True) + "\n"


def sync(root: Path | None = None, check: bool = False) -> list[str]:
    """Write (or with `check`, compare) every student notebook; returns the problems found.

    `root` holds solutions/ and notebooks/ (default: `find_course_root`, the course copy being worked on).
    """
    root = find_course_root(root)
    problems = []
    solutions = sorted((root / "solutions").glob("*.ipynb"))
    students = {p.name for p in (root / "notebooks").glob("*.ipynb")}
    for path in solutions:
        nb = json.loads(path.read_text())
        if any(c.get("outputs") for c in nb["cells"] if c["cell_type"] == "code"):
            problems.append(f"{path.relative_to(root)} has outputs: commit notebooks without outputs")
        if check and not has_badges(nb, "solutions", path.name):
            problems.append(
                f"{path.relative_to(root)}: the first cell must be its badge cell: run python -m dpo_course.course.authoring"
            )
        nb = with_badges(nb, "solutions", path.name)
        try:
            text = dumps(with_badges(to_student(nb, path.name), "notebooks", path.name))
        except MarkerError as exc:
            problems.append(str(exc))
            continue
        first_code = next((_source(c) for c in nb["cells"] if c["cell_type"] == "code"), "")
        if first_code.strip() != SETUP_CELL.strip():
            problems.append(f"{path.relative_to(root)}: the first code cell must be authoring.SETUP_CELL")
        target = root / "notebooks" / path.name
        if check:
            if not target.exists():
                problems.append(
                    f"notebooks/{path.name} is missing: run python -m dpo_course.course.authoring"
                )
            elif target.read_text() != text:
                problems.append(f"notebooks/{path.name} differs from what solutions/{path.name} generates")
        else:
            target.parent.mkdir(exist_ok=True)
            target.write_text(text)
            path.write_text(dumps(clean(nb)))
        students.discard(path.name)
    for orphan in sorted(students):
        problems.append(f"notebooks/{orphan} has no twin in solutions/")
    return problems


def from_percent(text: str) -> dict:
    """A notebook from a ``# %%`` script (``# %% [markdown]`` cells hold ``# ``-prefixed lines)."""
    cells, kind, lines = [], None, []

    def flush():
        if kind is None:
            return
        body = "\n".join(lines).strip("\n")
        if kind == "markdown":
            body = "\n".join(
                line[2:] if line.startswith("# ") else line.lstrip("#") for line in body.split("\n")
            )
            cells.append({"cell_type": "markdown", "metadata": {}, "source": body})
        else:
            cells.append(
                {"cell_type": "code", "metadata": {}, "source": body, "outputs": [], "execution_count": None}
            )

    for line in text.split("\n"):
        if line.startswith("# %%"):
            flush()
            kind, lines = ("markdown" if "[markdown]" in line else "code"), []
        elif kind is not None:
            lines.append(line)
    flush()
    return {
        "cells": cells,
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Make the student notebooks from the solutions.")
    parser.add_argument(
        "--check", action="store_true", help="fail if notebooks/ differs from what solutions/ makes"
    )
    parser.add_argument(
        "--from-percent", nargs=2, metavar=("SRC", "DEST"), help="convert a # %% script to a notebook"
    )
    parser.add_argument(
        "--root", type=Path, default=None, help="the course folder (default: the one holding ./solutions)"
    )
    args = parser.parse_args(argv)
    if args.from_percent:
        src, dest = map(Path, args.from_percent)
        nb = from_percent(src.read_text())
        for cell in nb["cells"]:
            cell["id"] = None
        nb = json.loads(dumps(nb))
        for i, cell in enumerate(nb["cells"]):
            cell["id"] = f"{dest.stem[:12]}-{i:03d}"
        dest.write_text(dumps(nb))
        return 0
    try:
        problems = sync(args.root, check=args.check)
    except NotebooksNotFound as exc:
        print(exc, file=sys.stderr)
        return 2
    for p in problems:
        print(p, file=sys.stderr)
    if not problems:
        print("notebooks/ is in sync with solutions/" if args.check else "wrote notebooks/ from solutions/")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

"""One source, two notebooks: the generator strips solutions, and the repo's notebooks are in sync."""

import json
from pathlib import Path

import pytest

from dpo_course.authoring import DEFAULT_STUB, MD_STUB, MarkerError, strip_code, sync, to_student

ROOT = Path(__file__).resolve().parent.parent


def test_strip_code_replaces_the_block_at_its_indent():
    src = "def f(x):\n    # BEGIN SOLUTION\n    y = x + 1\n    return y\n    # END SOLUTION\nprint(f)"
    assert strip_code(src) == f"def f(x):\n    {DEFAULT_STUB}\nprint(f)"


def test_strip_code_custom_stub():
    src = "# BEGIN SOLUTION stub: answer = None\nanswer = 42\n# END SOLUTION"
    assert strip_code(src) == "answer = None"


@pytest.mark.parametrize("src", ["# BEGIN SOLUTION\nx = 1", "x = 1\n# END SOLUTION", "# BEGIN SOLUTION\n# BEGIN SOLUTION\n# END SOLUTION"])
def test_bad_markers_raise(src):
    with pytest.raises(MarkerError):
        strip_code(src)


def test_to_student_clears_outputs_and_markdown_answers():
    nb = {
        "cells": [
            {"cell_type": "markdown", "metadata": {}, "source": "Why?\n<!-- BEGIN SOLUTION -->Because.<!-- END SOLUTION -->"},
            {"cell_type": "code", "metadata": {}, "source": "x = 1", "outputs": [{"output_type": "stream"}], "execution_count": 3},
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    out = to_student(nb)
    assert out["cells"][0]["source"] == f"Why?\n{MD_STUB}"
    assert out["cells"][1]["outputs"] == [] and out["cells"][1]["execution_count"] is None
    assert nb["cells"][1]["outputs"], "the input notebook is not modified"


def test_repo_notebooks_are_in_sync():
    assert sync(ROOT, check=True) == []


def test_every_notebook_has_a_twin_and_no_outputs():
    solutions = sorted(p.name for p in (ROOT / "solutions").glob("*.ipynb"))
    students = sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
    assert solutions == students and solutions
    for folder in ("solutions", "notebooks"):
        for path in (ROOT / folder).glob("*.ipynb"):
            nb = json.loads(path.read_text())
            assert not any(c.get("outputs") for c in nb["cells"] if c["cell_type"] == "code"), path

"""One source, two notebooks: the generator strips solutions, and the repo's notebooks are in sync."""

import json
from pathlib import Path

import pytest

from dpo_course.course.authoring import DEFAULT_STUB, MD_STUB, MarkerError, strip_code, sync, to_student

ROOT = Path(__file__).resolve().parents[2]


def test_strip_code_replaces_the_block_at_its_indent():
    src = "def f(x):\n    # BEGIN SOLUTION\n    y = x + 1\n    return y\n    # END SOLUTION\nprint(f)"
    assert strip_code(src) == f"def f(x):\n    {DEFAULT_STUB}\nprint(f)"


def test_strip_code_custom_stub():
    src = "# BEGIN SOLUTION stub: answer = None\nanswer = 42\n# END SOLUTION"
    assert strip_code(src) == "answer = None"


@pytest.mark.parametrize(
    "src",
    [
        "# BEGIN SOLUTION\nx = 1",
        "x = 1\n# END SOLUTION",
        "# BEGIN SOLUTION\n# BEGIN SOLUTION\n# END SOLUTION",
    ],
)
def test_bad_markers_raise(src):
    with pytest.raises(MarkerError):
        strip_code(src)


def test_to_student_clears_outputs_and_markdown_answers():
    nb = {
        "cells": [
            {
                "cell_type": "markdown",
                "metadata": {},
                "source": "Why?\n<!-- BEGIN SOLUTION -->Because.<!-- END SOLUTION -->",
            },
            {
                "cell_type": "code",
                "metadata": {},
                "source": "x = 1",
                "outputs": [{"output_type": "stream"}],
                "execution_count": 3,
            },
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


# ---------------------------------------------------------------- badges (Colab and Binder) in every notebook

from dpo_course.course.authoring import BADGE_TAG, SETUP_CELL, badge_cell, binder_url, colab_url, with_badges  # noqa: E402


def _tiny_notebook() -> dict:
    return {
        "cells": [
            {"cell_type": "markdown", "id": "title", "metadata": {}, "source": "# 99 Tiny"},
            {
                "cell_type": "code",
                "id": "setup",
                "metadata": {},
                "source": SETUP_CELL,
                "outputs": [],
                "execution_count": None,
            },
            {
                "cell_type": "code",
                "id": "answer",
                "metadata": {},
                "source": "# BEGIN SOLUTION\nx = 1\n# END SOLUTION",
                "outputs": [],
                "execution_count": None,
            },
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def test_badge_urls_are_exactly_colab_and_binder_for_that_file():
    assert colab_url("notebooks", "01_derivation.ipynb") == (
        "https://colab.research.google.com/github/dpo-course/dpo-course/blob/main/notebooks/01_derivation.ipynb"
    )
    assert binder_url("solutions", "01_derivation.ipynb") == (
        "https://mybinder.org/v2/gh/dpo-course/dpo-course/main?labpath=solutions%2F01_derivation.ipynb"
    )
    cell = badge_cell("notebooks", "01_derivation.ipynb")
    assert cell["cell_type"] == "markdown" and cell["metadata"]["tags"] == [BADGE_TAG]
    assert "colab-badge.svg" in cell["source"] and "mybinder.org/badge_logo.svg" in cell["source"]


def test_with_badges_replaces_an_old_badge_cell_instead_of_adding_one():
    nb = with_badges(_tiny_notebook(), "notebooks", "old_name.ipynb")
    nb = with_badges(nb, "solutions", "99_tiny.ipynb")
    tagged = [c for c in nb["cells"] if BADGE_TAG in c["metadata"].get("tags", [])]
    assert len(tagged) == 1 and nb["cells"][0] is tagged[0]
    assert "solutions/99_tiny.ipynb" in tagged[0]["source"] and "old_name" not in tagged[0]["source"]
    assert [c["id"] for c in nb["cells"][1:]] == ["title", "setup", "answer"]


def test_sync_adds_badges_to_both_versions_and_check_catches_a_missing_one(tmp_path):
    (tmp_path / "solutions").mkdir()
    src = tmp_path / "solutions" / "99_tiny.ipynb"
    src.write_text(json.dumps(_tiny_notebook()))
    assert any("badge cell" in p for p in sync(tmp_path, check=True)), (
        "a notebook without badges must fail --check"
    )
    assert sync(tmp_path) == []
    solution = json.loads(src.read_text())
    student = json.loads((tmp_path / "notebooks" / "99_tiny.ipynb").read_text())
    assert solution["cells"][0]["source"].count("solutions%2F99_tiny.ipynb") == 1
    assert student["cells"][0]["source"].count("notebooks%2F99_tiny.ipynb") == 1
    assert "/blob/main/notebooks/99_tiny.ipynb" in student["cells"][0]["source"]
    assert len(student["cells"]) == 4 and student["cells"][3]["source"] == DEFAULT_STUB
    before = src.read_text()
    assert sync(tmp_path) == [] and src.read_text() == before, "running it again changes nothing"
    assert sync(tmp_path, check=True) == []


def test_every_repo_notebook_opens_with_its_own_badges():
    for folder in ("solutions", "notebooks"):
        for path in sorted((ROOT / folder).glob("*.ipynb")):
            first = json.loads(path.read_text())["cells"][0]
            assert first["metadata"].get("tags") == [BADGE_TAG], path
            assert (
                f"{folder}%2F{path.name}" in first["source"]
                and f"/blob/main/{folder}/{path.name}" in first["source"]
            ), path


def test_readme_course_map_has_each_notebooks_badges():
    import re

    from dpo_course.course.authoring import badges_markdown

    rows = re.findall(
        r"^\| (\d\d) \| \[[^\]]+\]\(notebooks/([^)]+)\) \| (.*?) \| (.*?) \|",
        (ROOT / "README.md").read_text(),
        re.M,
    )
    assert len(rows) >= 10, "the course map lists every notebook"
    for number, name, badges, _time in rows:
        assert name.startswith(number) and badges == badges_markdown("notebooks", name), name
    listed = {name for _, name, _, _ in rows}
    assert {p.name for p in (ROOT / "notebooks").glob("*.ipynb")} <= listed, (
        "a notebook is missing from the README map"
    )

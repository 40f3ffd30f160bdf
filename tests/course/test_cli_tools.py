"""Workshop tools: `dpo-course doctor` (is this machine ready?) and `dpo-course progress` (which exercises pass)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from dpo_course.course import cli, doctor, notebooks, progress
from dpo_course.course.authoring import SETUP_CELL
from dpo_course.exercises import ex00, ex01

ROOT = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------------------------- doctor


def test_doctor_reports_this_machine_ready(capsys):
    assert doctor.main([]) == 0
    out = capsys.readouterr().out
    assert "ready for the course" in out and "0 failed" in out
    for name in ("Python", "course", "torch", "trl", "transformers", "device", "toy model", "notebooks"):
        assert any(line.startswith(f"✓ {name} ") for line in out.splitlines()), (
            f"no passing {name!r} line:\n{out}"
        )
    assert any(
        line.startswith(("✓ memory ", "! memory ")) for line in out.splitlines()
    )  # low memory only warns
    assert "loaded offline and answered a prompt" in out


def test_doctor_reports_a_planted_old_trl_and_says_how_to_fix_it(monkeypatch, capsys):
    real = doctor._installed_version
    monkeypatch.setattr(doctor, "_installed_version", lambda name: "0.9.6" if name == "trl" else real(name))
    assert cli.main(["doctor", "--skip-model"]) == 1  # the CLI dispatches to doctor.main
    out = capsys.readouterr().out
    assert "✗ trl" in out and "0.9.6, needs <1.17,>=1.16" in out
    assert "pip install 'trl<1.17,>=1.16'" in out and "1 problem(s) to fix first" in out


def test_doctor_single_checks_on_planted_problems(tmp_path):
    assert doctor.check_python(">=3.10", "3.9.18").status == doctor.FAIL
    assert doctor.check_python(">=3.10", "3.11.7").status == doctor.OK
    assert (
        doctor.check_package(Requirement("torch>=2.4,<2.15")).status == doctor.OK
    )  # 2.13.0+cpu: a local tag is fine
    missing = doctor.check_package(Requirement("surely-not-installed-pkg>=1"))
    assert missing.status == doctor.FAIL and "not installed" in missing.detail
    assert doctor.check_memory(min_free_gb=1e6).status == doctor.WARN  # a warning, not a failure
    assert doctor.check_notebooks(tmp_path / "nowhere").status == doctor.FAIL
    (tmp_path / "00_welcome.ipynb").write_text("{not json")
    broken = doctor.check_notebooks(tmp_path)
    assert broken.status == doctor.FAIL and "00_welcome.ipynb" in broken.detail
    assert doctor.check_notebooks(ROOT / "notebooks").status == doctor.OK


def test_doctor_fails_when_the_command_points_at_a_moved_module(monkeypatch):
    import importlib.metadata

    stale = importlib.metadata.EntryPoint("dpo-course", "dpo_course.cli:main", "console_scripts")
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: [stale])
    check = doctor.check_install()
    assert check.status == doctor.FAIL and "dpo_course.cli:main" in check.detail and "make setup" in check.fix
    monkeypatch.undo()
    assert doctor.check_install().status == doctor.OK


def test_doctor_reads_the_requirements_of_pyproject():
    requires_python, reqs = doctor.course_requirements()
    by_name = {r.name: r for r in reqs}
    assert requires_python == ">=3.10"
    assert by_name["trl"].specifier.contains("1.16.0") and not by_name["trl"].specifier.contains("1.17.0")
    assert "pytest" not in by_name, "the test extra is not a learner's requirement"


# ---------------------------------------------------------------------------------- progress


def _cell(source: str, kind: str = "code") -> dict:
    cell = {"cell_type": kind, "metadata": {}, "source": source}
    return cell | ({"outputs": [], "execution_count": None} if kind == "code" else {})


def _notebook(cells: list[dict]) -> dict:
    for i, cell in enumerate(cells):
        cell["id"] = f"c{i}"
    meta = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}}
    return {"cells": cells, "metadata": meta, "nbformat": 4, "nbformat_minor": 5}


def _welcome_exercise_only(folder: str) -> dict:
    """00_welcome's setup cell and its ex00 exercise cell, as `folder` has them (stub or solved).

    The rest of 00_welcome (sampling from the model) takes a minute; the exercise cell needs only the
    `toyworld` import from above it.
    """
    nb = json.loads((ROOT / folder / "00_welcome.ipynb").read_text())
    exercise = [c for c in nb["cells"] if c["cell_type"] == "code" and "ex00.q1.check(" in c["source"]]
    assert len(exercise) == 1, "00_welcome should check ex00.q1 in one cell"
    return _notebook(
        [_cell(SETUP_CELL), _cell("from dpo_course import toyworld"), _cell(exercise[0]["source"])]
    )


@pytest.fixture()
def learner(tmp_path):
    """A learner's folder: 00_welcome with ex00 unsolved, a solved copy, and a notebook with mistakes."""
    (tmp_path / "00_welcome.ipynb").write_text(json.dumps(_welcome_exercise_only("notebooks")))
    (tmp_path / "00_welcome_solved.ipynb").write_text(json.dumps(_welcome_exercise_only("solutions")))
    mixed = _notebook(
        [
            _cell("# A wrong answer, a cell error, and a check that never runs"),
            _cell(
                "from dpo_course.exercises import ex00, ex01\n"
                "from dpo_course.toyworld import reward\n\n"
                "def mean_reward(prompts, responses):\n"
                "    return sum(reward(p, r) for p, r in zip(prompts, responses))  # forgot to divide\n\n"
                "ex00.q1.check(mean_reward)"
            ),
            _cell("ex01.q1.check(optimal_policy)  # NameError: never defined, so the check never runs"),
        ]
    )
    (tmp_path / "99_mixed.ipynb").write_text(json.dumps(mixed))
    return tmp_path


def test_progress_reads_exercise_names_from_the_code():
    nb = json.loads((ROOT / "notebooks" / "00_welcome.ipynb").read_text())
    assert progress.exercises_checked(nb) == [ex00.q1.name]


def test_progress_pass_and_not_attempted_on_00_welcome(learner, capsys):
    before = {p.name: p.read_text() for p in learner.iterdir()}
    assert progress.main([str(learner), "--notebooks", "00", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "00_welcome.ipynb: 0/1 exercises pass" in out and f"📝 {ex00.q1.name}  not attempted" in out
    assert "00_welcome_solved.ipynb: 1/1 exercises pass" in out and f"✅ {ex00.q1.name}  correct" in out
    assert "99_mixed" not in out, "--notebooks 00 selects by prefix"
    assert "Total: 1/2 exercises pass in 2 notebook(s)." in out
    assert {p.name: p.read_text() for p in learner.iterdir()} == before, (
        "the learner's files are never written"
    )


def test_progress_wrong_answer_and_a_check_that_never_ran(learner):
    report = progress.run_notebook(learner / "99_mixed.ipynb", progress_bar=False)
    assert report.exercises == [(ex00.q1.name, progress.WRONG), (ex01.q1.name, progress.NOT_RUN)]
    assert len(report.cell_errors) == 1 and "NameError" in report.cell_errors[0] and report.failure is None
    text = progress.render([report])
    assert f"❌ {ex00.q1.name}" in text and "not run" in text and "NameError" in text


def test_progress_says_when_nothing_matches(tmp_path, capsys):
    assert progress.main([str(tmp_path)]) == 2
    assert progress.main([str(tmp_path / "missing")]) == 2
    assert "no notebooks" in capsys.readouterr().err


# ---------------------------------------------------------------------------------- finding and running notebooks


def _course_copy(root: Path) -> Path:
    """A folder shaped like the course: notebooks/ and solutions/, each with one tiny notebook."""
    for kind in ("notebooks", "solutions"):
        (root / kind).mkdir(parents=True)
        (root / kind / "00_tiny.ipynb").write_text(json.dumps(_notebook([_cell(f"print('{kind}')")])))
    return root


def test_find_notebooks_tries_the_folder_then_the_env_then_the_current_directory(tmp_path, monkeypatch):
    course = _course_copy(tmp_path / "course")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.delenv(notebooks.NOTEBOOKS_ENV, raising=False)
    monkeypatch.setattr(notebooks, "checkout_root", lambda: None)  # as after a non-editable install
    monkeypatch.chdir(course)
    assert notebooks.find_notebooks() == course / "notebooks"
    assert notebooks.find_notebooks(kind="solutions") == course / "solutions"
    monkeypatch.chdir(course / "notebooks")  # inside the folder itself
    assert notebooks.find_notebooks() == course / "notebooks"
    monkeypatch.chdir(elsewhere)
    with pytest.raises(notebooks.NotebooksNotFound) as missing:
        notebooks.find_notebooks()
    message = str(missing.value)
    assert str(elsewhere / "notebooks") in message and notebooks.NOTEBOOKS_ENV in message, message
    monkeypatch.setenv(notebooks.NOTEBOOKS_ENV, str(course / "solutions"))
    assert notebooks.find_notebooks() == course / "solutions"
    assert notebooks.find_notebooks(course / "notebooks") == course / "notebooks", "a given folder wins"
    with pytest.raises(notebooks.NotebooksNotFound, match="is not a folder"):
        notebooks.find_notebooks(tmp_path / "nowhere")
    assert notebooks.find_course_root(course) == course
    monkeypatch.chdir(course)
    assert notebooks.find_course_root() == course.resolve()


def test_the_checkout_is_found_from_anywhere_in_an_editable_install(tmp_path, monkeypatch):
    monkeypatch.delenv(notebooks.NOTEBOOKS_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    assert notebooks.checkout_root() == ROOT
    assert notebooks.find_notebooks() == ROOT / "notebooks"
    assert doctor.check_notebooks().status == doctor.OK


def test_course_command_runs_the_selected_notebooks_and_reports_a_failure(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "nbs"
    folder.mkdir()
    (folder / "00_ok.ipynb").write_text(json.dumps(_notebook([_cell("x = 6 * 7\nprint(x)")])))
    (folder / "01_bad.ipynb").write_text(json.dumps(_notebook([_cell("1 / 0"), _cell("print('never')")])))
    out = tmp_path / "build"
    assert cli.main(["course", "--folder", str(folder), "--notebooks", "00", "--out", str(out)]) == 0
    executed = json.loads((out / "00_ok.ipynb").read_text())
    assert "".join(executed["cells"][0]["outputs"][0]["text"]) == "42\n"
    assert not (out / "01_bad.ipynb").exists(), "--notebooks 00 selects by prefix"
    assert cli.main(["course", "--folder", str(folder), "--out", str(out)]) == 1
    text = capsys.readouterr().out
    assert "00_ok.ipynb" in text and "FAILED: CellExecutionError" in text and "ZeroDivisionError" in text
    run = notebooks.execute_notebook(folder / "01_bad.ipynb", allow_errors=True)
    assert run.error is None and len(run.cell_errors) == 1 and "ZeroDivisionError" in run.cell_errors[0]
    assert run.nb.cells[1].outputs[0]["text"] == "never\n", "errors allowed: later cells still run"

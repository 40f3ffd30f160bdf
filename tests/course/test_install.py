"""After a plain (non-editable) `pip install .`, the course tools work on a copy of the notebooks.

The Colab setup cell installs the course that way, so the package lives in site-packages and its own path
says nothing about where the notebooks are. To stay fast the fresh venv installs only the course itself
(`--no-deps`) and sees this venv's dependencies through a path file; the course's code and metadata come
from the fresh install, which comes first on its path.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _fresh_install(tmp: Path) -> Path:
    """A venv in `tmp` with the course installed from a copy of its source, not editable; its bin/."""
    source = tmp / "source"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "dpo_course", source / "dpo_course", ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # A plain path line: this venv's packages come after the fresh venv's own (and its .pth files,
    # the editable install's finder among them, are not run).
    Path(purelib, "zz_course_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps"]
    subprocess.run([*pip, "--no-build-isolation", "--no-index", str(source)], check=True)
    return venv / "bin"


def _run(bin_dir: Path, cwd: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DPO_COURSE_NOTEBOOKS")}
    env.update(PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    return subprocess.run(
        [str(bin_dir / "dpo-course"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_doctor_course_and_progress_after_a_plain_pip_install(tmp_path):
    bin_dir = _fresh_install(tmp_path)
    copy = tmp_path / "my-course"
    for kind in ("notebooks", "solutions"):
        shutil.copytree(ROOT / kind, copy / kind)
    where = {  # a notebook that says which dpo_course its kernel imports
        "cells": [
            {
                "cell_type": "code",
                "execution_count": None,
                "id": "where",
                "metadata": {},
                "outputs": [],
                "source": "import dpo_course\nprint(dpo_course.__file__)",
            }
        ],
        "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    (copy / "solutions" / "99_where.ipynb").write_text(json.dumps(where))
    venv = bin_dir.parent

    doctor = _run(bin_dir, copy, "doctor")
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    lines = doctor.stdout.splitlines()
    course_line = next(line for line in lines if line.startswith("✓ course "))
    assert "installed:" in course_line and str(venv) in course_line, course_line
    notebooks_line = next(line for line in lines if line.startswith("✓ notebooks "))
    count = len(list((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")))
    assert f"{count} in {(copy / 'notebooks').resolve()}" in notebooks_line, notebooks_line
    assert "ready for the course" in doctor.stdout

    course = _run(bin_dir, copy, "course", "--notebooks", "00", "99", "--out", "build")
    assert course.returncode == 0, course.stdout + course.stderr
    assert "00_welcome.ipynb" in course.stdout and "99_where.ipynb" in course.stdout
    assert f"2 notebook(s) from {copy / 'solutions'}" in course.stdout.replace(str(copy.resolve()), str(copy))
    executed = json.loads((copy / "build" / "99_where.ipynb").read_text())
    printed = "".join(executed["cells"][0]["outputs"][0]["text"]).strip()
    assert printed.startswith(str(venv)), f"the kernel imported {printed}, not the fresh install"
    assert (copy / "build" / "00_welcome.ipynb").exists()

    progress = _run(bin_dir, copy, "progress", "--notebooks", "00", "--no-progress")
    assert progress.returncode == 0, progress.stdout + progress.stderr
    assert "00_welcome.ipynb: 0/1 exercises pass" in progress.stdout and "not attempted" in progress.stdout
    assert "Total: 0/1 exercises pass in 1 notebook(s)." in progress.stdout

    lost = _run(bin_dir, tmp_path, "progress")  # no notebooks here: the error says where it looked
    assert lost.returncode == 2 and "DPO_COURSE_NOTEBOOKS" in lost.stderr and str(tmp_path) in lost.stderr

"""Binder's recipe works: binder/requirements.txt installs the course into a fresh venv, postBuild runs.

This is what repo2docker does, minus Docker: a new Python 3.11 venv, `pip install -r binder/requirements.txt`
from the repository root, then `binder/postBuild`. The PyTorch CPU index named in the file is unreachable
offline, so the test installs torch first (pip takes the CPU wheel this machine holds) and drops the
`--extra-index-url` line; everything else is the file as Binder reads it. Slow (a few minutes): it
installs the whole stack, reusing pip's cache.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BINDER = ROOT / "binder"
TORCH_SPEC = "torch==2.13.0"


def _requirements() -> list[str]:
    lines = [line.split("#", 1)[0].strip() for line in (BINDER / "requirements.txt").read_text().splitlines()]
    return [line for line in lines if line]


def test_requirements_pin_the_cpu_torch_and_install_this_checkout():
    reqs = _requirements()
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in reqs
    assert TORCH_SPEC in reqs, "the Binder image must get the same torch as `make setup`"
    assert "." in reqs or "-e ." in reqs, "the course itself must be installed from the repository root"
    assert (BINDER / "runtime.txt").read_text().strip() == "python-3.11"


def test_postbuild_is_an_executable_bash_script_that_loads_the_toy_model():
    post = BINDER / "postBuild"
    text = post.read_text()
    assert text.startswith("#!/usr/bin/env bash\n") and "set -euo pipefail" in text
    assert os.access(post, os.X_OK), "repo2docker runs postBuild directly: it must be executable (chmod +x)"
    assert "load_sft_model('cpu')" in text and "jupyterlab-manager" in text
    subprocess.run(["bash", "-n", str(post)], check=True)  # parses


def _python311() -> str | None:
    for name in ("python3.11",):
        found = shutil.which(name)
        if found:
            return found
    return sys.executable if sys.version_info[:2] == (3, 11) else None


@pytest.mark.slow
def test_binder_requirements_install_into_a_fresh_venv(tmp_path):
    python = _python311()
    if python is None:
        pytest.skip("needs a Python 3.11 interpreter (binder/runtime.txt asks Binder for 3.11)")
    venv = tmp_path / "venv"
    bin_dir = venv / "bin"
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"))
    }
    env.update(
        PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        HF_HUB_OFFLINE="1",
    )
    offline_reqs = tmp_path / "requirements.txt"
    offline_reqs.write_text(
        "\n".join(r for r in _requirements() if not r.startswith("--extra-index-url")) + "\n"
    )

    def run(*cmd, cwd=ROOT, timeout=400):
        start = time.time()
        done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
        assert done.returncode == 0, (
            f"{' '.join(map(str, cmd))} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
        print(f"{time.time() - start:6.1f} s  {' '.join(map(str, cmd))[:100]}")
        return done.stdout

    run(python, "-m", "venv", str(venv))
    # One pip call from the repository root, as repo2docker runs it: `.` in the file means this checkout.
    # --no-compile skips writing bytecode for torch's thousands of files (a minute on a busy machine).
    run(bin_dir / "python", "-m", "pip", "install", "-q", "--no-compile", TORCH_SPEC, "-r", str(offline_reqs))
    run("bash", str(BINDER / "postBuild"))
    # From elsewhere, so `import dpo_course` finds the installed copy (with its weights), not the checkout.
    out = run(
        bin_dir / "python",
        "-c",
        "import dpo_course, torch; from dpo_course.toyworld import load_sft_model; "
        "m, tok = load_sft_model('cpu'); print(dpo_course.__file__, torch.__version__, sum(p.numel() for p in m.parameters()))",
        cwd=tmp_path,
    )
    where, torch_version, n_params = out.split()
    assert Path(where).is_relative_to(venv), f"imported the checkout, not the installed course: {where}"
    assert torch_version.startswith("2.13.0")
    assert 0.5e6 < int(n_params) < 2e6, n_params

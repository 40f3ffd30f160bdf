"""The real-model switch, second half: solution notebooks 05, 06, 08 and 09 on the tiny Qwen2.

Split from tests/course/test_real_model_switch.py so that `make test`'s two pytest-xdist workers (``--dist loadfile``
keeps a file on one worker) share the notebook runs; tests/fixtures/tiny_qwen.py says which file runs which.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import tiny_qwen as tiny_qwen_module  # loaded by tests/course/conftest.py

ROOT = Path(__file__).resolve().parents[2]
SOLUTIONS = sorted((ROOT / "solutions").glob("[0-9][0-9]_*.ipynb"))


@pytest.mark.slow
@pytest.mark.parametrize(
    "notebook",
    [p for p in SOLUTIONS if p.name[:2] in tiny_qwen_module.NOTEBOOKS_SECOND],
    ids=lambda p: p.stem,
)
def test_solution_notebook_runs_on_a_tiny_qwen(notebook, tiny_qwen):
    """Issue 15, deliver 1 and 3: the notebook, top to bottom, with the switch on and strict checks."""
    failure = tiny_qwen_module.run_switched(notebook, tiny_qwen)
    assert not failure, failure

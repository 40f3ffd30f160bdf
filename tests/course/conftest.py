"""Set-up shared by the real-model switch tests: the tiny Qwen2 of tests/fixtures/tiny_qwen.py.

Loaded once here (as the module ``tiny_qwen``) for both halves of the notebook runs, so that each test file can
``import tiny_qwen`` and take the `tiny_qwen` fixture.
"""

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load_tiny_qwen():
    spec = importlib.util.spec_from_file_location("tiny_qwen", ROOT / "tests" / "fixtures" / "tiny_qwen.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["tiny_qwen"] = module
    spec.loader.exec_module(module)
    return module


TINY_QWEN = sys.modules.get("tiny_qwen") or _load_tiny_qwen()


@pytest.fixture(scope="session")
def tiny_qwen(tmp_path_factory) -> dict[str, Path]:
    """``{"sft": folder, "base": folder}``: the tiny Qwen2, built once per session (per xdist worker, ~8 s CPU)."""
    return TINY_QWEN.build(tmp_path_factory.mktemp("tiny_qwen"))

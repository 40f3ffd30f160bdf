"""Shared test set-up: offline hub, a headless matplotlib, the toy SFT model, and the devices.

The devices live here and nowhere else: a test that should run on every device takes the `device`
fixture (``def test_x(device): ...``) and runs on ``"cpu"`` always and on ``"cuda"`` where there is one;
elsewhere its cuda case shows as skipped, not as passed. A test that needs CUDA outright is marked
``@pytest.mark.gpu`` (or ``pytestmark = pytest.mark.gpu`` for a whole file) and skips without it.
"""

import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

HAS_CUDA = torch.cuda.is_available()


def pytest_collection_modifyitems(config, items):
    """Every test marked `gpu` (the `device` fixture's cuda case included) skips where there is no CUDA."""
    if HAS_CUDA:
        return
    skip = pytest.mark.skip(reason="needs CUDA; this machine has none")
    for item in items:
        if item.get_closest_marker("gpu") is not None:
            item.add_marker(skip)


@pytest.fixture(params=["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def device(request) -> str:
    """The device a test runs on: "cpu", and "cuda" when there is one (skipped otherwise)."""
    return request.param


@pytest.fixture(scope="session")
def sft():
    """The toy SFT model and tokenizer on the CPU (tests must not change its weights)."""
    from dpo_course.toyworld import load_sft_model

    return load_sft_model("cpu")

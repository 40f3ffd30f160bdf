"""Small helpers every notebook uses: picking a device, seeding, eval mode. Taught in 00_welcome."""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Iterator

import numpy as np
import torch


def get_device(prefer: str | None = None) -> torch.device:
    """Return the best available device: CUDA, then Apple's MPS, then the CPU.

    `prefer` (or the environment variable ``DPO_COURSE_DEVICE``) forces one, e.g. ``"cpu"``.
    """
    prefer = prefer or os.environ.get("DPO_COURSE_DEVICE")
    if prefer:
        return torch.device(prefer)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) so a run repeats exactly on the same machine."""
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


@contextlib.contextmanager
def eval_mode(*models: torch.nn.Module) -> Iterator[None]:
    """Put `models` in eval mode (dropout off) for the block, then restore each one's ``.training`` flag.

    Restores the flag of every submodule, not just the top one, so a model that had part of itself
    frozen in eval mode comes back that way; and it restores on an exception too. Models given twice
    (a policy that is its own reference) are handled once. Used by `generate`, `train_dpo` and the
    evaluation code rather than by the notebooks directly.
    """
    saved: dict[int, list[tuple[torch.nn.Module, bool]]] = {}
    for model in models:
        if id(model) not in saved:
            saved[id(model)] = [(m, m.training) for m in model.modules()]
            model.eval()
    try:
        yield
    finally:
        for flags in saved.values():
            for module, training in flags:
                module.training = training

"""The training loop's parts that DPO and KTO share: which rows go in which batch, in what order.

Taught in 03_training_with_trl (`train_dpo`) and 05_variants (`train_kto`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

GROUP_BATCHES = 8
"""With length grouping, rows are sorted by length within groups of this many batches (HF's
`LengthGroupedSampler` uses 50): more means less padding but batches that repeat across epochs."""


def batch_plan(
    lengths: Sequence[int], batch_size: int, epochs: float, *, seed: int, group_by_length: bool = True
) -> list[tuple[float, list[int]]]:
    """The micro-batches of a run: ``(epoch reached at its end, row indices)``, seeded.

    Each epoch is a fresh random permutation of the rows (``torch.randperm`` on a generator seeded
    with `seed`), cut into batches of `batch_size`. With `group_by_length`, the permutation is cut
    into groups of `GROUP_BATCHES` batches, each group sorted by `lengths` (longest first; ties keep
    their random order), cut into batches, and the batches of the epoch shuffled: a batch then holds
    rows of similar length, so it pads to little more than its own rows. A fractional `epochs` (TRL's
    ``num_train_epochs`` is a float) keeps the first ``ceil(epochs x batches per epoch)`` batches.
    """
    n = len(lengths)
    if n == 0 or batch_size < 1 or not 0 < epochs < math.inf:
        raise ValueError(f"need rows, batch_size >= 1 and 0 < epochs < inf; got {n}, {batch_size}, {epochs}")
    gen = torch.Generator().manual_seed(seed)
    per_epoch = math.ceil(n / batch_size)
    plan: list[tuple[float, list[int]]] = []
    for epoch in range(math.ceil(epochs)):
        order = torch.randperm(n, generator=gen).tolist()
        if group_by_length:
            group = GROUP_BATCHES * batch_size
            order = [
                i for s in range(0, n, group) for i in sorted(order[s : s + group], key=lambda i: -lengths[i])
            ]
        batches = [order[s : s + batch_size] for s in range(0, n, batch_size)]
        if group_by_length:
            batches = [batches[i] for i in torch.randperm(len(batches), generator=gen).tolist()]
        seen = 0
        for batch in batches:
            seen += len(batch)
            plan.append((epoch + seen / n, batch))
    return plan[: math.ceil(epochs * per_epoch)]

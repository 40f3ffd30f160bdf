"""One DPO optimisation step: the step `train_dpo` runs, the benchmarks time and 04/09 measure."""

from __future__ import annotations

import torch

from dpo_course.logprobs.forward import concatenated_forward
from dpo_course.losses import dpo_loss


def dpo_step(
    policy,
    optimizer: torch.optim.Optimizer,
    batch: dict[str, torch.Tensor],
    *,
    reference=None,
    reference_logps: tuple[torch.Tensor, torch.Tensor] | None = None,
    beta: float = 0.1,
    fused: bool = False,
) -> float:
    """One DPO step: policy forward + backward, reference forward (or precomputed log-probs), optimizer step.

    Returns the loss. Exactly one of `reference` (a frozen model) and `reference_logps` (its
    ``(chosen, rejected)`` log-probs, computed before training) must be given.

    Taught in 09_scaling_up.
    """
    if (reference is None) == (reference_logps is None):
        raise ValueError("give exactly one of reference (a model) and reference_logps (precomputed)")
    policy_chosen, policy_rejected = concatenated_forward(policy, batch, fused=fused)  # (B,), (B,)
    if reference is not None:
        with torch.no_grad():
            reference_logps = concatenated_forward(reference, batch, fused=fused)
    losses, _, _ = dpo_loss(policy_chosen, policy_rejected, *reference_logps, beta=beta)
    loss = losses.mean()
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return loss.item()

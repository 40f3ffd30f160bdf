"""One DPO step: the step `train_dpo` runs per batch, the benchmarks time and 04/09 measure.

`dpo_forward` scores a ``[chosen; rejected]`` batch and computes the loss looked up in the registry;
`dpo_step` adds the backward pass and the optimizer update. `train_dpo` calls `dpo_forward` inside
the shared loop (which adds accumulation, clipping and the schedule), so the step the notebooks and
benchmarks time is the step the trainer runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dpo_course.logprobs.forward import completion_lengths, concatenated_forward
from dpo_course.train.config import DPOTrainConfig


@dataclass
class StepOutput:
    """What `dpo_forward` returns: the mean loss (with gradients) and the (B,) tensors TRL logs from."""

    loss: torch.Tensor
    chosen_rewards: torch.Tensor
    rejected_rewards: torch.Tensor
    policy_chosen_logps: torch.Tensor
    policy_rejected_logps: torch.Tensor

    def stats(self) -> dict[str, float]:
        """TRL's metric names and meanings: rewards are beta * log-ratios, margins their difference."""
        c, r = self.chosen_rewards, self.rejected_rewards
        return {
            "rewards/chosen": c.mean().item(),
            "rewards/rejected": r.mean().item(),
            "rewards/accuracies": (c > r).float().mean().item(),
            "rewards/margins": (c - r).mean().item(),
            "logps/chosen": self.policy_chosen_logps.detach().mean().item(),
            "logps/rejected": self.policy_rejected_logps.detach().mean().item(),
        }


def _reference_tensors(
    config, batch, reference, reference_logps, like: torch.Tensor
) -> dict[str, torch.Tensor]:
    if not config.spec.needs_reference:
        return {}
    if config.reference_free:  # the DPO paper code's ablation: log pi_ref taken as 0
        rc = rr = torch.zeros_like(like)
    elif (reference is None) == (reference_logps is None):
        raise ValueError("give exactly one of reference (a model) and reference_logps (precomputed)")
    elif reference is not None:
        with torch.no_grad():
            rc, rr = concatenated_forward(
                reference, batch, average=config.average_logps, fused=config.fused, ld_alpha=config.ld_alpha
            )
    else:
        rc, rr = reference_logps
    return {"reference_chosen_logps": rc, "reference_rejected_logps": rr}


def dpo_forward(
    policy,
    batch: dict[str, torch.Tensor],
    config: DPOTrainConfig,
    *,
    reference=None,
    reference_logps: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> StepOutput:
    """Score the batch under the policy (and the reference), then ``LOSSES[config.loss_type]``.

    `batch` is a `PreferenceCollator` batch (2B rows, ``[chosen; rejected]``). The registry entry says
    whether log-probs are summed or averaged, whether a reference is needed (exactly one of
    `reference`, a frozen model, and `reference_logps`, its precomputed ``(chosen, rejected)``;
    neither with ``config.reference_free``) and whether completion lengths are. It is the per-batch
    work of `train_dpo` (03_training_with_trl) and of `dpo_step`.
    """
    spec = config.spec
    pc, pr = concatenated_forward(
        policy, batch, average=spec.average_logps, fused=config.fused, ld_alpha=config.ld_alpha
    )  # (B,), (B,)
    tensors = {"policy_chosen_logps": pc, "policy_rejected_logps": pr}
    tensors |= _reference_tensors(config, batch, reference, reference_logps, pc)
    if spec.needs_lengths:
        tensors |= dict(zip(("chosen_lengths", "rejected_lengths"), completion_lengths(batch), strict=True))
    losses, chosen_rewards, rejected_rewards = spec.compute(tensors, config)
    return StepOutput(losses.mean(), chosen_rewards, rejected_rewards, pc, pr)


def dpo_step(
    policy,
    optimizer: torch.optim.Optimizer,
    batch: dict[str, torch.Tensor],
    *,
    reference=None,
    reference_logps: tuple[torch.Tensor, torch.Tensor] | None = None,
    beta: float = 0.1,
    fused: bool = False,
    config: DPOTrainConfig | None = None,
) -> float:
    """One DPO step: policy forward + backward, reference forward (or precomputed log-probs), optimizer step.

    Returns the loss. Exactly one of `reference` (a frozen model) and `reference_logps` (its
    ``(chosen, rejected)`` log-probs, computed before training) must be given. `config` (a
    `DPOTrainConfig`) picks the loss and its settings; without one, DPO's sigmoid loss with `beta`
    and `fused`. This is `dpo_forward`, the function `train_dpo` runs per batch, plus the update.

    Taught in 09_scaling_up.
    """
    config = config or DPOTrainConfig(beta=beta, fused=fused, progress=False)
    out = dpo_forward(policy, batch, config, reference=reference, reference_logps=reference_logps)
    out.loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return out.loss.item()

"""KTO, the unpaired loss: one completion and a thumbs-up or thumbs-down per example.

Taught in 05_variants (with `dpo_course.train.train_kto`).
"""

from __future__ import annotations

import torch
from torch import Tensor

from dpo_course.losses._checks import check_non_negative, check_positive, check_same_shape
from dpo_course.losses.registry import UNPAIRED_INPUTS, register_loss


def _kto_rewards(tensors, kwargs, out) -> tuple[Tensor, Tensor]:
    # Per row: beta * (policy - reference); the trainer splits them into desirable / undesirable means.
    return out[1], out[1]


@register_loss(
    "kto",
    inputs=UNPAIRED_INPUTS,
    config_fields={
        "beta": "beta",
        "desirable_weight": "desirable_weight",
        "undesirable_weight": "undesirable_weight",
    },
    rewards=_kto_rewards,
)
def kto_loss(
    policy_logps: Tensor,
    reference_logps: Tensor,
    desirable: Tensor,
    kl: Tensor | float,
    beta: float = 0.1,
    desirable_weight: float = 1.0,
    undesirable_weight: float = 1.0,
) -> tuple[Tensor, Tensor]:
    """The KTO loss (Ethayarajh et al. 2024, Sec. 4; TRL's code cites it as Eqn 7), unpaired data.

    Each example is one completion with a thumbs-up (``desirable[i] = True``) or thumbs-down.
    With ``r = policy_logps - reference_logps`` (summed log-probs, shape ``(B,)``) and the
    reference point ``z0 = max(kl, 0)``, treated as a constant::

        desirable:    loss = desirable_weight   * (1 - sigmoid(beta (r - z0)))
        undesirable:  loss = undesirable_weight * (1 - sigmoid(beta (z0 - r)))

    i.e. ``lambda_y - v(x, y)`` for the paper's value function ``v``. ``kl`` is the batch estimate
    of KL(pi || pi_ref): TRL uses the mean of ``policy - reference`` log-probs of *mismatched*
    (prompt, completion) pairs from the same batch. It is a scalar (a float or a one-element
    tensor); it is clamped at 0 and detached here, as in TRL 1.16's ``KTOTrainer``.
    TRL returns the losses ordered ``[desirable; undesirable]``; ours keep the input order.

    Args:
        desirable: ``(B,)`` bool tensor, True for desirable completions.
        desirable_weight, undesirable_weight: lambda_D and lambda_U, finite and >= 0. The paper
            suggests ``lambda_D n_D / (lambda_U n_U)`` in ``[1, 4/3]``.

    Returns:
        ``(losses, rewards)``, each ``(B,)``; ``rewards = beta * r``, detached.

    Taught in 05_variants (through `train_kto`).
    """
    check_positive("beta", beta)
    check_non_negative("desirable_weight", desirable_weight)
    check_non_negative("undesirable_weight", undesirable_weight)
    check_same_shape(policy_logps=policy_logps, reference_logps=reference_logps, desirable=desirable)
    if desirable.dtype != torch.bool:
        raise TypeError(f"desirable must be a bool tensor, got dtype {desirable.dtype}")
    kl = torch.as_tensor(kl, dtype=policy_logps.dtype, device=policy_logps.device)
    if kl.numel() != 1:
        raise ValueError(f"kl must be a scalar (one batch-level estimate), got shape {tuple(kl.shape)}")
    z0 = kl.detach().reshape(()).clamp(min=0)  # () the reference point; no gradient flows into it
    logratios = policy_logps - reference_logps  # (B,)
    desirable_losses = desirable_weight * (1 - torch.sigmoid(beta * (logratios - z0)))
    undesirable_losses = undesirable_weight * (1 - torch.sigmoid(beta * (z0 - logratios)))
    losses = torch.where(desirable, desirable_losses, undesirable_losses)
    return losses, beta * logratios.detach()

"""Preference-optimization losses as pure functions of per-sequence log-probs, and their registry.

Every loss takes tensors of shape ``(B,)`` (one number per sequence: the log-probability of a
completion, summed or averaged over its tokens, as its docstring says) and returns *per-example*
losses of shape ``(B,)``; the caller takes the mean. Nothing here knows about models, tokenizers or
devices. Rewards returned next to a loss are detached, for logging; `implicit_reward` carries gradients.

- registry.py: `LossSpec`, `LOSSES`, `register_loss`: each loss declared once, with what a trainer needs.
- dpo.py: DPO/cDPO (02), IPO, hinge, sigmoid_norm (length-normalised DPO), R-DPO (05).
- reference_free.py: SimPO and ORPO, on averaged log-probs, no reference model (05).
- kto.py: KTO, unpaired (05).

Taught in 02_dpo_loss_from_scratch (DPO, cDPO, implicit rewards) and 05_variants (the rest).
"""

from dpo_course.losses.dpo import (
    dpo_loss,
    hinge_loss,
    implicit_reward,
    ipo_loss,
    rdpo_loss,
    sigmoid_norm_loss,
)
from dpo_course.losses.kto import kto_loss
from dpo_course.losses.reference_free import orpo_loss, simpo_loss
from dpo_course.losses.registry import LOSSES, LossSpec, register_loss

__all__ = [
    "LOSSES",
    "LossSpec",
    "dpo_loss",
    "hinge_loss",
    "implicit_reward",
    "ipo_loss",
    "kto_loss",
    "orpo_loss",
    "rdpo_loss",
    "register_loss",
    "sigmoid_norm_loss",
    "simpo_loss",
]

"""Argument checks shared by every loss, and a stable log(1 - exp(x)).

They raise early with the argument's name, because a silently broadcast (B,) against (B, 1), a
negative or infinite beta, or a log-prob above 0 trains a wrong model without erroring.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def check_positive(name: str, value: float) -> None:
    if not 0 < value < math.inf:  # also rejects NaN
        raise ValueError(f"{name} must be finite and > 0, got {value!r}")


def check_non_negative(name: str, value: float) -> None:
    if not 0 <= value < math.inf:
        raise ValueError(f"{name} must be finite and >= 0, got {value!r}")


def check_finite(name: str, value: float) -> None:
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")


def check_same_shape(**tensors: Tensor) -> None:
    names = list(tensors)
    first = tensors[names[0]]
    for name in names[1:]:
        if tensors[name].shape != first.shape:
            raise ValueError(
                f"{name} has shape {tuple(tensors[name].shape)} but {names[0]} has shape "
                f"{tuple(first.shape)}; all log-prob tensors must have the same shape (B,)"
            )


def check_log_probs(**tensors: Tensor) -> None:
    """Raise naming the argument if a log-prob is above 0: a probability above 1 is a bug upstream.

    The length-normalised losses take ``log`` of odds or averages of these, where a positive value
    would not fail loudly but give a meaningless loss.
    """
    for name, t in tensors.items():
        if bool((t > 0).any()):
            raise ValueError(
                f"{name} must be log-probabilities (<= 0), got a maximum of {t.max().item():.4g}: "
                "a probability above 1 (scores instead of log-probs, or logits not log-softmaxed?)"
            )


def log1mexp(x: Tensor) -> Tensor:
    """log(1 - exp(x)) for x < 0, without cancellation (Maechler 2012, "Accurately computing log(1-exp(-|a|))").

    Near 0, ``exp(x)`` rounds to 1 and ``log1p(-exp(x))`` loses every digit, so there we use
    ``log(-expm1(x))``; far below 0, ``expm1`` loses digits instead, so there we use ``log1p``.
    The switch point -log 2 is where the two are equally good.
    """
    return torch.where(x < -0.6931471805599453, torch.log1p(-torch.exp(x)), torch.log(-torch.expm1(x)))

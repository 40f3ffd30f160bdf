"""The loss registry: each loss declared once, with what a trainer needs to know to call it.

A trainer looks a loss up by name (``LOSSES[config.loss_type]``, TRL's ``loss_type`` names where TRL
has one) and calls `LossSpec.compute`; it holds no loss math and no ``if loss_type == ...`` chain.
Adding a loss is one function and one `register_loss` entry (a decorator on the function);
tests/train/test_train.py registers one in the test alone and trains with it. Not yet taught in a notebook:
05_variants picks losses by name through `DPOTrainConfig(loss_type=...)`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from torch import Tensor

# The tensors a trainer can hand a loss, by their names in the course's fixed vocabulary. A spec's
# ``inputs`` lists the ones its function takes, in the function's positional order.
PAIRED_INPUTS = ("policy_chosen_logps", "policy_rejected_logps")
REFERENCE_INPUTS = ("reference_chosen_logps", "reference_rejected_logps")
LENGTH_INPUTS = ("chosen_lengths", "rejected_lengths")  # (B,) completion tokens of y_w, y_l
UNPAIRED_INPUTS = ("policy_logps", "reference_logps", "desirable", "kl")  # KTO
KNOWN_INPUTS = frozenset(PAIRED_INPUTS + REFERENCE_INPUTS + LENGTH_INPUTS + UNPAIRED_INPUTS)

RewardsFn = Callable[[Mapping[str, Tensor], Mapping[str, Any], tuple], tuple[Tensor, Tensor]]


@dataclasses.dataclass(frozen=True)
class LossSpec:
    """What a trainer needs to know about one loss. Calling the spec calls the loss function.

    Fields:
        name: the ``loss_type`` it is registered under.
        fn: the pure loss function; returns ``(losses, ...)`` with per-example losses first.
        inputs: the tensors ``fn`` takes positionally, named as in `KNOWN_INPUTS`; a reference is needed
            when they include reference log-probs, completion lengths when they include ``chosen_lengths``.
        average_logps: True if ``fn`` wants log-probs averaged over completion tokens, False if summed.
        config_fields: ``fn`` keyword -> the config field it is read from (``{"gamma": "simpo_gamma"}``).
        rewards: how to get ``(chosen_rewards, rejected_rewards)`` for logging from ``(tensors, kwargs,
            fn's output)``; None when ``fn`` returns ``(losses, chosen_rewards, rejected_rewards)``.
    """

    name: str
    fn: Callable[..., tuple[Tensor, ...]]
    inputs: tuple[str, ...]
    average_logps: bool = False
    config_fields: Mapping[str, str] = dataclasses.field(default_factory=dict)
    rewards: RewardsFn | None = None

    @property
    def needs_reference(self) -> bool:
        return any(name.startswith("reference_") for name in self.inputs)

    @property
    def needs_lengths(self) -> bool:
        return "chosen_lengths" in self.inputs

    @property
    def paired(self) -> bool:
        return self.inputs[:2] == PAIRED_INPUTS

    def __call__(self, *args, **kwargs) -> tuple[Tensor, ...]:
        return self.fn(*args, **kwargs)

    def kwargs(self, config: Any) -> dict[str, Any]:
        """The keyword arguments of ``fn`` read from `config` (plus its ``loss_kwargs`` mapping, if any)."""
        return {arg: getattr(config, f) for arg, f in self.config_fields.items()} | dict(
            getattr(config, "loss_kwargs", None) or {}
        )

    def compute(self, tensors: Mapping[str, Tensor], config: Any) -> tuple[Tensor, Tensor, Tensor]:
        """``(losses, chosen_rewards, rejected_rewards)``, each (B,), from named tensors and a config."""
        missing = [name for name in self.inputs if name not in tensors]
        if missing:
            raise ValueError(f"loss {self.name!r} needs {missing}; got {sorted(tensors)}")
        kwargs = self.kwargs(config)
        out = self.fn(*(tensors[name] for name in self.inputs), **kwargs)
        if self.rewards is None:
            return out[0], out[1], out[2]
        return (out[0], *self.rewards(tensors, kwargs, out))


LOSSES: dict[str, LossSpec] = {}
"""Every registered loss by name (what ``DPOTrainConfig(loss_type=...)`` looks up)."""


def register_loss(
    name: str,
    *,
    inputs: tuple[str, ...],
    average_logps: bool = False,
    config_fields: Mapping[str, str] | None = None,
    rewards: RewardsFn | None = None,
    replace: bool = False,
) -> Callable[[Callable], Callable]:
    """Decorator: declare ``fn`` as the loss `name` (see `LossSpec` for the fields); returns ``fn`` unchanged.

    Raises if `name` is taken (unless ``replace=True``) or an input name is not one a trainer provides.
    Not yet taught in a notebook (tests/train/test_train.py shows it).
    """
    unknown = [i for i in inputs if i not in KNOWN_INPUTS]
    if unknown:
        raise ValueError(f"register_loss({name!r}): unknown inputs {unknown}; known: {sorted(KNOWN_INPUTS)}")

    def decorate(fn: Callable) -> Callable:
        if name in LOSSES and not replace:
            raise ValueError(f"loss {name!r} is already registered (pass replace=True to override it)")
        LOSSES[name] = LossSpec(
            name, fn, tuple(inputs), average_logps, MappingProxyType(dict(config_fields or {})), rewards
        )
        return fn

    return decorate

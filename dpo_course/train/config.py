"""`DPOTrainConfig`: everything `train_dpo` and `dpo_step` read, validated on creation.

Taught in 03_training_with_trl (and 05_variants for the loss fields).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict, dataclass, field

from dpo_course.losses import LOSSES, LossSpec
from dpo_course.train.loop import LoopConfig

# Config fields a loss reads (beyond beta, which nearly every loss reads): set away from its default
# for a loss that ignores it, the setting would be silently lost, so the config refuses it.
_LOSS_FIELDS = ("label_smoothing", "simpo_gamma", "orpo_lambda", "rdpo_alpha")


@dataclass
class DPOTrainConfig(LoopConfig):
    """Everything `train_dpo` needs to know; validated on creation. Taught in 03_training_with_trl (with `train_dpo`).

    The loop's settings (learning_rate, epochs, batch_size, max_length, max_grad_norm, lr_scheduler,
    seed, device, progress) come from `LoopConfig`, shared with `KTOTrainConfig`.
    """

    beta: float = field(
        default=0.1, metadata={"help": "KL strength: higher keeps the policy nearer the reference."}
    )
    loss_type: str = field(
        default="sigmoid", metadata={"help": "A paired loss registered in dpo_course.losses.LOSSES."}
    )
    label_smoothing: float = field(
        default=0.0, metadata={"help": "cDPO's label noise e (sigmoid loss only), in [0, 0.5)."}
    )
    simpo_gamma: float = field(default=1.0, metadata={"help": "SimPO's target margin gamma."})
    orpo_lambda: float = field(default=0.1, metadata={"help": "ORPO's weight on the odds-ratio term."})
    rdpo_alpha: float = field(
        default=0.0, metadata={"help": "R-DPO's length penalty alpha, nats per token of |y_w| - |y_l|."}
    )
    ld_alpha: float | None = field(
        default=None,
        metadata={
            "help": "LD-DPO (TRL's ld_alpha): weight of the longer answer's extra tokens in [0, 1]; None: 1."
        },
    )
    reference_free: bool = field(
        default=False,
        metadata={"help": "Take reference log-probs as 0 (the DPO paper code's ablation): no reference."},
    )
    loss_kwargs: dict = field(
        default_factory=dict, metadata={"help": "Extra keyword arguments for the loss function."}
    )
    gradient_accumulation_steps: int = field(
        default=1, metadata={"help": "Micro-batches per optimizer step."}
    )
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay."})
    group_by_length: bool = field(
        default=True,
        metadata={
            "help": "Batch pairs of similar length (sorted within groups of 8 batches, batch order shuffled; "
            "seeded): far less padding. False: plain shuffled batches."
        },
    )
    precompute_ref_log_probs: bool = field(
        default=True,
        metadata={"help": "Score the reference once before training, so no second model sits in memory."},
    )
    fused: bool = field(
        default=False, metadata={"help": "Use fused log-probs (never holds the (B, T, V) logits)."}
    )

    def __post_init__(self) -> None:
        spec = LOSSES.get(self.loss_type)
        paired = sorted(name for name, s in LOSSES.items() if s.paired)
        if spec is None or not spec.paired:
            extra = " (KTO is unpaired: use train_kto)" if self.loss_type == "kto" else ""
            raise ValueError(f"loss_type must be one of {paired}, got {self.loss_type!r}{extra}")
        super().__post_init__()
        if not 0 <= self.label_smoothing < 0.5:
            raise ValueError(f"label_smoothing must be in [0, 0.5), got {self.label_smoothing}")
        if self.ld_alpha is not None and not 0 <= self.ld_alpha <= 1:
            raise ValueError(f"ld_alpha must be None or in [0, 1], got {self.ld_alpha!r}")
        self._check_unread_fields(spec)
        for name in spec.config_fields.values():  # a NaN or infinite hyperparameter, by its field name
            if isinstance(getattr(self, name), float) and not math.isfinite(getattr(self, name)):
                raise ValueError(f"{name} must be finite, got {getattr(self, name)!r}")

    def _check_unread_fields(self, spec: LossSpec) -> None:
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        for name in _LOSS_FIELDS:
            if getattr(self, name) != defaults[name] and name not in spec.config_fields.values():
                readers = sorted(n for n, s in LOSSES.items() if name in s.config_fields.values())
                raise ValueError(
                    f"{name} is read by loss_type {readers} only, not {self.loss_type!r}: it would be ignored"
                )
        if self.reference_free and not spec.needs_reference:
            raise ValueError(f"reference_free=True: loss_type {self.loss_type!r} has no reference to drop")

    @property
    def spec(self) -> LossSpec:
        """The registry entry of `loss_type`."""
        return LOSSES[self.loss_type]

    @property
    def needs_reference(self) -> bool:
        """True when the loss reads reference log-probs and they are not taken as 0 (``reference_free``)."""
        return self.spec.needs_reference and not self.reference_free

    @property
    def average_logps(self) -> bool:
        return self.spec.average_logps


def config_dict(config: DPOTrainConfig) -> dict:
    """The config as a plain dict (for logs, `diagnose`, and saving beside a model)."""
    return asdict(config)

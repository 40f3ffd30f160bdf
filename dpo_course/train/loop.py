"""The one training loop DPO and KTO share: batches (seeded, length-grouped), AdamW, schedule, checks, history.

Taught in 03_training_with_trl (`train_dpo`) and 05_variants (`train_kto`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from dpo_course._device import get_device, seed_everything

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


@dataclass
class LoopConfig:
    """The settings of the shared loop; `DPOTrainConfig` and `KTOTrainConfig` add their loss's own."""

    learning_rate: float = field(
        default=1e-4,
        metadata={"help": "AdamW learning rate (toy model, full fine-tuning; real models use ~5e-7..5e-6)."},
    )
    epochs: float = field(
        default=2.0,
        metadata={
            "help": "Passes over the data, TRL's num_train_epochs: a float, 1.5 runs the first half of the "
            "second pass (ceil(epochs x batches per epoch) micro-batches)."
        },
    )
    batch_size: int = field(
        default=16, metadata={"help": "Pairs per micro-batch (2x rows in the forward pass)."}
    )
    max_length: int = field(
        default=128, metadata={"help": "Prompt + completion tokens; completions are truncated to fit."}
    )
    max_grad_norm: float = field(default=1.0, metadata={"help": "Gradient clipping norm (0 disables)."})
    lr_scheduler: str = field(
        default="linear", metadata={"help": "'linear' decay to 0 (TRL's default) or 'constant'."}
    )
    seed: int = field(
        default=0, metadata={"help": "Seeds shuffling and everything else: same seed, same run."}
    )
    device: str | None = field(
        default=None, metadata={"help": "'cpu', 'cuda', 'mps' or None for get_device()."}
    )
    progress: bool = field(default=True, metadata={"help": "Show a tqdm progress bar."})

    def __post_init__(self) -> None:
        check_loop_fields(self, ints=("batch_size", "max_length", "gradient_accumulation_steps"))


def check_loop_fields(config, *, ints: tuple[str, ...]) -> None:
    """Validate what every trainer config shares, raising a ValueError that names the field.

    Non-finite numbers are rejected like negative ones: an infinite learning rate or a NaN beta
    would train for minutes and then stop on a NaN loss, far from the cause.
    """
    positive = ["learning_rate"] + (["beta"] if hasattr(config, "beta") else [])
    for name in positive:
        value = getattr(config, name)
        if not 0 < value < math.inf:  # also rejects NaN
            raise ValueError(f"{name} must be finite and > 0, got {value!r}")
    for name in ("max_grad_norm", "weight_decay", "desirable_weight", "undesirable_weight"):
        value = getattr(config, name, 0.0)
        if not 0 <= value < math.inf:
            raise ValueError(f"{name} must be finite and >= 0, got {value!r}")
    epochs = config.epochs
    if isinstance(epochs, bool) or not isinstance(epochs, int | float) or not 0 < epochs < math.inf:
        raise ValueError(f"epochs must be a finite number > 0, got {epochs!r}")
    for name in ints:
        value = getattr(config, name, 1)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if config.lr_scheduler not in ("linear", "constant"):
        raise ValueError(f"lr_scheduler must be 'linear' or 'constant', got {config.lr_scheduler!r}")


def start(policy, config) -> torch.device:
    """Seed everything with ``config.seed`` and move `policy` to ``config.device`` (or `get_device`)."""
    seed_everything(config.seed)
    device = torch.device(config.device) if config.device else get_device()
    policy.to(device)
    return device


def check_finite(step: int, values: Mapping[str, torch.Tensor]) -> None:
    """Stop training with the step and the statistic's name if any value is NaN or infinite."""
    for name, value in values.items():
        if bool(torch.isfinite(value).all()):  # the common case: one reduction, no indexing
            continue
        bad = value.detach().flatten()[~torch.isfinite(value.detach().flatten())]
        if bad.numel():
            raise FloatingPointError(
                f"step {step}: {name} is {bad[0].item()}; training stopped. Lower the learning rate, "
                "check the data for empty completions, or raise beta."
            )


MicroStep = Callable[[list[int]], tuple[torch.Tensor, dict[str, torch.Tensor], dict[str, float]]]


def train_loop(
    policy, plan: list[tuple[float, list[int]]], micro_step: MicroStep, config, *, desc: str
) -> list[dict]:
    """The loop `train_dpo` and `train_kto` share: AdamW, the scheduler, accumulation, clipping, history.

    ``micro_step(rows)`` scores one micro-batch and returns ``(loss, tensors to check, stats)``; the loop
    checks the loss and the tensors are finite, backpropagates ``loss / accumulation``, and every
    ``gradient_accumulation_steps`` micro-batches (and at the end) clips, steps AdamW and the
    learning-rate schedule (linear decay to 0, as TRL, or constant), and appends to the history the
    micro-batches' mean stats plus ``step``, ``epoch``, ``learning_rate`` (the rate used) and ``grad_norm``
    (the gradient's norm before clipping, TRL's ``grad_norm``).
    Returns the history; the policy is left in eval mode.
    """
    accumulation = getattr(config, "gradient_accumulation_steps", 1)
    total = math.ceil(len(plan) / accumulation)
    opt = torch.optim.AdamW(
        policy.parameters(), lr=config.learning_rate, weight_decay=getattr(config, "weight_decay", 0.0)
    )
    decay = (lambda s: max(0.0, 1 - s / total)) if config.lr_scheduler == "linear" else (lambda s: 1.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, decay)
    history: list[dict[str, float]] = []
    window: list[dict[str, float]] = []
    policy.train()
    bar = tqdm(total=total, desc=desc, disable=not config.progress, mininterval=1.0)
    for i, (epoch, rows) in enumerate(plan):
        loss, tensors, stats = micro_step(rows)
        check_finite(len(history) + 1, {"loss": loss, **tensors})
        (loss / accumulation).backward()
        window.append({"loss": loss.item(), **stats})
        if (i + 1) % accumulation and i + 1 < len(plan):
            continue
        # The norm before clipping, as TRL logs it; max_grad_norm 0 measures without clipping.
        grad_norm = torch.nn.utils.clip_grad_norm_(policy.parameters(), config.max_grad_norm or math.inf)
        check_finite(len(history) + 1, {"grad_norm": grad_norm})
        lr = sched.get_last_lr()[0]
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        record = {k: sum(w[k] for w in window) / len(window) for k in window[0]}
        record.update(step=len(history) + 1, epoch=epoch, learning_rate=lr, grad_norm=grad_norm.item())
        history.append(record)
        window = []
        bar.update(1)
        bar.set_postfix(
            loss=f"{record['loss']:.3f}", margin=f"{record.get('rewards/margins', 0.0):.2f}", refresh=False
        )
    bar.close()
    policy.eval()
    return history

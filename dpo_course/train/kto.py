"""KTO from unpaired thumbs-up / thumbs-down rows: a small trainer beside `train_dpo`.

Taught in 05_variants. KTO (Ethayarajh et al. 2024) needs no pairs: each row is one completion
with a label, ``{"prompt", "completion", "label": True/False}`` (TRL's unpaired preference
format). The loss is `dpo_course.losses.kto_loss`; its reference point ``z0`` is a batch estimate
of KL(pi || pi_ref) from *mismatched* rows: each prompt with the completion of the row before it
in the batch (as TRL's collator cycles them), scored without gradients and clamped at 0.
"""

from __future__ import annotations

import copy
import math
import random
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from dpo_course._device import get_device, seed_everything
from dpo_course.data.tokenize import PreferenceDataError, collate_completions, completion_ids, prompt_ids
from dpo_course.logprobs.sequence import sequence_logps
from dpo_course.losses import kto_loss


def unpair(dataset, *, seed: int = 0) -> list[dict]:
    """Paired rows -> unpaired ones: ``chosen`` becomes a desirable row, ``rejected`` an undesirable one.

    The rows are shuffled (seeded) so that a pair's two halves do not travel together: KTO never
    sees which completions were compared. Taught in 05_variants.
    """
    rows = []
    for row in dataset:
        rows.append({"prompt": row["prompt"], "completion": row["chosen"], "label": True})
        rows.append({"prompt": row["prompt"], "completion": row["rejected"], "label": False})
    random.Random(seed).shuffle(rows)
    return rows


@dataclass
class KTOTrainConfig:
    """Settings of `train_kto`; the defaults give the same budget as `DPOTrainConfig`'s (rows = 2 x pairs)."""

    beta: float = field(default=0.1, metadata={"help": "KL strength, as in DPO."})
    desirable_weight: float = field(default=1.0, metadata={"help": "lambda_D, the weight of desirable rows."})
    undesirable_weight: float = field(
        default=1.0, metadata={"help": "lambda_U, the weight of undesirable rows."}
    )
    learning_rate: float = field(default=1e-4, metadata={"help": "AdamW learning rate."})
    epochs: int = field(default=2, metadata={"help": "Passes over the rows."})
    batch_size: int = field(
        default=32, metadata={"help": "Rows per step (a DPO batch of 16 pairs holds 32 completions)."}
    )
    max_length: int = field(
        default=128, metadata={"help": "Prompt + completion tokens; completions are truncated."}
    )
    max_grad_norm: float = field(default=1.0, metadata={"help": "Gradient clipping norm (0 disables)."})
    lr_scheduler: str = field(default="linear", metadata={"help": "'linear' decay to 0 or 'constant'."})
    seed: int = field(default=0, metadata={"help": "Seeds the shuffling."})
    device: str | None = field(default=None, metadata={"help": "None for get_device()."})
    progress: bool = field(default=True, metadata={"help": "Show a tqdm progress bar."})

    def __post_init__(self) -> None:
        if not self.beta > 0:
            raise ValueError(f"beta must be > 0, got {self.beta}")
        if self.desirable_weight < 0 or self.undesirable_weight < 0:
            raise ValueError("desirable_weight and undesirable_weight must be >= 0")
        for name in ("epochs", "batch_size", "max_length"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if self.batch_size < 2:
            raise ValueError(
                "batch_size must be >= 2: the KL estimate pairs each row with another row's completion"
            )
        if self.lr_scheduler not in ("linear", "constant"):
            raise ValueError(f"lr_scheduler must be 'linear' or 'constant', got {self.lr_scheduler!r}")


def _tokenize(tokenizer, rows, max_length: int) -> list[tuple[list[int], list[int], bool]]:
    out = []
    for i, row in enumerate(rows):
        for key in ("prompt", "completion"):
            if not isinstance(row.get(key), str) or not row[key].strip():
                raise PreferenceDataError(
                    f"row {i}, field {key!r}: expected a non-empty str, got {row.get(key)!r}"
                )
        if not isinstance(row.get("label"), bool):
            raise PreferenceDataError(
                f"row {i}, field 'label': expected True or False, got {row.get('label')!r}"
            )
        p = prompt_ids(tokenizer, row["prompt"])
        if len(p) >= max_length:
            raise PreferenceDataError(
                f"row {i}, field 'prompt': {len(p)} tokens leave no room within max_length={max_length}"
            )
        out.append((p, completion_ids(tokenizer, row["completion"])[: max_length - len(p)], row["label"]))
    return out


def _logps(model, batch: dict[str, torch.Tensor], rows: slice) -> torch.Tensor:
    ids, att, mask = (batch[k][rows] for k in ("input_ids", "attention_mask", "completion_mask"))
    logits = model(input_ids=ids, attention_mask=att, use_cache=False).logits  # (B, T, V)
    return sequence_logps(logits, ids, mask)  # (B,) summed, as TRL's KTO


def train_kto(policy, tokenizer, dataset, config: KTOTrainConfig | None = None):
    """Train `policy` with KTO on unpaired rows; returns ``(policy, history)``. Taught in 05_variants.

    `dataset` rows are ``{"prompt", "completion", "label"}`` (see `unpair`). Each step scores the
    batch's rows with gradients and their mismatched partners without, under the policy and a
    frozen copy of the starting policy (the reference). `history` holds, per step, ``loss``,
    ``kl`` (the clamped batch estimate), ``rewards/chosen`` and ``rewards/rejected`` (mean
    ``beta * (log pi - log pi_ref)`` of desirable / undesirable rows), ``rewards/margins``,
    ``logps/chosen``, ``logps/rejected``, ``step``, ``epoch``, ``learning_rate``.
    """
    config = config or KTOTrainConfig()
    seed_everything(config.seed)
    device = torch.device(config.device) if config.device else get_device()
    policy.to(device)
    rows = _tokenize(tokenizer, list(dataset), config.max_length)
    if len(rows) < 2:
        raise ValueError("KTO needs at least two rows (the KL estimate pairs rows with each other)")
    reference = copy.deepcopy(policy).eval().requires_grad_(False)
    gen = torch.Generator().manual_seed(config.seed)
    orders = [torch.randperm(len(rows), generator=gen).tolist() for _ in range(config.epochs)]
    steps_per_epoch = math.ceil(len(rows) / config.batch_size)
    total = steps_per_epoch * config.epochs
    opt = torch.optim.AdamW(policy.parameters(), lr=config.learning_rate, weight_decay=0.0)
    decay = (lambda s: max(0.0, 1 - s / total)) if config.lr_scheduler == "linear" else (lambda s: 1.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, decay)
    history: list[dict[str, float]] = []
    policy.train()
    bar = tqdm(total=total, desc="KTO", disable=not config.progress, mininterval=1.0)
    for epoch, order in enumerate(orders):
        for start in range(0, len(order), config.batch_size):
            idx = order[start : start + config.batch_size]
            if (
                len(idx) < 2
            ):  # a lone last row has no partner for the KL estimate: fold it into the next epoch
                continue
            # (prompt_k, completion_{k-1}): TRL's cycling of completions within the batch
            prompts = [rows[i][0] for i in idx]
            completions = [rows[i][1] for i in idx] + [rows[idx[k - 1]][1] for k in range(len(idx))]
            batch = collate_completions(prompts + prompts, completions, tokenizer.pad_token_id)
            batch = {k: v.to(device) for k, v in batch.items()}  # rows [matched; mismatched]
            B = len(idx)
            desirable = torch.tensor([rows[i][2] for i in idx], device=device)  # (B,)
            with torch.no_grad():
                ref_logps = _logps(reference, batch, slice(0, B))
                kl = (
                    _logps(policy, batch, slice(B, 2 * B)) - _logps(reference, batch, slice(B, 2 * B))
                ).mean()
            logps = _logps(policy, batch, slice(0, B))  # (B,) with gradients
            losses, rewards = kto_loss(
                logps, ref_logps, desirable, kl, beta=config.beta,
                desirable_weight=config.desirable_weight, undesirable_weight=config.undesirable_weight,
            )  # fmt: skip
            loss = losses.mean()
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"step {len(history) + 1}: the KTO loss is {loss.item()}; lower the learning rate"
                )
            loss.backward()
            if config.max_grad_norm:
                torch.nn.utils.clip_grad_norm_(policy.parameters(), config.max_grad_norm)
            lr = sched.get_last_lr()[0]
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)

            def mean_of(t: torch.Tensor, sel: torch.Tensor) -> float:
                return t[sel].mean().item() if sel.any() else float("nan")

            chosen_r, rejected_r = mean_of(rewards, desirable), mean_of(rewards, ~desirable)
            history.append(
                {
                    "loss": loss.item(),
                    "kl": kl.clamp(min=0).item(),
                    "rewards/chosen": chosen_r,
                    "rewards/rejected": rejected_r,
                    "rewards/margins": chosen_r - rejected_r,
                    "logps/chosen": mean_of(logps.detach(), desirable),
                    "logps/rejected": mean_of(logps.detach(), ~desirable),
                    "step": len(history) + 1,
                    "epoch": epoch + (start + len(idx)) / len(order),
                    "learning_rate": lr,
                }
            )
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}", kl=f"{history[-1]['kl']:.2f}", refresh=False)
    bar.close()
    policy.eval()
    return policy, history

"""KTO from unpaired thumbs-up / thumbs-down rows: a small trainer beside `train_dpo`.

Taught in 05_variants. KTO (Ethayarajh et al. 2024) needs no pairs: each row is one completion
with a label, ``{"prompt", "completion", "label": True/False}`` (TRL's unpaired preference
format). The loss is `dpo_course.losses.kto_loss` (``LOSSES["kto"]``), the loop the one `train_dpo` runs (train/loop.py); its reference point ``z0`` is a batch estimate
of KL(pi || pi_ref) from *mismatched* rows: each prompt with the completion of the row before it
in the batch (as TRL's collator cycles them), scored without gradients and clamped at 0.
"""

from __future__ import annotations

import copy
import random
from dataclasses import dataclass, field

import torch

from dpo_course.data.tokenize import PreferenceDataError, collate_completions, completion_ids, prompt_ids
from dpo_course.logprobs.sequence import sequence_logps
from dpo_course.losses import LOSSES
from dpo_course.train.loop import LoopConfig, batch_plan, start, train_loop


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
class KTOTrainConfig(LoopConfig):
    """Settings of `train_kto`; the defaults give the same budget as `DPOTrainConfig`'s (rows = 2 x pairs)."""

    beta: float = field(default=0.1, metadata={"help": "KL strength, as in DPO."})
    desirable_weight: float = field(default=1.0, metadata={"help": "lambda_D, the weight of desirable rows."})
    undesirable_weight: float = field(
        default=1.0, metadata={"help": "lambda_U, the weight of undesirable rows."}
    )
    batch_size: int = field(
        default=32, metadata={"help": "Rows per step (a DPO batch of 16 pairs holds 32 completions)."}
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.batch_size < 2:
            raise ValueError(
                "batch_size must be >= 2: the KL estimate pairs each row with another row's completion"
            )


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
    device = start(policy, config)
    rows = _tokenize(tokenizer, list(dataset), config.max_length)
    if len(rows) < 2:
        raise ValueError("KTO needs at least two rows (the KL estimate pairs rows with each other)")
    reference = copy.deepcopy(policy).eval().requires_grad_(False)
    plan = batch_plan(
        [len(p) + len(c) for p, c, _ in rows],
        config.batch_size,
        config.epochs,
        seed=config.seed,
        group_by_length=False,
    )
    plan = [
        (epoch, idx) for epoch, idx in plan if len(idx) >= 2
    ]  # a lone last row has no partner for the KL estimate
    spec = LOSSES["kto"]

    def micro_step(idx):
        # (prompt_k, completion_{k-1}): TRL's cycling of completions within the batch
        prompts = [rows[i][0] for i in idx]
        completions = [rows[i][1] for i in idx] + [rows[idx[k - 1]][1] for k in range(len(idx))]
        batch = collate_completions(prompts + prompts, completions, tokenizer.pad_token_id)
        batch = {k: v.to(device) for k, v in batch.items()}  # rows [matched; mismatched]
        B = len(idx)
        desirable = torch.tensor([rows[i][2] for i in idx], device=device)  # (B,)
        with torch.no_grad():
            ref_logps = _logps(reference, batch, slice(0, 2 * B))  # (2B,)
            kl = (_logps(policy, batch, slice(B, 2 * B)) - ref_logps[B:]).mean()
        logps = _logps(policy, batch, slice(0, B))  # (B,) with gradients
        tensors = {"policy_logps": logps, "reference_logps": ref_logps[:B], "desirable": desirable, "kl": kl}
        losses, rewards, _ = spec.compute(tensors, config)
        stats = _kto_stats(rewards, logps.detach(), desirable)
        return losses.mean(), {}, {"kl": kl.clamp(min=0).item(), **stats}

    history = train_loop(policy, plan, micro_step, config, desc="KTO")
    return policy, history


def _kto_stats(rewards: torch.Tensor, logps: torch.Tensor, desirable: torch.Tensor) -> dict[str, float]:
    def mean_of(t: torch.Tensor, sel: torch.Tensor) -> float:
        return t[sel].mean().item() if sel.any() else float("nan")

    chosen_r, rejected_r = mean_of(rewards, desirable), mean_of(rewards, ~desirable)
    return {
        "rewards/chosen": chosen_r,
        "rewards/rejected": rejected_r,
        "rewards/margins": chosen_r - rejected_r,
        "logps/chosen": mean_of(logps, desirable),
        "logps/rejected": mean_of(logps, ~desirable),
    }

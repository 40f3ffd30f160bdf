"""A from-scratch DPO trainer: one config object, the shared loop, the loss looked up by name.

Taught in 02_dpo_loss_from_scratch (one step by hand) and 03_training_with_trl (beside TRL's
`DPOTrainer`). The trainer holds no loss math: per batch it runs `dpo_forward` (train/step.py), which
scores ``[chosen; rejected]`` in one forward pass and hands the log-probs to ``LOSSES[config.loss_type]``;
the optimizer, schedule, checks and history are the shared `train_loop` (train/loop.py).
"""

from __future__ import annotations

import copy

import torch

from dpo_course._device import eval_mode
from dpo_course.data.tokenize import PreferenceCollator, tokenize_dataset
from dpo_course.logprobs.forward import concatenated_forward
from dpo_course.train.config import DPOTrainConfig
from dpo_course.train.loop import batch_plan, start, train_loop
from dpo_course.train.step import dpo_forward


@torch.no_grad()
def reference_logps(model, batches, config: DPOTrainConfig) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Reference log-probs of every batch, computed once (the model is the untrained policy)."""
    with eval_mode(model):
        return [
            tuple(
                t.detach()
                for t in concatenated_forward(
                    model, b, average=config.average_logps, fused=config.fused, ld_alpha=config.ld_alpha
                )
            )
            for b in batches
        ]


def _reference_cache(
    policy, reference, to_batch, lengths, config
) -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
    """Each row's reference ``(chosen, rejected)`` log-probs, keyed by row index so shuffling cannot mismatch them."""
    by_length = sorted(
        range(len(lengths)), key=lengths.__getitem__
    )  # batches of similar length: little padding
    chunks = [by_length[s : s + config.batch_size] for s in range(0, len(by_length), config.batch_size)]
    scored = reference_logps(reference if reference is not None else policy, map(to_batch, chunks), config)
    return {i: (rc[j], rr[j]) for idx, (rc, rr) in zip(chunks, scored) for j, i in enumerate(idx)}


def train_dpo(policy, tokenizer, dataset, config: DPOTrainConfig | None = None, *, reference=None):
    """Train `policy` on preference pairs with DPO (or a variant); returns ``(policy, history)``.

    Taught in 03_training_with_trl. `dataset` has plain-text prompt/chosen/rejected. The reference
    is a frozen copy of the starting policy (or `reference`, a model of the same tokenizer, when
    given); by default its log-probs are computed once before training. `history` is a list of dicts,
    one per optimizer step, with what TRL logs: ``loss``, ``rewards/chosen``, ``rewards/rejected``,
    ``rewards/accuracies``, ``rewards/margins``, ``logps/chosen``, ``logps/rejected``, ``grad_norm`` (before
    clipping), plus ``step``, ``epoch`` and ``learning_rate``.
    """
    config = config or DPOTrainConfig()
    device = start(policy, config)
    features = tokenize_dataset(tokenizer, dataset, max_length=config.max_length)
    if not features:
        raise ValueError("the dataset is empty: nothing to train on")
    collate = PreferenceCollator(tokenizer.pad_token_id)
    lengths = [len(f["prompt_ids"]) + max(len(f["chosen_ids"]), len(f["rejected_ids"])) for f in features]
    plan = batch_plan(
        lengths, config.batch_size, config.epochs, seed=config.seed, group_by_length=config.group_by_length
    )

    def to_batch(idx):
        return {k: v.to(device) for k, v in collate([features[i] for i in idx]).items()}

    ref_model, ref_cache = None, None
    if config.needs_reference:
        if reference is not None:
            reference = reference.to(device).eval().requires_grad_(False)
        if config.precompute_ref_log_probs:
            ref_cache = _reference_cache(policy, reference, to_batch, lengths, config)
        else:
            ref_model = (
                reference if reference is not None else copy.deepcopy(policy).eval().requires_grad_(False)
            )

    def micro_step(idx):
        cached = None
        if ref_cache is not None:
            cached = (
                torch.stack([ref_cache[i][0] for i in idx]),
                torch.stack([ref_cache[i][1] for i in idx]),
            )
        out = dpo_forward(policy, to_batch(idx), config, reference=ref_model, reference_logps=cached)
        checks = {"logps/chosen": out.policy_chosen_logps, "logps/rejected": out.policy_rejected_logps}
        return out.loss, checks, out.stats()

    history = train_loop(policy, plan, micro_step, config, desc=f"DPO ({config.loss_type})")
    return policy, history

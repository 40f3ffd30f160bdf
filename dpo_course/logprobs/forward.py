"""One forward pass over a `[chosen; rejected]` batch, scoring both halves (full logits or fused).

Taught in 02_dpo_loss_from_scratch (fused: 09_scaling_up).
"""

from __future__ import annotations

import warnings

import torch

from dpo_course.logprobs.fused import fused_sequence_logps
from dpo_course.logprobs.sequence import _shape, sequence_logps

_BATCH_KEYS = ("input_ids", "attention_mask", "completion_mask")


def _fused_head(model) -> tuple[torch.nn.Module, torch.Tensor] | None:
    """(decoder, lm_head weight) when logits are exactly ``decoder(x) @ weight.T``, else None (warns)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model  # PEFT wraps the HF model
    head = base.get_output_embeddings() if hasattr(base, "get_output_embeddings") else None
    config = getattr(base, "config", None)
    scaled = [
        k
        for k in ("final_logit_softcapping", "logit_scale", "logits_scaling")
        if getattr(config, k, None) not in (None, 1, 1.0)
    ]
    reason = None
    if type(head) is not torch.nn.Linear:
        reason = f"the output embedding is {type(head).__name__}, not a plain nn.Linear"
    elif head.bias is not None:
        reason = "the output embedding has a bias"
    elif scaled:
        reason = f"the model rescales its logits ({', '.join(scaled)})"
    decoder = base.get_decoder() if hasattr(base, "get_decoder") else getattr(base, "model", None)
    if reason is None and decoder is None:
        reason = "the model has no get_decoder() or .model"
    if reason is not None:
        warnings.warn(
            f"fused=True needs logits = hidden @ W.T, but {reason}; scoring with full logits instead.",
            stacklevel=3,
        )
        return None
    return decoder, head.weight


def completion_lengths(batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Completion tokens of each chosen and rejected row of a ``[chosen; rejected]`` batch: (B,), (B,)."""
    lengths = (batch["completion_mask"][:, 1:] != 0).sum(-1)  # (2B,) the scored tokens
    B = lengths.shape[0] // 2
    return lengths[:B], lengths[B:]


def ld_weights(
    completion_mask: torch.Tensor, ld_alpha: float, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """LD-DPO's token weights for a ``[chosen; rejected]`` mask (2B, T) -> (2B, T) float.

    LD-DPO (Liu et al. 2024, "Length Desensitization in DPO", arXiv:2409.06411) splits each completion
    into the part both answers of a pair share in length, the first ``min(|y_w|, |y_l|)`` tokens
    (weight 1), and the longer answer's extra tokens (weight `ld_alpha`, in [0, 1]). This is TRL 1.16's
    ``DPOConfig(ld_alpha=...)`` (``shared_logps + ld_alpha * tail_logps`` in ``trainer/dpo_trainer.py``,
    applied to policy and reference log-probs alike). Not yet taught in a notebook; tests/losses/test_losses.py checks it against TRL 1.16's code.
    """
    if not 0.0 <= ld_alpha <= 1.0:  # also rejects NaN
        raise ValueError(f"ld_alpha must lie in [0, 1], got {ld_alpha!r}")
    scored = completion_mask[:, 1:] != 0  # (2B, T-1)
    position = scored.cumsum(-1)  # (2B, T-1) 1, 2, ... along each completion
    chosen_len, rejected_len = scored.sum(-1).chunk(2)  # (B,), (B,)
    shared = torch.minimum(chosen_len, rejected_len).repeat(2)  # (2B,)
    one, alpha = (torch.tensor(v, dtype=dtype, device=completion_mask.device) for v in (1.0, ld_alpha))
    weights = torch.where(position <= shared[:, None], one, alpha)  # (2B, T-1)
    return torch.nn.functional.pad(weights, (1, 0), value=1.0)  # (2B, T): position 0 is never scored


def _accumulator(t: torch.Tensor) -> torch.dtype:
    return torch.promote_types(t.dtype, torch.float32)  # what the log-prob sums accumulate in


def concatenated_forward(
    model,
    batch: dict[str, torch.Tensor],
    *,
    average: bool = False,
    fused: bool = False,
    ld_alpha: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Score chosen and rejected responses in one forward pass over the stacked batch.

    `batch` is a `PreferenceCollator` output: ``input_ids``, ``attention_mask`` and
    ``completion_mask``, each (2B, T), rows ``[chosen; rejected]``. Returns
    ``(chosen_logps, rejected_logps)``, each (B,), from `sequence_logps` (``average`` as there).
    ``fused=True`` runs only the decoder and scores with `fused_sequence_logps`, so the (2B, T, V)
    logits never exist; it falls back, with a warning, when the head is not a bias-free linear map.
    ``ld_alpha`` (LD-DPO, `ld_weights`) weights each completion's tokens beyond its pair's shorter length.

    Taught in 02_dpo_loss_from_scratch (fused: 09_scaling_up).
    """
    if not hasattr(batch, "keys") or any(k not in batch for k in _BATCH_KEYS):
        have = sorted(batch.keys()) if hasattr(batch, "keys") else type(batch).__name__
        missing = [k for k in _BATCH_KEYS if not hasattr(batch, "keys") or k not in batch]
        raise ValueError(
            f"batch is missing {missing}: expected keys {list(_BATCH_KEYS)} (a PreferenceCollator batch), got {have}"
        )
    input_ids, attention_mask = batch["input_ids"], batch["attention_mask"]
    if input_ids.dim() != 2 or input_ids.shape[0] == 0 or input_ids.shape[0] % 2:
        raise ValueError(
            f"batch['input_ids'] must be (2B, T) with rows [chosen; rejected], got shape {_shape(input_ids)}"
        )
    mask = batch["completion_mask"]
    head = _fused_head(model) if fused else None
    if head is not None:
        decoder, weight = head
        out = decoder(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
        hidden = out.last_hidden_state  # (2B, T, H)
        weights = None if ld_alpha is None else ld_weights(mask, ld_alpha, _accumulator(hidden))
        logps = fused_sequence_logps(hidden, weight, input_ids, mask, average=average, token_weights=weights)
    else:
        out = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
        logits = out.logits  # (2B, T, V)
        weights = None if ld_alpha is None else ld_weights(mask, ld_alpha, _accumulator(logits))
        logps = sequence_logps(logits, input_ids, mask, average=average, token_weights=weights)
    B = input_ids.shape[0] // 2
    return logps[:B], logps[B:]

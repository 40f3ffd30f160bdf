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


def concatenated_forward(
    model, batch: dict[str, torch.Tensor], *, average: bool = False, fused: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Score chosen and rejected responses in one forward pass over the stacked batch.

    `batch` is a `PreferenceCollator` output: ``input_ids``, ``attention_mask`` and
    ``completion_mask``, each (2B, T), rows ``[chosen; rejected]``. Returns
    ``(chosen_logps, rejected_logps)``, each (B,), from `sequence_logps` (``average`` as there).
    ``fused=True`` runs only the decoder and scores with `fused_sequence_logps`, so the (2B, T, V)
    logits never exist; it falls back, with a warning, when the head is not a bias-free linear map.

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
    head = _fused_head(model) if fused else None
    if head is not None:
        decoder, weight = head
        out = decoder(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
        hidden = out.last_hidden_state  # (2B, T, H)
        logps = fused_sequence_logps(hidden, weight, input_ids, batch["completion_mask"], average=average)
    else:
        out = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
        logits = out.logits  # (2B, T, V)
        logps = sequence_logps(logits, input_ids, batch["completion_mask"], average=average)
    B = input_ids.shape[0] // 2
    return logps[:B], logps[B:]

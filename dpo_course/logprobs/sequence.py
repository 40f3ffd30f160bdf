"""Per-sequence log-probabilities of completions from full logits: the twenty lines notebook 02 teaches.

For a completion y = (y_1..y_L) after a prompt x,

    log pi(y | x) = sum_t log softmax(z_{t-1})[y_t],   z_{t-1} = the logits at the position before y_t

summed over the completion tokens only (the DPO paper), or averaged over them (SimPO, ORPO).
"""

from __future__ import annotations

import torch


def _shape(t) -> tuple[int, ...] | str:
    return tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__


def _check_float(name: str, t, ndim: int, layout: str) -> None:
    if not isinstance(t, torch.Tensor) or t.dim() != ndim or not t.dtype.is_floating_point:
        dtype = f", dtype {t.dtype}" if isinstance(t, torch.Tensor) else ""
        raise ValueError(f"{name} must be a float tensor {layout}, got {_shape(t)}{dtype}")


def _check_ids_and_mask(input_ids, completion_mask, B: int, T: int, V: int, source: str) -> None:
    """Raise a ValueError that names the argument when ids or mask do not fit (B, T) and [0, V)."""
    for name, t in (("input_ids", input_ids), ("completion_mask", completion_mask)):
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"{name} must be a torch.Tensor (B, T), got {type(t).__name__}")
        if _shape(t) != (B, T):
            raise ValueError(f"{name} must be (B, T) = {(B, T)} to match {source}, got shape {_shape(t)}")
    if input_ids.dtype.is_floating_point or input_ids.dtype.is_complex or input_ids.dtype == torch.bool:
        raise ValueError(f"input_ids must hold integer token ids, got dtype {input_ids.dtype}")
    if input_ids.numel() and bool(((input_ids < 0) | (input_ids >= V)).any()):
        raise ValueError(
            f"input_ids must lie in [0, V) = [0, {V}); got values from {int(input_ids.min())} to {int(input_ids.max())}"
        )


def sequence_logps(
    logits: torch.Tensor,
    input_ids: torch.Tensor,
    completion_mask: torch.Tensor,
    *,
    average: bool = False,
    token_weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Log-probability of each row's response under `logits`: (B, T, V), (B, T), (B, T) -> (B,).

    Token t >= 1 is scored by ``logits[:, t - 1]`` where ``completion_mask[:, t] == 1``;
    ``completion_mask[:, 0]`` has no logits before it and is ignored. With ``average=False``
    (the DPO paper) this is ``sum_t m_t (z_{t-1}[y_t] - logsumexp(z_{t-1}))``; with
    ``average=True`` (SimPO, ORPO) the sum is divided by ``sum_t m_t`` (a row with no scored token
    gives 0). The log-softmax is taken at the target only (logit minus logsumexp), one row at a
    time, so bf16 logits are upcast a (T, V) slice at a time, never as a second (B, T, V) copy.
    Returns float32 (float64 for float64 logits). `token_weights` (B, T), when given, multiplies
    each scored token's log-prob (LD-DPO's down-weighting, `ld_weights`); the average still divides
    by the number of scored tokens, as TRL 1.16 does.

    Taught in 02_dpo_loss_from_scratch.
    """
    _check_float("logits", logits, 3, "(B, T, V)")
    B, T, V = logits.shape
    if B == 0 or V == 0:
        raise ValueError(f"logits must have B >= 1 rows and V >= 1 classes, got shape {(B, T, V)}")
    _check_ids_and_mask(input_ids, completion_mask, B, T, V, f"logits (B, T, V) = {(B, T, V)}")
    acc = torch.promote_types(logits.dtype, torch.float32)
    targets = input_ids[:, 1:].long()  # (B, T-1): position t-1 predicts token t
    scored = completion_mask[:, 1:] != 0  # (B, T-1)
    # gather reads logits[:, :T-1] through a (B, T-1, 1) index; slicing logits first would cost a
    # (B, T, V) zero-filled gradient in backward. The last position's logsumexp is computed and dropped.
    target_logits = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1).to(acc)  # (B, T-1)
    lse = torch.stack([torch.logsumexp(row.to(acc), dim=-1) for row in logits])[:, :-1]  # (B, T-1)
    token_logps = torch.where(scored, target_logits - lse, 0.0)  # (B, T-1); where, not *: no inf * 0
    if token_weights is not None:
        token_logps = token_logps * token_weights[:, 1:].to(acc)
    total = token_logps.sum(-1)  # (B,)
    return total / scored.sum(-1).clamp(min=1) if average else total

"""Per-token log-prob implementations to compare: full logits, TRL's two, ours fused, and the floor.

Taught in 09_scaling_up and timed by `benchmarks/logprob_bench.py` (with
`dpo_course.scaling.time_and_memory`). Every method takes hidden states (N, H), an LM-head
weight (V, H) and target ids (N,), and returns ``log softmax(hidden @ weight.T)[targets]`` (N,),
differentiable in hidden and weight, except the floor, which returns no log-probs: it times the
three matmuls that every method must do.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from dpo_course.logprobs import fused_token_logps


class _Floor(torch.autograd.Function):
    """The LM head's three GEMMs and nothing else: logits = h W^T; dh = G W; dW = G^T h (G := the logits)."""

    @staticmethod
    def forward(ctx, hidden, weight):
        logits = hidden @ weight.t()  # (N, V)
        ctx.save_for_backward(hidden, weight, logits)
        return logits[:, 0].clone()

    @staticmethod
    def backward(ctx, grad):
        hidden, weight, logits = ctx.saved_tensors
        return logits @ weight, logits.t() @ hidden  # (N, H), (V, H)


def floor_logps(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Not log-probs: the time of the LM head's three matmuls, a lower bound for every method.

    Taught in 09_scaling_up (one of `LOGPROB_METHODS`).
    """
    return _Floor.apply(hidden, weight)


def naive_fp32_logps(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Full (N, V) logits upcast to fp32, ``log_softmax``, ``gather``: what most from-scratch code does.

    Taught in 09_scaling_up (one of `LOGPROB_METHODS`).
    """
    logits = (hidden @ weight.t()).float()  # (N, V) fp32
    return logits.log_softmax(-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)


def naive_lowp_logps(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The same in the inputs' dtype (bf16 logits and log-softmax: half the bytes, less precision).

    Taught in 09_scaling_up (one of `LOGPROB_METHODS`).
    """
    logits = hidden @ weight.t()  # (N, V)
    return logits.log_softmax(-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1).float()


def trl_selective_logps(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """TRL's `selective_log_softmax` on full logits (a Triton kernel on CUDA, a row loop elsewhere).

    Taught in 09_scaling_up (one of `LOGPROB_METHODS`).
    """
    from trl.trainer.utils import selective_log_softmax

    return selective_log_softmax(hidden @ weight.t(), targets).float()


def trl_chunked_logps(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """TRL's fused `ChunkedLogProbFunction`, as `DPOTrainer` calls it (32768-wide vocabulary tiles).

    Taught in 09_scaling_up (one of `LOGPROB_METHODS`).
    """
    from trl.kernels.chunked_logprob import ChunkedLogProbFunction
    from trl.trainer.utils import _CHUNKED_LOGPROB_CHUNK_SIZE

    logps, *_ = ChunkedLogProbFunction.apply(
        hidden, weight, None, targets, 1.0, _CHUNKED_LOGPROB_CHUNK_SIZE, None, 1.0, ()
    )
    return logps


def fused_logps(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The kernel behind `dpo_course.logprobs.fused_sequence_logps`, on the N scored tokens.

    Taught in 09_scaling_up (one of `LOGPROB_METHODS`).
    """
    return fused_token_logps(hidden, weight, targets)


LOGPROB_METHODS: dict[str, Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "floor (3 matmuls)": floor_logps,
    "naive fp32 logits": naive_fp32_logps,
    "naive low-precision logits": naive_lowp_logps,
    "TRL selective_log_softmax": trl_selective_logps,
    "TRL ChunkedLogProbFunction": trl_chunked_logps,
    "dpo_course fused": fused_logps,
}

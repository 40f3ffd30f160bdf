"""Fused per-token log-probs from hidden states and the LM head, never holding the (N, V) logits.

Taught in 09_scaling_up. The vocabulary is tiled; each tile's logits are made, folded into a running
log-sum-exp and dropped; backward recomputes them tile by tile (Triton kernels on CUDA, torch elsewhere).
"""

from __future__ import annotations

import importlib.util
import warnings

import torch

from dpo_course.logprobs.sequence import _check_float, _check_ids_and_mask, _shape

# Tokens per chunk in `fused_sequence_logps`. A DPO micro-batch rarely scores more than 8192
# response tokens, and with a single token chunk the lm_head gradient of each vocabulary tile is
# written once, in the weight's dtype, with no (V, H) fp32 accumulator.
DEFAULT_CHUNK_SIZE = 8192
# Elements in one (tokens, vocab) tile of logits: 2**25 fp32 = 128 MiB, whatever V is. The
# vocabulary is split into tiles of TILE_ELEMENTS // chunk rows, so a 128k vocabulary with 8192
# tokens runs as 32 GEMMs of (8192, H) x (H, 4096), each still large enough to keep a GPU busy.
TILE_ELEMENTS = 2**25
# torch.mm(..., out_dtype=torch.float32) from bf16/fp16 operands: CUDA only, torch >= 2.8
_MM_OUT_DTYPE = hasattr(torch.ops.aten.mm, "dtype_out")
_TRITON = importlib.util.find_spec("triton") is not None
_TRITON_OK = [_TRITON]  # cleared, with a warning, if a kernel ever fails to build or launch

# ----------------------------------------------------------------------------------------------
# Fused lm_head + log-softmax: tiles of logits are made, folded and dropped, never all at once.

if _TRITON:
    import triton
    import triton.language as tl

    @triton.jit
    def _fold_kernel(
        tile_ptr, stride, targets_ptr, max_ptr, sum_ptr, target_ptr, v0, n_cols, BLOCK: tl.constexpr
    ):
        # One program per token: fold one vocabulary tile into its running (max, sum of exp)
        row = tl.program_id(0).to(tl.int64)
        base = tile_ptr + row * stride
        m = tl.load(max_ptr + row)
        s = tl.load(sum_ptr + row)
        for start in range(0, n_cols, BLOCK):
            cols = start + tl.arange(0, BLOCK)
            z = tl.load(base + cols, mask=cols < n_cols, other=float("-inf"))
            new_m = tl.maximum(m, tl.max(z, axis=0))
            s = s * tl.exp(m - new_m) + tl.sum(tl.exp(z - new_m), axis=0)
            m = new_m
        tl.store(max_ptr + row, m)
        tl.store(sum_ptr + row, s)
        local = tl.load(targets_ptr + row) - v0
        if (local >= 0) & (local < n_cols):
            tl.store(target_ptr + row, tl.load(base + local))

    @triton.jit
    def _grad_kernel(
        tile_ptr, stride, out_ptr, out_stride, targets_ptr, lse_ptr, g_ptr, v0, n_cols, BLOCK: tl.constexpr
    ):
        # d(log p_target)/dz_j = 1[j = target] - p_j, scaled by the incoming gradient; one read, one write
        row = tl.program_id(0).to(tl.int64)
        cols = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
        inside = cols < n_cols
        z = tl.load(tile_ptr + row * stride + cols, mask=inside, other=0.0)
        p = tl.exp(z - tl.load(lse_ptr + row))
        onehot = (cols + v0) == tl.load(targets_ptr + row)
        grad = tl.load(g_ptr + row) * (onehot.to(tl.float32) - p)
        tl.store(out_ptr + row * out_stride + cols, grad.to(out_ptr.dtype.element_ty), mask=inside)


def _use_triton(tile: torch.Tensor) -> bool:
    return _TRITON_OK[0] and tile.is_cuda and tile.dtype == torch.float32


def _launch(kernel, grid, *args) -> bool:
    """Run a Triton kernel; on failure warn once and report False so the torch ops take over."""
    try:
        kernel[grid](*args, BLOCK=1024)
        return True
    except Exception as err:  # a Triton/driver mismatch must not stop training: torch gives the same values
        _TRITON_OK[0] = False
        warnings.warn(f"Triton kernel failed ({err!r}); using torch ops instead.", stacklevel=3)
        return False


def _fold(tile, targets, run_max, run_sum, target_logit, v0: int) -> None:
    """Fold a (n, vt) tile of logits for vocabulary ids [v0, v0 + vt) into per-token statistics.

    Online log-sum-exp: ``m' = max(m, max_j z_j)``, ``s' = s e^{m - m'} + sum_j e^{z_j - m'}``,
    so ``logsumexp = m + log s`` once every tile is folded. The tile is scratch afterwards.
    """
    n, vt = tile.shape
    if _use_triton(tile) and _launch(
        _fold_kernel, (n,), tile, tile.stride(0), targets, run_max, run_sum, target_logit, v0, vt
    ):
        return
    local = targets - v0  # (n,)
    inside = (local >= 0) & (local < vt)
    picked = tile.gather(1, local.clamp(0, vt - 1).unsqueeze(1)).squeeze(1)  # (n,)
    target_logit.copy_(torch.where(inside, picked, target_logit))
    new_max = torch.maximum(run_max, tile.amax(1))  # (n,)
    tile_sum = tile.sub_(new_max.unsqueeze(1)).exp_().sum(1)  # (n,), in place: no second tile
    run_sum.mul_(torch.exp(run_max - new_max)).add_(tile_sum)
    run_max.copy_(new_max)


def _grad_logits(tile, out, targets, lse, grad, v0: int) -> None:
    """Write ``grad * (onehot - softmax)`` for the tile's logits into `out` (the tile itself or a bf16 buffer)."""
    n, vt = tile.shape
    grid = (n, (vt + 1023) // 1024)
    if _use_triton(tile) and _launch(
        _grad_kernel, grid, tile, tile.stride(0), out, out.stride(0), targets, lse, grad, v0, vt
    ):
        return
    tile.sub_(lse.unsqueeze(1)).exp_().mul_(-grad.unsqueeze(1))  # (n, vt) = -g p, in place
    local = targets - v0
    hit = torch.where((local >= 0) & (local < vt), grad, 0.0)  # (n,); scatter, not nonzero: no sync
    tile.scatter_add_(1, local.clamp(0, vt - 1).unsqueeze(1), hit.unsqueeze(1))
    if out is not tile:
        out.copy_(tile)


def _mm(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor, accumulate: bool) -> None:
    """``out (+)= a @ b``; bf16 operands into an fp32 `out` use cuBLAS's fp32 output, no bf16 rounding."""
    if out.dtype == a.dtype:
        out.addmm_(a, b) if accumulate else torch.mm(a, b, out=out)
    elif accumulate:
        torch.addmm(out, a, b, out_dtype=out.dtype, out=out)
    else:
        torch.mm(a, b, out_dtype=out.dtype, out=out)


def _fp32_out_mm(t: torch.Tensor) -> bool:
    """Whether bf16/fp16 GEMMs here can write fp32 results directly (CUDA, torch >= 2.8)."""
    return _MM_OUT_DTYPE and t.is_cuda


def _tiles(N: int, V: int, chunk_size: int) -> tuple[int, int]:
    rows = max(1, min(N, chunk_size))
    return rows, max(1, min(V, TILE_ELEMENTS // rows))


class _FusedTokenLogps(torch.autograd.Function):
    """log softmax(hidden @ weight.T)[targets] for (N, H), (V, H), (N,) -> (N,), tile by tile.

    Forward keeps only the per-token logsumexp; backward recomputes each tile's logits.
    Three modes: fp32/fp64 run in their own dtype; bf16/fp16 on CUDA multiply in bf16 with fp32
    logits and fp32 accumulators; bf16/fp16 elsewhere upcast each (rows, H) and (vt, H) slice.
    """

    @staticmethod
    def forward(ctx, hidden, weight, targets, chunk_size):
        N, V = hidden.shape[0], weight.shape[0]
        acc = torch.promote_types(hidden.dtype, torch.float32)
        upcast = hidden.dtype != acc and not _fp32_out_mm(hidden)
        rows, cols = _tiles(N, V, chunk_size)
        run_max = torch.full((N,), float("-inf"), dtype=acc, device=hidden.device)  # (N,)
        run_sum = torch.zeros(N, dtype=acc, device=hidden.device)  # (N,)
        target_logit = torch.zeros(N, dtype=acc, device=hidden.device)  # (N,)
        buf = torch.empty(min(N, rows) * cols, dtype=acc, device=hidden.device)  # one tile, reused
        with torch.autocast(hidden.device.type, enabled=False):
            for t0 in range(0, N, rows):
                h = hidden[t0 : t0 + rows]  # (n, H)
                h = h.to(acc) if upcast else h
                n = h.shape[0]
                for v0 in range(0, V, cols):
                    w = weight[v0 : v0 + cols]  # (vt, H)
                    w = w.to(acc) if upcast else w
                    tile = buf[: n * w.shape[0]].view(n, w.shape[0])  # (n, vt) logits in fp32
                    _mm(h, w.t(), tile, accumulate=False)
                    sl = slice(t0, t0 + n)
                    _fold(tile, targets[sl], run_max[sl], run_sum[sl], target_logit[sl], v0)
        lse = run_max + run_sum.log()  # (N,)
        ctx.save_for_backward(hidden, weight, targets, lse)
        ctx.chunk_size = chunk_size
        return target_logit - lse

    @staticmethod
    def backward(ctx, grad_out):
        hidden, weight, targets, lse = ctx.saved_tensors
        need_h, need_w = ctx.needs_input_grad[:2]
        (N, H), V, dev = hidden.shape, weight.shape[0], hidden.device
        acc = torch.promote_types(hidden.dtype, torch.float32)
        lowp_cuda = hidden.dtype != acc and _fp32_out_mm(hidden)
        upcast = hidden.dtype != acc and not lowp_cuda
        rows, cols = _tiles(N, V, ctx.chunk_size)
        g = grad_out.to(acc).contiguous()  # (N,)
        # fp32 accumulators only where a sum over tiles would otherwise round to bf16 at each step
        alloc = torch.empty if N else torch.zeros  # no token: nothing writes the weight gradient
        grad_h = torch.empty((N, H), dtype=acc, device=dev) if need_h else None
        direct_w = weight.dtype == acc or (lowp_cuda and rows >= N)
        grad_w = alloc((V, H), dtype=weight.dtype if direct_w else acc, device=dev) if need_w else None
        buf = torch.empty(min(N, rows) * cols, dtype=acc, device=dev)
        gbuf = torch.empty(min(N, rows) * cols, dtype=hidden.dtype, device=dev) if lowp_cuda else None
        with torch.autocast(dev.type, enabled=False):
            for t0 in range(0, N, rows):
                h = hidden[t0 : t0 + rows]  # (n, H)
                h = h.to(acc) if upcast else h
                n, sl = h.shape[0], slice(t0, t0 + h.shape[0])
                for v0 in range(0, V, cols):
                    w = weight[v0 : v0 + cols]  # (vt, H)
                    w = w.to(acc) if upcast else w
                    vt = w.shape[0]
                    tile = buf[: n * vt].view(n, vt)  # (n, vt)
                    _mm(h, w.t(), tile, accumulate=False)  # recompute the logits
                    gz = gbuf[: n * vt].view(n, vt) if lowp_cuda else tile  # (n, vt) dL/dlogits
                    _grad_logits(tile, gz, targets[sl], lse[sl], g[sl], v0)
                    if need_h:  # (n, vt) @ (vt, H)
                        _mm(gz, w, grad_h[sl], accumulate=v0 > 0)
                    if need_w:  # (vt, n) @ (n, H), one GEMM per tile
                        _mm(gz.t(), h, grad_w[v0 : v0 + vt], accumulate=t0 > 0)
        return (
            grad_h.to(hidden.dtype) if need_h else None,
            grad_w.to(weight.dtype) if need_w else None,
            None,
            None,
        )


def fused_token_logps(
    hidden: torch.Tensor,
    lm_head_weight: torch.Tensor,
    targets: torch.Tensor,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> torch.Tensor:
    """log softmax(hidden @ lm_head_weight.T)[n, targets[n]] for each of N tokens: (N, H), (V, H), (N,) -> (N,).

    The (N, V) logits are never held: the vocabulary is tiled (see the module docstring) and backward
    recomputes each tile. `fused_sequence_logps` sums these per completion; the benchmarks call this directly.
    """
    return _FusedTokenLogps.apply(hidden, lm_head_weight, targets, chunk_size)


def fused_sequence_logps(
    hidden_states: torch.Tensor,
    lm_head_weight: torch.Tensor,
    input_ids: torch.Tensor,
    completion_mask: torch.Tensor,
    *,
    average: bool = False,
    chunk_size: int | None = None,
    token_weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """`sequence_logps` of ``hidden_states @ lm_head_weight.T`` without a (B, T, V) tensor (`token_weights` as there).

    Shapes: hidden_states (B, T, H), lm_head_weight (V, H), input_ids and completion_mask (B, T)
    -> (B,). Only the N scored positions (``completion_mask[:, 1:] == 1``) are gathered, so prompt
    and padding tokens cost nothing. Those N tokens run in chunks of `chunk_size` (default
    ``DEFAULT_CHUNK_SIZE`` = 8192) tokens x ``TILE_ELEMENTS // chunk`` vocabulary ids, so the
    logits live one 128 MiB fp32 tile at a time. Forward keeps ``lse_i = logsumexp_j z_ij``
    (online over vocabulary tiles); backward recomputes each tile and uses
    ``dL/dz_ij = g_i (1[j = y_i] - exp(z_ij - lse_i))``. Differentiable in hidden_states and
    lm_head_weight; bf16 inputs get fp32 logits, softmax and accumulators. Under autocast the
    head runs in the autocast dtype. Triton kernels fold and differentiate the tiles on CUDA.

    Taught in 09_scaling_up.
    """
    _check_float("hidden_states", hidden_states, 3, "(B, T, H)")
    B, T, H = hidden_states.shape
    _check_float("lm_head_weight", lm_head_weight, 2, f"(V, H) with H = {H} from hidden_states {(B, T, H)}")
    if lm_head_weight.shape[1] != H or lm_head_weight.device != hidden_states.device:
        raise ValueError(
            f"lm_head_weight must be (V, H) with H = {H} on {hidden_states.device} like hidden_states "
            f"{(B, T, H)}, got {_shape(lm_head_weight)} on {lm_head_weight.device}"
        )
    V = lm_head_weight.shape[0]
    if B == 0 or V == 0:
        raise ValueError(f"need B >= 1 and V >= 1, got hidden_states {(B, T, H)} and lm_head_weight {(V, H)}")
    _check_ids_and_mask(input_ids, completion_mask, B, T, V, f"hidden_states (B, T, H) = {(B, T, H)}")
    chunk_size = DEFAULT_CHUNK_SIZE if chunk_size is None else chunk_size
    if not isinstance(chunk_size, int) or isinstance(chunk_size, bool) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive int (tokens per chunk), got {chunk_size!r}")
    device_type = hidden_states.device.type
    if torch.is_autocast_enabled(device_type):
        dtype = torch.get_autocast_dtype(device_type)
    else:
        dtype = torch.promote_types(hidden_states.dtype, lm_head_weight.dtype)
    scored = completion_mask[:, 1:] != 0  # (B, T-1)
    b_idx, t_idx = scored.nonzero(as_tuple=True)  # (N,), (N,)
    hidden = hidden_states[b_idx, t_idx].to(dtype)  # (N, H): position t-1 predicts token t
    targets = input_ids[b_idx, t_idx + 1].long()  # (N,)
    token_logps = fused_token_logps(hidden, lm_head_weight.to(dtype), targets, chunk_size)  # (N,)
    if token_weights is not None:
        token_logps = token_logps * token_weights[b_idx, t_idx + 1].to(token_logps.dtype)
    total = token_logps.new_zeros(B).index_add(0, b_idx, token_logps)  # (B,)
    return total / scored.sum(-1).clamp(min=1) if average else total


# ----------------------------------------------------------------------------------------------

"""Per-sequence log-probabilities of responses: the quantity every preference loss is built from.

Taught in 02_dpo_loss_from_scratch (`sequence_logps`, `concatenated_forward`) and 09_scaling_up
(`fused_sequence_logps`). For a response y = (y_1..y_L) after a prompt x,

    log pi(y | x) = sum_t log softmax(z_{t-1})[y_t],   z_{t-1} = the logits at the position before y_t

summed over the response tokens only (the DPO paper), or averaged over them (SimPO, ORPO).
"""

from __future__ import annotations

import importlib.util
import warnings

import torch

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
_BATCH_KEYS = ("input_ids", "attention_mask", "completion_mask")


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
    logits: torch.Tensor, input_ids: torch.Tensor, completion_mask: torch.Tensor, *, average: bool = False
) -> torch.Tensor:
    """Log-probability of each row's response under `logits`: (B, T, V), (B, T), (B, T) -> (B,).

    Token t >= 1 is scored by ``logits[:, t - 1]`` where ``completion_mask[:, t] == 1``;
    ``completion_mask[:, 0]`` has no logits before it and is ignored. With ``average=False``
    (the DPO paper) this is ``sum_t m_t (z_{t-1}[y_t] - logsumexp(z_{t-1}))``; with
    ``average=True`` (SimPO, ORPO) the sum is divided by ``sum_t m_t`` (a row with no scored token
    gives 0). The log-softmax is taken at the target only (logit minus logsumexp), one row at a
    time, so bf16 logits are upcast a (T, V) slice at a time, never as a second (B, T, V) copy.
    Returns float32 (float64 for float64 logits).

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
    total = token_logps.sum(-1)  # (B,)
    return total / scored.sum(-1).clamp(min=1) if average else total


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


_TRITON_OK = [_TRITON]  # cleared, with a warning, if a kernel ever fails to build or launch


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


def fused_sequence_logps(
    hidden_states: torch.Tensor,
    lm_head_weight: torch.Tensor,
    input_ids: torch.Tensor,
    completion_mask: torch.Tensor,
    *,
    average: bool = False,
    chunk_size: int | None = None,
) -> torch.Tensor:
    """`sequence_logps` of ``hidden_states @ lm_head_weight.T`` without a (B, T, V) tensor.

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
    token_logps = _FusedTokenLogps.apply(hidden, lm_head_weight.to(dtype), targets, chunk_size)  # (N,)
    total = token_logps.new_zeros(B).index_add(0, b_idx, token_logps)  # (B,)
    return total / scored.sum(-1).clamp(min=1) if average else total


# ----------------------------------------------------------------------------------------------


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

"""NF4, QLoRA's 4-bit base, in plain torch: the numerics of `bitsandbytes` on any device.

Taught in 04_lora_dpo. QLoRA (Dettmers et al. 2023, section 3) stores the frozen base weights in the
4-bit NormalFloat code (NF4): 16 values built from quantiles of N(0, 1), scaled to [-1, 1], with an
exact zero. A weight is cut into blocks of 64 values; each block keeps its absmax ``c`` and each value
the index of the code value nearest to ``w / c``. Dequantizing gives ``code[index] * c``, and the
forward pass runs on those dequantized weights in the compute dtype (bf16 in the paper's recipe).

`bitsandbytes` does this with CUDA kernels and keeps only the 4-bit indices in memory. This module
does the same arithmetic with torch ops and keeps the *dequantized* weights (`simulate_nf4_base_`):
it reproduces what a QLoRA forward pass computes, not its memory saving. `nf4_bits_per_param` is the
memory arithmetic (4 bits + the absmax constants; with the paper's double quantization the constants
themselves are stored in 8 bits, blocks of 256, section 3).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

BLOCK_SIZE = 64  # QLoRA's block size for the weights (section 3, "Double Quantization")

# The NF4 code as bitsandbytes ships it (`bitsandbytes.functional.get_4bit_type("nf4")`): 7 negative
# values, an exact 0, 8 positive ones (one more positive than negative, so 0 can be exact).
NF4_CODE = torch.tensor(
    [
        -1.0,
        -0.6961928009986877,
        -0.5250730514526367,
        -0.39491748809814453,
        -0.28444138169288635,
        -0.18477343022823334,
        -0.09105003625154495,
        0.0,
        0.07958029955625534,
        0.16093020141124725,
        0.24611230194568634,
        0.33791524171829224,
        0.44070982933044434,
        0.5626170039176941,
        0.7229568362236023,
        1.0,
    ]
)

# bitsandbytes' `create_normal_map` offset: the quantile probability of the outermost values (not 1,
# where N(0, 1)'s quantile is infinite). 0.9677 = mean of 1 - 1/(2*15) and 1 - 1/(2*16).
NF4_OFFSET = 0.9677083


def normal_float_code(offset: float = NF4_OFFSET) -> torch.Tensor:
    """The 16 NF4 values built from N(0, 1) quantiles, as bitsandbytes' `create_normal_map` builds them.

    Taught in 04_lora_dpo. 8 positive quantiles at probabilities ``linspace(offset, 0.5, 9)[:-1]``,
    7 negative ones at ``linspace(offset, 0.5, 8)[:-1]`` mirrored, and 0; sorted and divided by the
    largest, so the code spans [-1, 1] with 0 exactly representable (section 3's asymmetric
    construction). Shape (16,), float32; equal to `NF4_CODE` to float32 rounding.
    """
    normal = torch.distributions.Normal(0.0, 1.0)
    positive = normal.icdf(torch.linspace(offset, 0.5, 9, dtype=torch.float64)[:-1])
    negative = -normal.icdf(torch.linspace(offset, 0.5, 8, dtype=torch.float64)[:-1])
    values = torch.cat([positive, torch.zeros(1, dtype=torch.float64), negative]).sort().values
    return (values / values.max()).float()


@dataclass
class NF4Tensor:
    """A weight in NF4: one 4-bit index per value (held in uint8 here) and one absmax per block."""

    indices: torch.Tensor  # (n_blocks, block_size) uint8, values 0..15 (the last block zero-padded)
    absmax: torch.Tensor  # (n_blocks,) float32
    shape: torch.Size
    dtype: torch.dtype
    block_size: int = BLOCK_SIZE


def quantize_nf4(
    weight: torch.Tensor, block_size: int = BLOCK_SIZE, code: torch.Tensor | None = None
) -> NF4Tensor:
    """Blockwise absmax NF4 quantization of `weight` (any shape): each value to its nearest code value.

    Taught in 04_lora_dpo. The weight is flattened and cut into blocks of `block_size` values; when
    its size is not a multiple of the block size, the last block is padded with zeros, which change
    neither its absmax nor the other values (as bitsandbytes does). An all-zero block gets absmax 1.
    """
    if not isinstance(block_size, int) or block_size < 1:
        raise ValueError(f"block_size must be a positive int, got {block_size!r}")
    if not weight.is_floating_point():
        raise TypeError(f"quantize_nf4 takes a floating-point weight, got {weight.dtype}")
    if weight.numel() == 0:
        raise ValueError("quantize_nf4: the weight is empty")
    code = (NF4_CODE if code is None else code).to(weight.device, torch.float32)
    flat = weight.detach().reshape(-1).float()
    flat = torch.nn.functional.pad(flat, (0, (-flat.numel()) % block_size))
    blocks = flat.view(-1, block_size)  # (n_blocks, block_size)
    absmax = blocks.abs().amax(dim=1)
    absmax = torch.where(absmax > 0, absmax, torch.ones_like(absmax))
    scaled = blocks / absmax[:, None]  # in [-1, 1]
    if not bool((code[1:] > code[:-1]).all()):
        raise ValueError("the code must be sorted in increasing order")
    midpoints = (code[1:] + code[:-1]) / 2  # (15,): the nearest code value changes there
    indices = torch.bucketize(scaled, midpoints).to(torch.uint8)  # (n_blocks, block_size), nearest value
    return NF4Tensor(indices, absmax, weight.shape, weight.dtype, block_size)


def dequantize_nf4(
    q: NF4Tensor, dtype: torch.dtype | None = None, code: torch.Tensor | None = None
) -> torch.Tensor:
    """``code[index] * absmax`` in float32, cast to `dtype` (default: the weight's own), in the weight's shape.

    Taught in 04_lora_dpo.
    """
    code = (NF4_CODE if code is None else code).to(q.absmax.device, torch.float32)
    values = code[q.indices.long()] * q.absmax[:, None]  # (n_blocks, block_size)
    n = 1
    for d in q.shape:
        n *= d
    return values.reshape(-1)[:n].reshape(q.shape).to(dtype or q.dtype)


def nf4_round_trip(
    weight: torch.Tensor, block_size: int = BLOCK_SIZE, dtype: torch.dtype | None = None
) -> torch.Tensor:
    """`weight` quantized to NF4 and dequantized again: what a QLoRA forward pass multiplies by.

    Taught in 04_lora_dpo.
    """
    return dequantize_nf4(quantize_nf4(weight, block_size), dtype)


def simulate_nf4_base_(
    model: torch.nn.Module,
    block_size: int = BLOCK_SIZE,
    compute_dtype: torch.dtype | None = None,
    skip: tuple[str, ...] = ("lm_head",),
) -> list[str]:
    """Replace, in place, each frozen ``nn.Linear`` weight of `model` by its NF4 round trip; returns their names.

    Taught in 04_lora_dpo. The simulated QLoRA base: the same dequantized weights bitsandbytes'
    ``Linear4bit`` computes with, held in `compute_dtype` (default: the weight's dtype; the paper's
    recipe uses bf16). Only weights with ``requires_grad=False`` change, so a LoRA adapter's own
    A and B (trainable) are left alone, and modules whose name contains one of `skip` are kept in full
    precision (transformers keeps the output head unquantized). Biases, embeddings and norms are not
    Linear weights and stay as they are, as in bitsandbytes. Raises if no weight was quantized.
    """
    names = []
    for name, module in model.named_modules():
        if not isinstance(module, torch.nn.Linear) or any(s in name for s in skip):
            continue
        if module.weight.requires_grad:
            continue
        with torch.no_grad():
            module.weight.data = nf4_round_trip(
                module.weight, block_size, compute_dtype or module.weight.dtype
            )
        names.append(name)
    if not names:
        raise ValueError(
            "simulate_nf4_base_: no frozen nn.Linear weight to quantize (freeze the base first: "
            "model.requires_grad_(False))"
        )
    return names


def nf4_bits_per_param(block_size: int = BLOCK_SIZE, double_quant: bool = False) -> float:
    """Bits per weight of an NF4 base: 4 for the index plus the absmax constants' share.

    Taught in 04_lora_dpo. One float32 absmax per block of 64 costs 32/64 = 0.5 bits per weight;
    QLoRA's double quantization (section 3) stores the absmax values in 8 bits, in blocks of 256 with
    one float32 constant each: 8/64 + 32/(64 * 256) = 0.127 bits, so 4.127 bits per weight in all.
    """
    if double_quant:
        return 4 + 8 / block_size + 32 / (block_size * 256)
    return 4 + 32 / block_size

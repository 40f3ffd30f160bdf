"""Estimated time and peak GPU memory of each notebook on a Colab T4 with Qwen2.5-0.5B-Instruct.

ESTIMATES, not measurements (CI has no GPU and no network), from `dpo_course.scaling`'s formulas and the
work each notebook does with the real profile (`profile_for("Qwen/Qwen2.5-0.5B-Instruct")`): micro-batches of
4 pairs x 4 accumulation steps, 128 tokens, 1 epoch, 4 samples per prompt, 64 new tokens, generation in
batches of 16. ``python scripts/t4_estimates.py`` prints the README's table; tests/course/test_real_model_switch.py
checks that the README holds these numbers. The work tallies below were counted from the notebooks on
2026-12-01 (training runs x pairs x epochs, generated and scored sequences, model copies alive at the peak).

Assumptions (each one rough, all written out):
- weights fp32 (a T4 has no bf16; fp16 weights cannot hold a 5e-7 update), fp16 autocast for matmuls;
- training runs at 10% of the T4's 65 TFLOP/s fp16 peak (small batches, gradient checkpointing, Python);
- a decode step of a batch of <= 16 costs 30 ms (2 GB of fp32 weights read at ~300 GB/s, plus HF overhead);
- scoring (forward only, 64 tokens a sequence) at the same 10%;
- peak memory: the fp32 copies alive at once + the largest training step's gradients, optimizer state,
  activations and two (2B, T, V) fp32 logit tensors (`dpo_memory_breakdown`) + 0.5 GB of CUDA context and
  generation buffers. The first download of the model (~1 GB) is not counted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from dpo_course.scaling import dpo_memory_breakdown, dpo_training_estimate

# Qwen2.5-0.5B-Instruct's config.json
QWEN = dict(n_params=494_032_768, layers=24, hidden=896, intermediate=4864, kv_hidden=128, vocab=151_936)
LORA_PARAMS = (
    8_798_208  # r=16 on all seven linear maps of the 24 layers (tests/train/test_real_model_config.py)
)
T4_FP16_FLOPS, MFU, DECODE_STEP_S, GEN_BATCH, NEW_TOKENS, TOKENS = 65e12, 0.10, 0.030, 16, 64, 64
BATCH_PAIRS, SEQ_LEN, CONTEXT_BYTES = 4, 128, 0.5e9
COPY_BYTES = QWEN["n_params"] * 4


@dataclass(frozen=True)
class Work:
    copies: int  # fp32 model copies alive at the peak
    full_pairs: int = 0  # pairs x epochs trained with every weight
    lora_pairs: int = 0  # pairs x epochs trained with a LoRA adapter
    full_step: bool = False  # a full fine-tuning AdamW step is alive at the peak (else LoRA's, or none)
    lora_step: bool = False
    generated: int = 0  # sequences generated (greedy or sampled), 64 new tokens each
    scored: int = 0  # sequences scored by a forward pass only


WORK = {
    "00_welcome": Work(copies=1, generated=12 + 240 + 48),
    "01_derivation": Work(copies=1, scored=50),
    "02_dpo_loss_from_scratch": Work(copies=4, full_pairs=8, full_step=True, scored=64),
    "03_training_with_trl": Work(copies=4, full_pairs=96 + 6 * 632 + 12 * 64, full_step=True, generated=1250, scored=1536),
    "04_lora_dpo": Work(copies=4, full_pairs=632 + 16, lora_pairs=2 * 632 + 16, full_step=True, generated=624, scored=768),
    "05_variants": Work(copies=3, full_pairs=7 * 96 + 3 * 8 * 20 + 2 * 96 + 96, full_step=True, generated=816, scored=13_056),
    "06_building_preference_data": Work(copies=3, full_pairs=950, full_step=True, generated=1520, scored=200),
    "07_evaluation": Work(copies=3, full_pairs=4 * 632, full_step=True, generated=1500, scored=3000),
    "08_dpo_vs_online_rl": Work(copies=3, full_pairs=632 + 400 + 36 * 16, full_step=True, generated=3900, scored=2000),
    "09_scaling_up": Work(copies=3, full_pairs=64, full_step=True, scored=200),
}  # fmt: skip


def step_bytes(lora: bool) -> int:
    """Gradients, optimizer state, activations and logits of one DPO micro-batch (weights counted apart)."""
    shapes = {k: v for k, v in QWEN.items() if k != "n_params"}
    b = dpo_memory_breakdown(
        QWEN["n_params"], batch_pairs=BATCH_PAIRS, seq_len=SEQ_LEN, dtype_bytes=4, precomputed_reference=True,
        gradient_checkpointing=True, lora_params=LORA_PARAMS if lora else None, **shapes,
    )  # fmt: skip
    return b["gradients"] + b["optimizer_state"] + b["activations"] + 2 * b["logits_fp32"]


def estimate(work: Work, *, lora: bool = False) -> dict[str, float]:
    """``{"minutes": ..., "peak_gb": ...}`` for one notebook's `work` on a T4; `lora`: every training run
    trains an adapter instead of every weight (what `WorkProfile.use_lora` asks for), the copies unchanged."""
    if lora:
        work = replace(
            work, full_pairs=0, lora_pairs=work.full_pairs + work.lora_pairs, full_step=False,
            lora_step=work.full_step or work.lora_step,
        )  # fmt: skip
    seconds = 0.0
    for pairs, lora in ((work.full_pairs, False), (work.lora_pairs, True)):
        if pairs:
            run = dpo_training_estimate(
                QWEN["n_params"], num_pairs=pairs, tokens_per_sequence=TOKENS, peak_flops=T4_FP16_FLOPS,
                mfu=MFU, precomputed_reference=True, lora=lora, lora_params=LORA_PARAMS if lora else 0,
            )  # fmt: skip
            seconds += run["hours"] * 3600
    seconds += math.ceil(work.generated / GEN_BATCH) * NEW_TOKENS * DECODE_STEP_S
    seconds += work.scored * 2 * QWEN["n_params"] * TOKENS / (MFU * T4_FP16_FLOPS)
    peak = work.copies * COPY_BYTES + CONTEXT_BYTES
    if work.full_step or work.lora_step:
        peak += step_bytes(lora=not work.full_step)
    return {"minutes": seconds / 60, "peak_gb": peak / 1e9}


def rows() -> dict[str, tuple[int, float, int, float]]:
    """Per notebook: (minutes, peak GB) training every weight, then (minutes, peak GB) with LoRA."""
    out = {}
    for name, work in WORK.items():
        full, lora = estimate(work), estimate(work, lora=True)
        out[name] = (
            max(1, round(full["minutes"])), round(full["peak_gb"], 1),
            max(1, round(lora["minutes"])), round(lora["peak_gb"], 1),
        )  # fmt: skip
    return out


def table() -> str:
    lines = [
        "| notebook | full fine-tuning: est. time | est. peak GPU memory | LoRA: est. time | est. peak GPU memory |",
        "|---|---|---|---|---|",
    ]
    for name, (t_full, m_full, t_lora, m_lora) in rows().items():
        lines.append(f"| {name} | ~{t_full} min | ~{m_full} GB | ~{t_lora} min | ~{m_lora} GB |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table())

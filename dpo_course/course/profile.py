"""How much work a notebook does, sized by the model it runs on: one place, read by every notebook.

Course tooling for the real-model switch (README, docs/real_model.md): the notebooks that train or sample read it.

``P = profile_for(MODEL)`` returns a frozen `WorkProfile`. The toy profile holds the numbers the
notebooks were written with (a 0.9M-parameter model, a 768-token vocabulary, 2 CPU cores). The real
profile is sized for Qwen2.5-0.5B-Instruct on one free Colab T4 (15 GB, fp16 but no bf16): micro-batches
of 4 pairs with 4 accumulation steps (the toy's 16 pairs per optimizer step, so step counts match),
fp32 master weights under fp16 autocast (fp16 weights cannot hold a 5e-7 update), a LoRA adapter,
reference log-probs computed once before training, activation checkpointing and fused log-probs, so
no (B, T, V) logits of a 152k vocabulary sit in memory.

Which profile: ``$DPO_COURSE_PROFILE`` ("toy" or "real") when set; else "toy" for ``MODEL == "toy"``
and for a local folder whose ``config.json`` describes a model under `TOY_SIZED_BELOW` parameters
(a tiny test model gets toy-sized work); else "real" (a hub id is never looked up: no network).
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path

PROFILES = ("toy", "real")
TOY_SIZED_BELOW = 20_000_000  # parameters; the toy has 0.9M, Qwen2.5-0.5B has 494M


@dataclass(frozen=True)
class WorkProfile:
    """What a notebook's work is sized by. Build one with `profile_for`; change one with `dataclasses.replace`."""

    name: str  # "toy" or "real"
    reason: str  # why this profile was chosen, in words
    # DPO training (train_dpo and TRL's DPOTrainer)
    batch_size: int  # pairs per micro-batch
    gradient_accumulation_steps: int  # micro-batches per optimizer step
    max_length: int  # prompt + completion tokens
    epochs: int
    dpo_learning_rate: float  # full fine-tuning
    lora_learning_rate: float  # a LoRA adapter (~10x full fine-tuning's, see 04_lora_dpo)
    use_lora: bool  # train an adapter rather than every weight where the notebook lets you choose
    lora_r: int
    lora_alpha: int
    precompute_ref_log_probs: bool  # score the reference once, before training (TRL's name)
    activation_checkpointing: bool  # transformers 5's name (gradient_checkpointing is its deprecated alias)
    fused_logps: bool  # never hold the (B, T, V) logits
    # SFT (03) and online RL (08)
    sft_steps: int
    sft_learning_rate: float
    grpo_steps: int
    grpo_learning_rate: float
    # evaluation and sampling
    eval_prompts: int  # held-out prompts scored (toyworld.eval_prompts() has 48)
    samples_per_prompt: int  # samples per prompt for sampled reward and KL
    max_new_tokens: int  # generation length
    generation_batch_size: int
    # precision
    dtype: str  # dtype of the weights as loaded: "float32" or "bfloat16"
    mixed_precision: str | None  # None, or "fp16": autocast on CUDA (TRL's fp16=True)

    @property
    def is_toy(self) -> bool:
        return self.name == "toy"

    @property
    def pairs_per_step(self) -> int:
        return self.batch_size * self.gradient_accumulation_steps

    def torch_dtype(self):
        import torch

        return getattr(torch, self.dtype)

    def trl_precision(self, device) -> dict[str, bool]:
        """``fp16=``/``bf16=`` for a TRL config on `device`: fp16 autocast only on CUDA, never bf16 (a T4 has none)."""
        cuda = getattr(device, "type", str(device)).startswith("cuda")
        return {"fp16": bool(cuda and self.mixed_precision == "fp16"), "bf16": False}

    def dpo_config(self, *, lora: bool = False, **changes):
        """A `DPOTrainConfig` with this profile's sizes; the learning rate is LoRA's if `lora`, else full
        fine-tuning's. `changes` override any field (a name the config lacks raises its TypeError)."""
        from dpo_course.train import DPOTrainConfig

        names = {f.name for f in dataclasses.fields(DPOTrainConfig)}
        values = {
            "learning_rate": self.lora_learning_rate if lora else self.dpo_learning_rate,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "gradient_accumulation_steps": self.gradient_accumulation_steps,
            "max_length": self.max_length,
            "fused": self.fused_logps,
        }
        # TRL's name, and the name before the rename (issue 12): whichever the config has
        for name in ("precompute_ref_log_probs", "precompute_ref_logps"):
            if name in names:
                values[name] = self.precompute_ref_log_probs
                break
        values.update(changes)
        return DPOTrainConfig(**{k: v for k, v in values.items() if k in names or k in changes})


TOY = WorkProfile(
    name="toy",
    reason="",
    batch_size=16,
    gradient_accumulation_steps=1,
    max_length=128,
    epochs=2,
    dpo_learning_rate=1e-4,
    lora_learning_rate=1e-3,
    use_lora=False,
    lora_r=8,
    lora_alpha=16,
    precompute_ref_log_probs=True,
    activation_checkpointing=False,
    fused_logps=False,
    sft_steps=12,
    sft_learning_rate=2e-3,
    grpo_steps=36,
    grpo_learning_rate=1e-4,
    eval_prompts=48,
    samples_per_prompt=8,
    max_new_tokens=64,
    generation_batch_size=64,
    dtype="float32",
    mixed_precision=None,
)

# Qwen2.5-0.5B-Instruct on one Colab T4. Toy-world prompts and answers are short (under 60 Qwen tokens),
# so max_length stays 128; configs/real_model_colab.yaml, on UltraFeedback, uses 512.
REAL = dataclasses.replace(
    TOY,
    name="real",
    batch_size=4,
    gradient_accumulation_steps=4,
    epochs=1,
    dpo_learning_rate=5e-7,
    lora_learning_rate=5e-6,
    use_lora=True,
    lora_r=16,
    lora_alpha=32,
    activation_checkpointing=True,
    fused_logps=True,
    sft_learning_rate=2e-5,  # SFTConfig's default
    grpo_learning_rate=1e-6,  # GRPOConfig's default
    samples_per_prompt=4,
    generation_batch_size=16,
    mixed_precision="fp16",
)


def approx_params(config: dict) -> int | None:
    """Parameters of a decoder-only transformer from its ``config.json`` fields (None if they are missing)."""
    try:
        hidden, layers, vocab = (int(config[k]) for k in ("hidden_size", "num_hidden_layers", "vocab_size"))
    except (KeyError, TypeError, ValueError):
        return None
    intermediate = int(config.get("intermediate_size") or 4 * hidden)
    heads = int(config.get("num_attention_heads") or 1)
    kv = hidden * int(config.get("num_key_value_heads") or heads) // heads
    per_layer = 2 * hidden * hidden + 2 * hidden * kv + 3 * hidden * intermediate
    embeddings = vocab * hidden * (1 if config.get("tie_word_embeddings", True) else 2)
    return layers * per_layer + embeddings


def _local_params(model_id: str) -> int | None:
    path = Path(model_id).expanduser() / "config.json"
    if not path.is_file():
        return None
    try:
        return approx_params(json.loads(path.read_text()))
    except (OSError, ValueError):
        return None


def profile_for(model_id=None) -> WorkProfile:
    """The `WorkProfile` for `model_id` ("toy", a hub id, a local folder or a loaded model; None: ``$DPO_COURSE_MODEL``).

    Taught in 00_welcome (the real-model switch); every notebook that trains or samples sizes its work by it.
    """
    forced = os.environ.get("DPO_COURSE_PROFILE", "").strip().lower()
    if forced:
        if forced not in PROFILES:
            raise ValueError(f"DPO_COURSE_PROFILE must be one of {PROFILES}, got {forced!r}")
        chosen = TOY if forced == "toy" else REAL
        return dataclasses.replace(chosen, reason=f"DPO_COURSE_PROFILE={forced}")
    if hasattr(model_id, "parameters"):  # a loaded model: count its weights
        n = sum(p.numel() for p in model_id.parameters())
    else:
        from dpo_course.toyworld import model_source

        source = model_source(model_id)
        if source == "toy":
            return dataclasses.replace(TOY, reason="MODEL is 'toy'")
        n = _local_params(source)
        if n is None:
            return dataclasses.replace(
                REAL, reason=f"{source!r} is not a local folder: sized for a 0.5B model"
            )
    if n < TOY_SIZED_BELOW:
        return dataclasses.replace(TOY, reason=f"~{n:,} parameters (< {TOY_SIZED_BELOW:,}): toy-sized work")
    return dataclasses.replace(REAL, reason=f"~{n:,} parameters: sized for a 0.5B model on a T4")

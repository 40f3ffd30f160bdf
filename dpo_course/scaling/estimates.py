"""What a DPO step costs: FLOPs, bytes of memory, and how sharding over GPUs divides them.

Taught in 09_scaling_up. Pen-and-paper estimates, checked in that notebook against a measured
step (`torch.utils.flop_counter.FlopCounterMode`, saved-tensor bytes, peak memory).

FLOPs (Kaplan et al. 2020, "Scaling Laws", section 2.1): a matmul with N weights costs 2N FLOPs per
token forward, and backward costs twice that (gradient with respect to the input and with respect
to the weight), so training costs about 6N per token. A DPO step runs the policy forward and
backward over the chosen *and* the rejected sequences (6N per token) and the frozen reference
forward only (2N per token, or 0 when its log-probs were computed before training). Attention's
own ``QK^T`` and ``AV`` products (about ``4 * layers * T * hidden`` per token forward) are left
out, like the embedding lookup: a few percent at T = 1024 for a 1B model.
"""

from __future__ import annotations

import math

import torch

# Saved activations of one HF Llama decoder layer (SDPA attention), per token: in the activation
# dtype, 6 per hidden unit (norm outputs, q, attention output, ...), 4 per MLP unit (gate, up,
# SiLU, product) and 2 per key/value unit; plus two fp32 copies of the hidden state that the
# RMSNorms keep whatever the dtype (8 bytes per hidden unit). Fitted on
# `dpo_course.scaling.saved_tensor_bytes` across shapes, fp32 and bf16; see 09_scaling_up.
ACTIVATION_ELEMENTS_PER_HIDDEN = 6
ACTIVATION_ELEMENTS_PER_INTERMEDIATE = 4
ACTIVATION_ELEMENTS_PER_KV = 2
ACTIVATION_FP32_BYTES_PER_HIDDEN = 8
# Dense (not sparse) bf16 tensor-core peak in FLOP/s, from NVIDIA's data sheets.
PEAK_BF16_FLOPS = {"a100": 312e12, "h100_sxm": 989e12, "h200": 989e12}
STRATEGIES = ("single", "ddp", "zero2", "fsdp")


def _check_count(name: str, value, *, positive: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if value < 0 or (positive and value == 0):
        raise ValueError(f"{name} must be {'> 0' if positive else '>= 0'}, got {value!r}")


def count_params(
    model: torch.nn.Module, *, trainable_only: bool = False, exclude_embeddings: bool = False
) -> int:
    """Number of parameters of `model`, each shared tensor counted once.

    ``trainable_only`` counts those with ``requires_grad`` (a LoRA model: the adapters).
    ``exclude_embeddings`` drops the input embedding table, which is looked up, not multiplied:
    what `dpo_step_flops` wants as `n_params`. A tied embedding *is* the LM head, so it stays.

    Taught in 09_scaling_up.
    """
    seen: set[int] = set()
    skip: set[int] = set()
    if exclude_embeddings and hasattr(model, "get_input_embeddings"):
        emb = model.get_input_embeddings()
        out = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
        tied = out is not None and getattr(out, "weight", None) is getattr(emb, "weight", None)
        if emb is not None and not tied:
            skip = {id(p) for p in emb.parameters()}
    total = 0
    for p in model.parameters():  # parameters() already yields a tied tensor once; `seen` guards the rest
        if id(p) in seen or id(p) in skip or (trainable_only and not p.requires_grad):
            continue
        seen.add(id(p))
        total += p.numel()
    return total


def dpo_step_flops(
    n_params: int,
    chosen_tokens: int,
    rejected_tokens: int,
    *,
    precomputed_reference: bool = False,
    lora: bool = False,
    lora_params: int = 0,
) -> int:
    """FLOPs of one DPO step over `chosen_tokens` + `rejected_tokens` (prompt tokens included).

    ``n_params`` counts the weights that multiply activations (`count_params(model,
    exclude_embeddings=True)`). With ``D = chosen_tokens + rejected_tokens``:

    * full fine-tuning:  ``6 N D``  (policy: 2N forward + 4N backward per token)
    * LoRA:              ``4 N D + 6 N_lora D`` (the frozen weights still pass the gradient back to
      the activations, 2N, but compute no weight gradient, which saves the other 2N)
    * plus the reference: ``2 N D`` (forward only; for LoRA, the same weights with the adapter
      off), or 0 with ``precomputed_reference=True``: that pass then ran once before training.

    Taught in 09_scaling_up.
    """
    _check_count("n_params", n_params, positive=True)
    _check_count("chosen_tokens", chosen_tokens)
    _check_count("rejected_tokens", rejected_tokens)
    _check_count("lora_params", lora_params)
    if lora_params and not lora:
        raise ValueError(f"lora_params={lora_params} was given with lora=False: pass lora=True")
    tokens = chosen_tokens + rejected_tokens
    policy = (4 * n_params + 6 * lora_params) * tokens if lora else 6 * n_params * tokens
    reference = 0 if precomputed_reference else 2 * n_params * tokens
    return policy + reference


def dpo_memory_breakdown(
    n_params: int,
    *,
    batch_pairs: int,
    seq_len: int,
    vocab: int,
    hidden: int,
    layers: int,
    dtype_bytes: int,
    intermediate: int | None = None,
    kv_hidden: int | None = None,
    optimizer: str = "adamw",
    lora_params: int | None = None,
    precomputed_reference: bool = False,
    gradient_checkpointing: bool = False,
    master_weights: bool = False,
) -> dict[str, int]:
    """Bytes held during one DPO step on one device, by what holds them (rough, see each entry).

    The step scores ``2 * batch_pairs`` sequences of ``seq_len`` tokens ([chosen; rejected]).
    Returns a dict of bytes:

    * ``weights``: ``n_params * dtype_bytes`` (plus the adapters with LoRA).
    * ``gradients``: one per trainable weight, in the weights' dtype.
    * ``optimizer_state``: AdamW keeps two moments per trainable weight, in the weights' dtype
      (what ``torch.optim.AdamW`` does); ``master_weights=True`` is the mixed-precision recipe
      instead: an fp32 copy of the weights and fp32 moments, 12 bytes per trainable weight. With
      bf16 (``dtype_bytes=2``) that is how real jobs train, 2 + 2 + 12 + 2 = 18 bytes per parameter
      with the reference: the realistic baseline (pure bf16 AdamW does not train at DPO's rates).
      ``optimizer="sgd"`` (no momentum) keeps nothing.
    * ``reference_weights``: a second frozen copy; 0 with ``precomputed_reference`` or LoRA (the
      reference is the base model with the adapter switched off).
    * ``activations``: saved for backward, per layer and token ``(6 hidden + 4 intermediate +
      2 kv_hidden)`` elements of ``dtype_bytes`` plus ``8 hidden`` bytes of fp32 RMSNorm inputs
      (fitted on HF Llama with SDPA attention, within ~5%; ``intermediate`` defaults to
      ``4 * hidden``, ``kv_hidden``, the width of K and V, to ``hidden // 4`` as in Llama 3's
      grouped-query attention). With ``gradient_checkpointing``, each layer keeps only its input
      (``hidden`` per token) and one layer's activations exist at a time, during its recompute.
    * ``logits_fp32`` and ``logits_bf16``: one (2B, T, V) tensor of logits; a naive log-softmax
      holds two or three tensors of this size at its peak (logits, log-probs, their gradient).
      The reference forward runs without gradients: its activations are freed layer by layer.

    Taught in 09_scaling_up.
    """
    for name, value in (
        ("n_params", n_params),
        ("batch_pairs", batch_pairs),
        ("seq_len", seq_len),
        ("vocab", vocab),
        ("hidden", hidden),
        ("layers", layers),
    ):
        _check_count(name, value, positive=True)
    if dtype_bytes not in (1, 2, 4, 8):
        raise ValueError(
            f"dtype_bytes must be 1, 2, 4 or 8 (bytes per element; bf16 is 2), got {dtype_bytes!r}"
        )
    if optimizer not in ("adamw", "sgd"):
        raise ValueError(f"optimizer must be 'adamw' or 'sgd', got {optimizer!r}")
    if lora_params is not None:
        _check_count("lora_params", lora_params, positive=True)
    intermediate = 4 * hidden if intermediate is None else intermediate
    kv_hidden = max(1, hidden // 4) if kv_hidden is None else kv_hidden
    _check_count("intermediate", intermediate, positive=True)
    _check_count("kv_hidden", kv_hidden, positive=True)

    trainable = n_params if lora_params is None else lora_params
    state_bytes = 4 if master_weights else dtype_bytes
    moments = 2 if optimizer == "adamw" else 0
    tokens = 2 * batch_pairs * seq_len
    per_layer_token = (
        dtype_bytes
        * (
            ACTIVATION_ELEMENTS_PER_HIDDEN * hidden
            + ACTIVATION_ELEMENTS_PER_INTERMEDIATE * intermediate
            + ACTIVATION_ELEMENTS_PER_KV * kv_hidden
        )
        + ACTIVATION_FP32_BYTES_PER_HIDDEN * hidden
    )  # bytes
    if gradient_checkpointing:
        activations = layers * tokens * hidden * dtype_bytes + tokens * per_layer_token
    else:
        activations = layers * tokens * per_layer_token
    no_reference = precomputed_reference or lora_params is not None
    return {
        "weights": (n_params + (lora_params or 0)) * dtype_bytes,
        "gradients": trainable * dtype_bytes,
        "optimizer_state": trainable * (moments * state_bytes + (4 if master_weights else 0)),
        "reference_weights": 0 if no_reference else n_params * dtype_bytes,
        "activations": activations,
        "logits_fp32": tokens * vocab * 4,
        "logits_bf16": tokens * vocab * 2,
    }


def shard_per_gpu(breakdown: dict[str, int], *, strategy: str, world_size: int) -> dict[str, int]:
    """Bytes per GPU when `breakdown` (one replica's) is spread over `world_size` GPUs.

    * ``"single"`` / ``"ddp"``: every GPU holds a full replica; DDP splits the *batch*, so give
      `dpo_memory_breakdown` the per-GPU batch.
    * ``"zero2"`` (DeepSpeed ZeRO stage 2): gradients and optimizer state are sharded; weights are
      replicated, and TRL runs the reference as a plain replica (stage 0).
    * ``"fsdp"`` (full shard, ZeRO-3): weights, gradients, optimizer state and the reference's
      weights are sharded; each layer is gathered whole only while it runs (not counted here).

    Activations and logits belong to each GPU's own micro-batch: never divided.

    Taught in 09_scaling_up.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    if isinstance(world_size, bool) or not isinstance(world_size, int) or world_size < 1:
        raise ValueError(f"world_size must be a positive int, got {world_size!r}")
    sharded = {
        "single": (),
        "ddp": (),
        "zero2": ("gradients", "optimizer_state"),
        "fsdp": ("weights", "gradients", "optimizer_state", "reference_weights"),
    }[strategy]
    return {k: (math.ceil(v / world_size) if k in sharded else v) for k, v in breakdown.items()}


def dpo_training_estimate(
    n_params: int,
    *,
    num_pairs: int,
    tokens_per_sequence: int,
    epochs: int = 1,
    peak_flops: float,
    mfu: float = 0.4,
    precomputed_reference: bool = False,
    lora: bool = False,
    lora_params: int = 0,
) -> dict[str, float]:
    """Total FLOPs and GPU-hours of a DPO run: what the lesson's ``estimate_dpo_training_cost`` meant.

    Every pair is two sequences of `tokens_per_sequence` (prompt + response) tokens, seen once
    per epoch. ``precomputed_reference`` moves the reference pass out of the epochs: it runs
    once, before training, at 2N per token. Time is FLOPs / (``mfu * peak_flops``), where
    ``peak_flops`` is the hardware's data-sheet peak and ``mfu`` the model-FLOPs utilisation
    measured against that same peak (PaLM, Chowdhery et al. 2022, appendix B; 0.3-0.5 is typical on
    one node). An MFU measured against a large matmul on the device is a different ratio: multiply
    it by matmul / peak before passing it here.
    Returns ``{"flops": ..., "hours": ...}``.

    Taught in 09_scaling_up.
    """
    _check_count("num_pairs", num_pairs, positive=True)
    _check_count("tokens_per_sequence", tokens_per_sequence, positive=True)
    _check_count("epochs", epochs, positive=True)
    _check_count("peak_flops", peak_flops, positive=True)
    if not 0 < mfu <= 1:
        raise ValueError(f"mfu must be in (0, 1], got {mfu!r}")
    tokens = num_pairs * tokens_per_sequence
    per_epoch = dpo_step_flops(
        n_params,
        tokens,
        tokens,
        precomputed_reference=precomputed_reference,
        lora=lora,
        lora_params=lora_params,
    )
    flops = epochs * per_epoch + (2 * n_params * 2 * tokens if precomputed_reference else 0)
    return {"flops": float(flops), "hours": flops / (mfu * peak_flops) / 3600}

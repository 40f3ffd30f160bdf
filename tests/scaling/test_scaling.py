"""Tests for dpo_course.scaling: hand-checked FLOPs and bytes, and the estimates against measured steps."""

import copy

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from dpo_course.logprobs import concatenated_forward
from dpo_course.scaling import (
    count_params,
    dpo_memory_breakdown,
    dpo_step_flops,
    dpo_training_estimate,
    enable_checkpointing,
    peak_memory,
    random_llama,
    random_preference_batch,
    saved_tensor_bytes,
    shard_per_gpu,
)
from dpo_course.train import dpo_step

LLAMA_1B = 1_235_814_400  # Llama 3.2 1B (tied embeddings)
LLAMA_8B = 8_030_261_248  # Llama 3.1 8B


# ---------------------------------------------------------------- FLOPs by hand


def test_dpo_step_flops_hand_checked():
    # N = 1000, 10 chosen + 6 rejected tokens = 16 tokens
    assert dpo_step_flops(1000, 10, 6) == 6 * 1000 * 16 + 2 * 1000 * 16 == 128_000
    assert dpo_step_flops(1000, 10, 6, precomputed_reference=True) == 96_000
    # LoRA: 4N + 6 N_lora per token for the policy, 2N for the reference: (4000 + 60) * 16 + 32000
    assert dpo_step_flops(1000, 10, 6, lora=True, lora_params=10) == 96_960
    assert dpo_step_flops(1000, 10, 6, lora=True, precomputed_reference=True) == 64_000


def test_dpo_step_flops_llama_1b():
    # 4 pairs of 1024 tokens: 8192 tokens * 8N = 8.1e13 FLOPs
    assert dpo_step_flops(LLAMA_1B, 4096, 4096) == 80_990_332_518_400


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        ((0, 1, 1), {}, "n_params"),
        ((10, -1, 1), {}, "chosen_tokens"),
        ((10, 1, True), {}, "rejected_tokens"),
        ((10, 1, 1), {"lora_params": 5}, "lora=True"),
    ],
)
def test_dpo_step_flops_bad_input(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        dpo_step_flops(*args, **kwargs)


def test_training_estimate_hand_checked():
    # 10 pairs x 5 tokens per sequence = 50 chosen + 50 rejected tokens per epoch, 2 epochs
    est = dpo_training_estimate(1000, num_pairs=10, tokens_per_sequence=5, epochs=2, peak_flops=1e6, mfu=0.5)
    assert est["flops"] == 2 * 8 * 1000 * 100 == 1_600_000
    assert est["hours"] == pytest.approx(1.6e6 / 0.5e6 / 3600)
    # precomputed: 6N per token per epoch, plus one reference pass (2N per token) before training
    pre = dpo_training_estimate(
        1000, num_pairs=10, tokens_per_sequence=5, epochs=2, peak_flops=1e6, precomputed_reference=True
    )
    assert pre["flops"] == 2 * 6 * 1000 * 100 + 2 * 1000 * 100 == 1_400_000


def test_lesson_estimate_undercounts_by_a_third():
    # The lesson: 6 N T over chosen + rejected tokens; a full DPO step costs 8 N T.
    ours = dpo_training_estimate(7e9, num_pairs=50_000, tokens_per_sequence=1024, peak_flops=312e12)
    lesson_flops = 6 * 7e9 * 50_000 * 1024 * 2
    assert ours["flops"] / lesson_flops == pytest.approx(4 / 3)


# ---------------------------------------------------------------- memory by hand

# A shape small enough to count by hand: 2 pairs x 3 tokens, hidden 4, MLP 8, K/V 2 wide, 2 layers, vocab 10, bf16.
HAND_SHAPE = dict(
    batch_pairs=2, seq_len=3, vocab=10, hidden=4, layers=2, dtype_bytes=2, intermediate=8, kv_hidden=2
)
# One of everything: the options' own bytes stand out.
UNIT_SHAPE = dict(batch_pairs=1, seq_len=1, vocab=1, hidden=1, layers=1, dtype_bytes=2)


def _states(bd: dict) -> tuple:
    """A breakdown's weights, gradients, optimizer state and reference weights, in that order."""
    return tuple(bd[k] for k in ("weights", "gradients", "optimizer_state", "reference_weights"))


def test_memory_breakdown_hand_checked():
    bd = dpo_memory_breakdown(1000, **HAND_SHAPE)
    # tokens = 2 * 2 * 3 = 12; per layer and token: 2 * (6*4 + 4*8 + 2*2) + 8*4 = 152 bytes
    assert bd == {
        "weights": 2000,
        "gradients": 2000,
        "optimizer_state": 4000,  # two AdamW moments in bf16
        "reference_weights": 2000,
        "activations": 2 * 12 * 152,  # 3648
        "logits_fp32": 12 * 10 * 4,  # 480
        "logits_bf16": 240,
    }
    ckpt = dpo_memory_breakdown(1000, **HAND_SHAPE, gradient_checkpointing=True)
    assert ckpt["activations"] == 2 * 12 * 4 * 2 + 12 * 152 == 2016  # layer inputs + one layer recomputed


def test_memory_breakdown_options():
    mixed = dpo_memory_breakdown(1000, master_weights=True, **UNIT_SHAPE)
    assert mixed["optimizer_state"] == 1000 * (4 + 4 + 4)  # fp32 master copy + two fp32 moments
    lora = dpo_memory_breakdown(1000, lora_params=50, **UNIT_SHAPE)
    assert _states(lora) == (2100, 100, 200, 0)
    assert dpo_memory_breakdown(1000, optimizer="sgd", **UNIT_SHAPE)["optimizer_state"] == 0
    assert dpo_memory_breakdown(1000, precomputed_reference=True, **UNIT_SHAPE)["reference_weights"] == 0


def test_llama_8b_does_not_fit_one_h100_before_activations():
    bd = dpo_memory_breakdown(
        LLAMA_8B, batch_pairs=4, seq_len=1024, vocab=128256, hidden=4096, layers=32, dtype_bytes=2
    )
    states = sum(_states(bd))
    assert states == 10 * LLAMA_8B  # 2 + 2 + 4 + 2 bytes per parameter
    assert states > 80e9
    assert bd["logits_fp32"] == 8 * 1024 * 128256 * 4  # 4.2 GB


def test_shard_per_gpu():
    bd = {
        "weights": 80,
        "gradients": 80,
        "optimizer_state": 160,
        "reference_weights": 80,
        "activations": 50,
        "logits_fp32": 40,
        "logits_bf16": 20,
    }
    assert shard_per_gpu(bd, strategy="ddp", world_size=8) == bd
    z2 = shard_per_gpu(bd, strategy="zero2", world_size=8)
    assert _states(z2) == (80, 10, 20, 80)
    fsdp = shard_per_gpu(bd, strategy="fsdp", world_size=8)
    assert _states(fsdp) == (10, 10, 20, 10)
    assert fsdp["activations"] == 50 and fsdp["logits_fp32"] == 40
    with pytest.raises(ValueError, match="strategy"):
        shard_per_gpu(bd, strategy="zero9", world_size=2)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"dtype_bytes": 3}, "dtype_bytes"),
        ({"optimizer": "adam8bit"}, "optimizer"),
        ({"batch_pairs": 0}, "batch_pairs"),
        ({"lora_params": -1}, "lora_params"),
    ],
)
def test_memory_breakdown_bad_input(kwargs, match):
    args = UNIT_SHAPE | kwargs
    with pytest.raises(ValueError, match=match):
        dpo_memory_breakdown(1000, **args)


# ---------------------------------------------------------------- parameter counts


def test_count_params_hand_checked():
    # hidden 8, 1 layer, vocab 10, MLP 16, 2 heads of 4 (K and V are 8 wide):
    # embedding 80; q, k, v, o 4 * 64; gate, up, down 3 * 128; two layer norms 16; final norm 8
    tied = random_llama(hidden=8, layers=1, vocab=10, intermediate=16, heads=2, kv_heads=2)
    assert count_params(tied) == 80 + 256 + 384 + 16 + 8 == 744
    assert count_params(tied, exclude_embeddings=True) == 744  # the tied embedding is the LM head
    untied = random_llama(
        hidden=8, layers=1, vocab=10, intermediate=16, heads=2, kv_heads=2, tie_embeddings=False
    )
    assert count_params(untied) == 824
    assert count_params(untied, exclude_embeddings=True) == 744
    untied.model.embed_tokens.requires_grad_(False)
    assert count_params(untied, trainable_only=True) == 744


def test_count_params_real_shapes_on_meta():
    one_b = random_llama(
        hidden=2048, layers=16, vocab=128256, intermediate=8192, heads=32, kv_heads=8, device="meta"
    )
    assert count_params(one_b) == LLAMA_1B
    eight_b = random_llama(
        hidden=4096,
        layers=32,
        vocab=128256,
        intermediate=14336,
        heads=32,
        kv_heads=8,
        tie_embeddings=False,
        device="meta",
    )
    assert count_params(eight_b) == LLAMA_8B


# ---------------------------------------------------------------- estimates against measurements


def test_step_flops_match_the_flop_counter():
    """FlopCounterMode counts every matmul of a real DPO step: 8N per token (attention products aside)."""
    policy = random_llama(hidden=64, layers=2, vocab=256, intermediate=128)
    reference = copy.deepcopy(policy).requires_grad_(False)
    batch = random_preference_batch(2, 16, 256)
    opt = torch.optim.SGD(policy.parameters(), lr=0.0)
    with FlopCounterMode(display=False) as counter:
        loss = dpo_step(policy, opt, batch, reference=reference)
    assert loss == pytest.approx(0.6931, abs=1e-4)  # policy == reference: log 2
    expected = dpo_step_flops(count_params(policy, exclude_embeddings=True), 32, 32)
    assert counter.get_total_flops() == pytest.approx(expected, rel=0.01)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_activation_estimate_matches_saved_tensors(dtype):
    shape = dict(hidden=128, layers=2, vocab=256, intermediate=512)
    model = random_llama(**shape, dtype=dtype)
    batch = random_preference_batch(2, 64, 256)
    with saved_tensor_bytes(model.parameters()) as meter:
        model.model(input_ids=batch["input_ids"], use_cache=False)
    kv_hidden = model.config.num_key_value_heads * model.config.head_dim  # 2 heads of 64: no grouping
    bd = dpo_memory_breakdown(
        count_params(model),
        batch_pairs=2,
        seq_len=64,
        dtype_bytes=dtype.itemsize,
        kv_hidden=kv_hidden,
        **shape,
    )
    assert meter.bytes == pytest.approx(bd["activations"], rel=0.1)


def test_checkpointing_peak_follows_the_estimate():
    peaks = {}
    for ckpt in (False, True):
        model = random_llama(hidden=64, layers=6, vocab=256, intermediate=256)
        if ckpt:
            enable_checkpointing(model)
        batch = random_preference_batch(2, 128, 256)

        def forward_backward(model=model, batch=batch):
            chosen, rejected = concatenated_forward(model, batch)
            (chosen - rejected).sum().backward()

        peaks[ckpt] = peak_memory(forward_backward)[1]
    kw = dict(batch_pairs=2, seq_len=128, vocab=256, hidden=64, layers=6, dtype_bytes=4, intermediate=256)
    saved = (
        dpo_memory_breakdown(1, **kw)["activations"]
        - dpo_memory_breakdown(1, gradient_checkpointing=True, **kw)["activations"]
    )
    assert peaks[False] - peaks[True] == pytest.approx(saved, rel=0.25)

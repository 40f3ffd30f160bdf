"""Tests for dpo_course.scaling (measure, fixtures, logprob_methods): memory meters with hand-checked bytes, random
batches, DPO steps, and the log-prob methods agreeing."""

import copy

import pytest
import torch

from dpo_course.scaling import (
    LOGPROB_METHODS,
    device_name,
    fused_logps,
    naive_fp32_logps,
    peak_memory,
    peak_rss,
    random_llama,
    random_preference_batch,
    saved_tensor_bytes,
    time_and_memory,
)
from dpo_course.train import dpo_step


def test_peak_memory_hand_checked(device):
    # ones (4 MB) and ones * 2 (4 MB) live together; both are freed by the time .sum() returns
    _, peak = peak_memory(lambda: (torch.ones(1_000_000, device=device) * 2).sum(), device=device)
    assert 8_000_000 <= peak < 8_000_000 + 4096

    # a tensor freed before the next is allocated does not add up: 4 MB at a time
    def one_at_a_time():
        for _ in range(3):
            torch.ones(1_000_000, device=device).sum()

    assert 4_000_000 <= peak_memory(one_at_a_time, device=device)[1] < 4_000_000 + 4096


def test_peak_memory_refuses_devices_it_cannot_measure():
    with pytest.raises(ValueError, match="CUDA or CPU"):
        peak_memory(lambda: None, device="meta")


def test_peak_rss_sees_a_large_allocation():
    _, grew = peak_rss(lambda: torch.ones(50_000_000).sum())  # 200 MB, touched
    assert 150e6 < grew < 400e6


def test_saved_tensor_bytes_counts_the_input_not_the_weight():
    lin = torch.nn.Linear(4, 3, bias=False)
    x = torch.randn(5, 4, requires_grad=True)  # so the weight is saved too (for x's gradient)
    with saved_tensor_bytes(lin.parameters()) as meter:
        lin(x)
    assert meter.bytes == 5 * 4 * 4  # x, fp32; the (3, 4) weight is excluded
    with saved_tensor_bytes() as meter:
        lin(x)
    assert meter.bytes == 80 + 3 * 4 * 4


def test_random_preference_batch_shapes_and_shared_prompts():
    b = random_preference_batch(3, 10, 50, prompt_len=4, seed=1)
    assert set(b) == {"input_ids", "attention_mask", "completion_mask"}
    assert all(v.shape == (6, 10) for v in b.values())
    assert torch.equal(b["input_ids"][:3, :4], b["input_ids"][3:, :4])  # chosen and rejected share the prompt
    assert b["completion_mask"][:, :4].sum() == 0 and b["completion_mask"][:, 4:].all()
    assert int(b["input_ids"].min()) >= 2 and int(b["input_ids"].max()) < 50
    with pytest.raises(ValueError, match="prompt_len"):
        random_preference_batch(1, 4, 50, prompt_len=4)


def test_dpo_step_starts_at_log_two_and_moves_the_policy():
    policy = random_llama(hidden=32, layers=1, vocab=64, intermediate=64)
    reference = copy.deepcopy(policy).requires_grad_(False)
    batch = random_preference_batch(2, 12, 64)
    opt = torch.optim.AdamW(policy.parameters(), lr=1e-2)
    first = dpo_step(policy, opt, batch, reference=reference)
    assert first == pytest.approx(0.693147, abs=1e-5)  # policy == reference
    second = dpo_step(policy, opt, batch, reference=reference)
    assert second < first
    with pytest.raises(ValueError, match="exactly one"):
        dpo_step(policy, opt, batch)


def test_logprob_methods_agree(device):
    torch.manual_seed(0)
    hidden = torch.randn(40, 16, device=device, requires_grad=True)
    weight = (torch.randn(300, 16, device=device) * 0.3).requires_grad_()
    targets = torch.randint(0, 300, (40,), device=device)
    expected = torch.log_softmax(hidden.double() @ weight.double().T, -1)[torch.arange(40), targets]
    for name, fn in LOGPROB_METHODS.items():
        if name.startswith("floor"):
            continue
        torch.testing.assert_close(
            fn(hidden, weight, targets).double(), expected, atol=1e-4, rtol=0, msg=name
        )
    # gradients of the fused kernel equal the naive ones
    grads = []
    for fn in (naive_fp32_logps, fused_logps):
        hidden.grad = weight.grad = None
        fn(hidden, weight, targets).sum().backward()
        grads.append((hidden.grad.clone(), weight.grad.clone()))
    torch.testing.assert_close(grads[0], grads[1], atol=1e-5, rtol=1e-4)


def test_time_and_memory_reports_the_logits_of_the_naive_method():
    torch.manual_seed(0)
    N, H, V = 256, 8, 4096  # fp32 logits: 4 MiB
    hidden = torch.randn(N, H, requires_grad=True)
    weight = torch.randn(V, H, requires_grad=True)
    targets = torch.randint(0, V, (N,))
    naive = time_and_memory(naive_fp32_logps, hidden, weight, targets, repeats=1, warmup=0)
    assert naive["seconds"] > 0 and naive["values"].shape == (N,)
    assert naive["peak_bytes"] >= 2 * N * V * 4  # logits and their log-softmax at least
    assert "cpu" in device_name(torch.device("cpu"))

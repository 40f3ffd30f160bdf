"""Tests for dpo_course.logprobs: hand-checked values, fused == simple (values and gradients), memory."""

import copy
import subprocess
import sys
import textwrap

import pytest
import torch

import dpo_course.logprobs.fused as lp
from dpo_course.logprobs import concatenated_forward, fused_sequence_logps, sequence_logps

# ---------------------------------------------------------------- hand-checked values

# One row, V = 3. Position t scores token t+1:
#   t=0 logits [1, 2, 3]  -> token 2 at t=1 is prompt: not scored
#   t=1 logits [0, 0, 0]  -> token 1 at t=2: log(1/3)                       = -1.0986
#   t=2 logits [2, 0, -1] -> token 1 at t=3: 0 - (2 + log(1 + e^-2 + e^-3)) = -2.1698
#   t=3 logits [5, 0, 0]  -> nothing after it: never used
# Without the shift, token 1 at t=3 would be scored by [5, 0, 0] (-5.0134) and the sum would differ.
HAND_LOGITS = torch.tensor([[[1.0, 2, 3], [0, 0, 0], [2, 0, -1], [5, 0, 0]]])  # (1, 4, 3)
HAND_IDS = torch.tensor([[0, 2, 1, 1]])  # (1, 4)


@pytest.mark.parametrize(
    ("mask", "expected_sum", "expected_mean"),
    [
        ([1, 0, 1, 1], -3.2685, -1.6342),  # completion_mask[:, 0] = 1 is ignored ...
        ([0, 0, 1, 1], -3.2685, -1.6342),  # ... so this row gives the same numbers
        ([0, 0, 0, 1], -2.1698, -2.1698),
        ([1, 0, 0, 0], 0.0, 0.0),  # nothing scored: 0, not NaN
    ],
)
def test_sequence_logps_hand_checked(mask, expected_sum, expected_mean):
    m = torch.tensor([mask])
    total = sequence_logps(HAND_LOGITS, HAND_IDS, m)
    mean = sequence_logps(HAND_LOGITS, HAND_IDS, m, average=True)
    assert total.shape == (1,)
    torch.testing.assert_close(total, torch.tensor([expected_sum]), atol=1e-4, rtol=0)
    torch.testing.assert_close(mean, torch.tensor([expected_mean]), atol=1e-4, rtol=0)


def test_sequence_logps_last_logits_unused_and_fused_agrees():
    changed = HAND_LOGITS.clone()
    changed[:, -1] = torch.tensor([-9.0, 9.0, 0.0])
    m = torch.tensor([[0, 0, 1, 1]])
    assert sequence_logps(changed, HAND_IDS, m).item() == pytest.approx(-3.2685, abs=1e-4)
    # logits = hidden @ I: the fused path gives the same hand-checked number
    fused = fused_sequence_logps(HAND_LOGITS, torch.eye(3), HAND_IDS, m, average=True)
    assert fused.item() == pytest.approx(-1.6342, abs=1e-4)


def test_sequence_logps_matches_log_softmax_and_upcasts_bf16():
    torch.manual_seed(0)
    logits = torch.randn(3, 7, 11) * 3
    ids = torch.randint(0, 11, (3, 7))
    mask = (torch.rand(3, 7) > 0.4).long()
    ref = (torch.log_softmax(logits[:, :-1], -1).gather(-1, ids[:, 1:, None]).squeeze(-1) * mask[:, 1:]).sum(
        -1
    )
    torch.testing.assert_close(sequence_logps(logits, ids, mask), ref)
    low = sequence_logps(logits.bfloat16(), ids, mask)
    assert low.dtype == torch.float32
    torch.testing.assert_close(low, sequence_logps(logits.bfloat16().float(), ids, mask))


# ---------------------------------------------------------------- fused == simple

# (B, T, H, V, chunk_size, TILE_ELEMENTS): one tile; several token chunks; token chunks x vocab tiles
CASES = [
    (2, 9, 16, 40, None, 2**25),
    (3, 13, 8, 97, 5, 2**25),
    (4, 17, 12, 130, 7, 7 * 32),
    (1, 6, 4, 10, 1, 3),
]


def _inputs(B, T, H, V, device, seed=0):
    g = torch.Generator().manual_seed(seed)
    hidden = torch.randn(B, T, H, generator=g)
    weight = torch.randn(V, H, generator=g) * 0.5
    ids = torch.randint(0, V, (B, T), generator=g)
    prompt = torch.randint(1, T // 2 + 1, (B,), generator=g)
    length = torch.randint(T // 2, T + 1, (B,), generator=g)
    pos = torch.arange(T)
    mask = ((pos >= prompt[:, None]) & (pos < length[:, None])).long()  # prompt, response, right padding
    ids = torch.where(pos < length[:, None], ids, 0)
    mask[-1] = 0  # an all-masked row
    return hidden.to(device), weight.to(device), ids.to(device), mask.to(device)


def _value_and_grads(fn, hidden, weight, ids, mask, **kw):
    hidden = hidden.detach().requires_grad_()
    weight = weight.detach().requires_grad_()
    out = fn(hidden, weight, ids, mask, **kw)
    scale = torch.linspace(0.5, 2.0, out.shape[0], device=out.device)  # unequal upstream gradients
    (out * scale).sum().backward()
    return out, hidden.grad, weight.grad


def _simple(hidden, weight, ids, mask, average=False):
    return sequence_logps(hidden @ weight.T, ids, mask, average=average)


@pytest.mark.parametrize("average", [False, True])
@pytest.mark.parametrize(("B", "T", "H", "V", "chunk", "tile"), CASES)
def test_fused_equals_simple_fp32(monkeypatch, device, average, B, T, H, V, chunk, tile):
    monkeypatch.setattr(lp, "TILE_ELEMENTS", tile)
    inputs = _inputs(B, T, H, V, device)
    ref = _value_and_grads(_simple, *inputs, average=average)
    got = _value_and_grads(fused_sequence_logps, *inputs, average=average, chunk_size=chunk)
    assert got[0][-1].item() == 0.0  # the all-masked row
    for name, a, b in zip(("logps", "grad hidden", "grad weight"), got, ref, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5, msg=lambda m, name=name: f"{name}: {m}")


@pytest.mark.parametrize(("chunk", "tile"), [(None, 2**25), (16, 16 * 64)])
def test_fused_bf16_close_to_fp32(monkeypatch, device, chunk, tile):
    """bf16 inputs, fp32 logits and accumulators: 4 rows x 50 scored tokens, V = 300, logps ~ -330.

    Against fp32 math on the same bf16-rounded inputs, only summation order differs: logps to
    atol 1e-2 (measured 6e-5 on CPU); gradients, returned in bf16, to rtol 1e-2 + atol 1e-3
    (measured 0.4% = bf16's rounding). Against fp32 math on the unrounded inputs, which measures
    what rounding the inputs to bf16 costs: logps to atol 0.1 (measured 0.022 here, at most 0.076
    over 12 seeds).
    """
    monkeypatch.setattr(lp, "TILE_ELEMENTS", tile)
    hidden, weight, ids, mask = _inputs(4, 64, 32, 300, device, seed=1)
    weight = weight * 0.5  # logits with std ~1.4
    mask = torch.zeros_like(mask)
    mask[:, 10:60] = 1  # 50 scored tokens per row
    got = _value_and_grads(
        fused_sequence_logps, hidden.bfloat16(), weight.bfloat16(), ids, mask, chunk_size=chunk
    )
    assert got[0].dtype == torch.float32 and got[1].dtype == got[2].dtype == torch.bfloat16
    same = _value_and_grads(_simple, hidden.bfloat16().float(), weight.bfloat16().float(), ids, mask)
    torch.testing.assert_close(got[0], same[0], atol=1e-2, rtol=0)
    torch.testing.assert_close(got[1].float(), same[1], atol=1e-3, rtol=1e-2)
    torch.testing.assert_close(got[2].float(), same[2], atol=1e-3, rtol=1e-2)
    exact = _simple(hidden, weight, ids, mask)
    torch.testing.assert_close(got[0], exact, atol=0.1, rtol=0)


def test_fused_matches_trl_chunked_logprob(device):
    """Same per-token values and gradients as TRL's ChunkedLogProbFunction on the scored positions."""
    trl_kernel = pytest.importorskip("trl.kernels.chunked_logprob")
    hidden, weight, ids, mask = _inputs(3, 21, 16, 90, device, seed=4)
    ours = _value_and_grads(fused_sequence_logps, hidden, weight, ids, mask, chunk_size=8)

    def trl_logps(h, w, ids, mask):
        scored = mask[:, 1:] != 0  # (B, T-1)
        per_token, *_ = trl_kernel.ChunkedLogProbFunction.apply(
            h[:, :-1][scored], w, None, ids[:, 1:][scored], 1.0, 32, None, 1.0, ()
        )
        return torch.zeros(h.shape[0], device=h.device).index_add(0, scored.nonzero()[:, 0], per_token)

    theirs = _value_and_grads(trl_logps, hidden, weight, ids, mask)
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_fused_gradcheck_float64(monkeypatch):
    monkeypatch.setattr(
        lp, "TILE_ELEMENTS", 4
    )  # chunk_size 2 -> vocabulary tiles of 2: every seam is crossed
    hidden, weight, ids, mask = _inputs(2, 5, 3, 5, "cpu", seed=2)
    mask[-1, 2:] = 1
    fn = lambda h, w: fused_sequence_logps(h, w, ids, mask, chunk_size=2, average=True)
    args = (hidden.double().requires_grad_(), weight.double().requires_grad_())
    assert torch.autograd.gradcheck(fn, args, eps=1e-6, atol=1e-7)


def test_fused_only_weight_or_only_hidden_grad():
    hidden, weight, ids, mask = _inputs(2, 8, 6, 20, "cpu", seed=3)
    frozen = weight.clone()  # e.g. a frozen lm_head under LoRA
    h = hidden.clone().requires_grad_()
    fused_sequence_logps(h, frozen, ids, mask).sum().backward()
    h_ref = hidden.clone().requires_grad_()
    _simple(h_ref, frozen, ids, mask).sum().backward()
    torch.testing.assert_close(h.grad, h_ref.grad, atol=1e-5, rtol=1e-5)
    assert frozen.grad is None


# ---------------------------------------------------------------- concatenated_forward on the toy model


@pytest.fixture(scope="module")
def toy():
    from dpo_course.toyworld import load_sft_model

    model, tok = load_sft_model("cpu")
    return model, tok


def _pairs_batch(B, pad_id, seed=0):
    """A hand-built PreferenceCollator batch: rows [chosen; rejected], prompt + response, right-padded."""
    g = torch.Generator().manual_seed(seed)
    rows = []
    for key in ("chosen", "rejected"):
        for i in range(B):
            prompt = torch.randint(5, 700, (3 + i,), generator=g).tolist()
            response = torch.randint(5, 700, (2 + 3 * i + (key == "rejected"),), generator=g).tolist()
            rows.append((prompt, response))
    T = max(len(p) + len(r) for p, r in rows)
    batch = {
        k: torch.zeros(2 * B, T, dtype=torch.long) for k in ("input_ids", "attention_mask", "completion_mask")
    }
    batch["input_ids"].fill_(pad_id)
    for i, (p, r) in enumerate(rows):
        batch["input_ids"][i, : len(p) + len(r)] = torch.tensor(p + r)
        batch["attention_mask"][i, : len(p) + len(r)] = 1
        batch["completion_mask"][i, len(p) : len(p) + len(r)] = 1
    return batch, rows


@pytest.mark.parametrize("B", [1, 3])
@pytest.mark.parametrize("average", [False, True])
def test_concatenated_forward_equals_separate_scoring(toy, B, average):
    model, tok = toy
    batch, rows = _pairs_batch(B, tok.pad_token_id)
    with torch.no_grad():
        chosen, rejected = concatenated_forward(model, batch, average=average)
        f_chosen, f_rejected = concatenated_forward(model, batch, average=average, fused=True)
        separate = []
        for p, r in rows:  # each sequence alone, unpadded
            ids = torch.tensor([p + r])
            mask = torch.tensor([[0] * len(p) + [1] * len(r)])
            separate.append(sequence_logps(model(input_ids=ids).logits, ids, mask, average=average))
    separate = torch.cat(separate)
    assert chosen.shape == rejected.shape == (B,)
    torch.testing.assert_close(torch.cat([chosen, rejected]), separate, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(torch.cat([f_chosen, f_rejected]), separate, atol=1e-5, rtol=1e-5)


def test_concatenated_forward_fused_gradients_match(toy):
    model, tok = toy
    batch, _ = _pairs_batch(2, tok.pad_token_id, seed=1)
    grads = []
    for fused in (False, True):
        model.zero_grad()
        chosen, rejected = concatenated_forward(model, batch, fused=fused)
        (chosen - 0.5 * rejected).sum().backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    model.zero_grad()
    assert grads[0].keys() == grads[1].keys() and len(grads[0]) > 10
    for name in grads[0]:
        torch.testing.assert_close(grads[1][name], grads[0][name], atol=1e-5, rtol=1e-4, msg=name)


def test_concatenated_forward_peft_model(toy):
    peft = pytest.importorskip("peft")
    model, tok = toy
    config = peft.LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    wrapped = peft.get_peft_model(copy.deepcopy(model), config)
    batch, _ = _pairs_batch(2, tok.pad_token_id, seed=2)
    with torch.no_grad():
        plain = concatenated_forward(wrapped, batch)
        fused = concatenated_forward(wrapped, batch, fused=True)
        base = concatenated_forward(model, batch)
    torch.testing.assert_close(fused, plain, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(plain[0], base[0])  # the adapters are in the decoder the fused path ran


def test_concatenated_forward_head_with_bias_falls_back(toy):
    model, tok = toy
    biased = copy.deepcopy(model)
    biased.lm_head = torch.nn.Linear(128, 768, bias=True)
    batch, _ = _pairs_batch(1, tok.pad_token_id)
    with torch.no_grad(), pytest.warns(UserWarning, match="bias"):
        fused = concatenated_forward(biased, batch, fused=True)
    with torch.no_grad():
        plain = concatenated_forward(biased, batch)
    torch.testing.assert_close(fused, plain)


# ---------------------------------------------------------------- bad input

L3, IDS, MASK = torch.zeros(2, 5, 7), torch.zeros(2, 5, dtype=torch.long), torch.ones(2, 5)
BAD = [
    (lambda: sequence_logps(torch.zeros(2, 5), IDS, MASK), "logits"),
    (
        lambda: sequence_logps(L3, torch.zeros(2, 6, dtype=torch.long), MASK),
        r"input_ids must be \(B, T\) = \(2, 5\)",
    ),
    (lambda: sequence_logps(L3, IDS.float(), MASK), "input_ids must hold integer"),
    (lambda: sequence_logps(L3, IDS + 7, MASK), r"input_ids must lie in \[0, V\)"),
    (
        lambda: sequence_logps(L3, IDS, torch.ones(2, 4)),
        r"completion_mask must be \(B, T\) = \(2, 5\).*\(2, 4\)",
    ),
    (lambda: sequence_logps(L3, IDS, torch.ones(10)), "completion_mask"),
    (lambda: fused_sequence_logps(torch.zeros(2, 5), torch.zeros(7, 4), IDS, MASK), "hidden_states"),
    (
        lambda: fused_sequence_logps(torch.zeros(2, 5, 4), torch.zeros(7, 3), IDS, MASK),
        r"lm_head_weight.*\(7, 3\)",
    ),
    (lambda: fused_sequence_logps(torch.zeros(2, 5, 4), torch.zeros(7, 4), IDS[:1], MASK), "input_ids"),
    (
        lambda: fused_sequence_logps(torch.zeros(2, 5, 4), torch.zeros(7, 4), IDS, MASK, chunk_size=0),
        "chunk_size",
    ),
    (
        lambda: concatenated_forward(None, {"input_ids": IDS, "attention_mask": MASK}),
        r"missing \['completion_mask'\]",
    ),
    (
        lambda: concatenated_forward(
            None, {"input_ids": IDS[:1], "attention_mask": MASK, "completion_mask": MASK}
        ),
        "2B",
    ),
]


@pytest.mark.parametrize(("call", "match"), BAD)
def test_bad_input_names_the_argument(call, match):
    with pytest.raises(ValueError, match=match) as info:
        call()
    assert info.type is ValueError  # raised by our checks, not a torch error that happens to subclass it


# ---------------------------------------------------------------- memory

MEMORY_SCRIPT = textwrap.dedent(
    """
    import resource, sys, psutil, torch
    torch.set_num_threads(1)  # the same peak with any thread count; 1 is steady on a busy runner
    from dpo_course.logprobs import fused_sequence_logps, sequence_logps
    torch.manual_seed(0)
    B, T, H, V = 4, 1025, 64, 32000  # 4 x 1024 scored tokens
    hidden = torch.randn(B, T, H, requires_grad=True)
    weight = (torch.randn(V, H) * 0.02).requires_grad_()
    ids, mask = torch.randint(0, V, (B, T)), torch.ones(B, T, dtype=torch.long)
    before = psutil.Process().memory_info().rss  # current RSS: an earlier, higher peak only inflates the result
    if sys.argv[1] == "naive":
        out = sequence_logps(hidden @ weight.T, ids, mask)
    else:
        out = fused_sequence_logps(hidden, weight, ids, mask)
    out.sum().backward()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)
    print(peak - before)
    """
)


@pytest.mark.slow
def test_fused_peak_memory_below_naive_by_the_logits():
    """Peak RSS growth of forward + backward, each path in a fresh process (torch bypasses tracemalloc).

    Measured: naive 1.59 GB (the logits, their gradient and temporaries: ~3x the logits), fused
    0.16 GB (one 128 MiB tile plus small buffers); the (4, 1025, 32000) fp32 logits are 0.52 GB.
    """
    peaks = {}
    for path in ("naive", "fused"):
        run = subprocess.run(
            [sys.executable, "-c", MEMORY_SCRIPT, path], capture_output=True, text=True, timeout=300
        )
        assert run.returncode == 0, run.stderr
        peaks[path] = int(run.stdout.split()[-1])
    logits_bytes = 4 * 1025 * 32000 * 4
    assert peaks["naive"] - peaks["fused"] >= logits_bytes, peaks
    assert peaks["fused"] < logits_bytes, peaks

"""NF4 in plain torch (dpo_course/scaling/quantize.py): the code table, the round trip, the simulated base."""

import pytest
import torch

from dpo_course.scaling import (
    NF4_CODE,
    dequantize_nf4,
    nf4_bits_per_param,
    nf4_round_trip,
    normal_float_code,
    quantize_nf4,
    simulate_nf4_base_,
)

# bitsandbytes' table, written out by hand from `bitsandbytes.functional.get_4bit_type("nf4")`
# (the same 16 values as its CUDA kernel's `nf4_dequantization_lut`).
BNB_NF4 = [
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


def matches_bnb_table(code: torch.Tensor, atol: float = 1e-7) -> bool:
    expected = torch.tensor(BNB_NF4)
    return code.shape == expected.shape and bool(torch.allclose(code.float(), expected, rtol=0, atol=atol))


def test_the_shipped_code_is_bitsandbytes_table():
    assert NF4_CODE.dtype == torch.float32
    assert matches_bnb_table(NF4_CODE, atol=0)


def test_the_code_built_from_normal_quantiles_is_the_table():
    built = normal_float_code()
    assert matches_bnb_table(built, atol=2e-7)
    # 7 negative values, an exact zero, 8 positive: the asymmetric construction of section 3
    assert (built < 0).sum() == 7 and (built == 0).sum() == 1 and (built > 0).sum() == 8
    assert built.min() == -1 and built.max() == 1


@pytest.mark.parametrize(
    "wrong",
    [
        torch.linspace(-1, 1, 16),  # uniform int4-like code: no zero, wrong spacing
        normal_float_code(offset=0.99),  # the right construction with another offset
        torch.tensor(BNB_NF4).flip(0) * -1 + 0.0,  # mirrored: 8 negative values, 7 positive
        torch.tensor(BNB_NF4[:7] + [1e-3] + BNB_NF4[8:]),  # zero moved off zero
    ],
)
def test_a_wrong_codebook_fails_the_table_check(wrong):
    assert not matches_bnb_table(wrong)


def test_a_wrong_codebook_changes_the_round_trip():
    w = torch.linspace(-1, 1, 64)
    right = dequantize_nf4(quantize_nf4(w))
    wrong_code = torch.linspace(-1, 1, 16)
    wrong = dequantize_nf4(quantize_nf4(w, code=wrong_code), code=wrong_code)
    assert not torch.allclose(right, wrong)


def test_hand_checked_indices():
    # one block, absmax 2: w / 2 lands on code values 0 (-1), 7 (0), 15 (1) and next to 9 (0.1609)
    w = torch.tensor([-2.0, 0.0, 2.0, 0.33] + [0.0] * 60)
    q = quantize_nf4(w)
    assert q.absmax.tolist() == [2.0]
    assert q.indices[0, :4].tolist() == [0, 7, 15, 9]
    assert dequantize_nf4(q)[:4].tolist() == pytest.approx([-2.0, 0.0, 2.0, 2 * 0.16093020141124725])


def test_zero_is_exact_and_every_block_max_is_exact():
    torch.manual_seed(0)
    w = torch.randn(8, 64)
    w[:, 5] = 0.0
    out = nf4_round_trip(w)
    assert (out[:, 5] == 0).all()
    # the value of largest magnitude in each block maps to +-1 * absmax exactly
    idx = w.abs().argmax(dim=1)
    assert torch.equal(out.gather(1, idx[:, None]), w.gather(1, idx[:, None]))


def test_round_trip_error_is_at_most_half_the_largest_gap_times_absmax():
    torch.manual_seed(0)
    w = torch.randn(32, 256) * 0.02
    out = nf4_round_trip(w)
    half_gap = (NF4_CODE[1:] - NF4_CODE[:-1]).max() / 2  # 0.1385, between 0.7230 and 1
    absmax = w.reshape(-1, 64).abs().amax(dim=1, keepdim=True)
    err = (out - w).reshape(-1, 64).abs()
    assert (err <= half_gap * absmax * (1 + 1e-6)).all()
    assert err.max() > 0  # it is a 4-bit code: not lossless
    # the typical error is far below the bound (most values sit where the code is dense)
    assert (err / absmax).mean() < 0.05


def test_shapes_not_divisible_by_the_block_size_are_handled():
    torch.manual_seed(0)
    w = torch.randn(7, 13)  # 91 values: one full block and one of 27
    q = quantize_nf4(w)
    assert q.indices.shape == (2, 64) and q.absmax.shape == (2,)
    flat = w.reshape(-1)
    assert q.absmax[1] == flat[64:].abs().max()  # the padding's zeros did not change the last absmax
    out = dequantize_nf4(q)
    assert out.shape == w.shape and out.dtype == w.dtype
    half_gap = (NF4_CODE[1:] - NF4_CODE[:-1]).max() / 2
    assert ((out - w).reshape(-1)[64:].abs() <= half_gap * q.absmax[1] * (1 + 1e-6)).all()


def test_bad_inputs_are_rejected_with_clear_errors():
    with pytest.raises(ValueError, match="block_size"):
        quantize_nf4(torch.randn(64), block_size=0)
    with pytest.raises(TypeError, match="floating-point"):
        quantize_nf4(torch.arange(64))
    with pytest.raises(ValueError, match="empty"):
        quantize_nf4(torch.empty(0))
    with pytest.raises(ValueError, match="sorted"):
        quantize_nf4(torch.randn(64), code=NF4_CODE.flip(0))


def test_an_all_zero_block_round_trips_to_zero():
    out = nf4_round_trip(torch.zeros(2, 64))
    assert torch.equal(out, torch.zeros(2, 64))


def test_round_trip_keeps_dtype_or_casts_to_the_compute_dtype():
    w = torch.randn(4, 64, dtype=torch.bfloat16)
    assert nf4_round_trip(w).dtype == torch.bfloat16
    assert nf4_round_trip(w.float(), dtype=torch.bfloat16).dtype == torch.bfloat16
    # quantizing an NF4 round trip again changes nothing: its values are already on the code
    once = nf4_round_trip(w.float())
    assert torch.equal(nf4_round_trip(once), once)


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(10, 64)
        self.proj = torch.nn.Linear(64, 64)
        self.trainable = torch.nn.Linear(64, 64)
        self.lm_head = torch.nn.Linear(64, 10, bias=False)


def test_simulated_base_replaces_only_frozen_linear_weights():
    torch.manual_seed(0)
    model = Tiny().requires_grad_(False)
    model.trainable.requires_grad_(True)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    names = simulate_nf4_base_(model)
    assert names == ["proj"]
    assert torch.equal(model.proj.weight, nf4_round_trip(before["proj.weight"]))
    assert not torch.equal(model.proj.weight, before["proj.weight"])
    for kept in ("proj.bias", "embed.weight", "trainable.weight", "lm_head.weight"):
        assert torch.equal(dict(model.named_parameters())[kept], before[kept]), kept
    # nothing frozen to quantize is an error, not a silent no-op
    with pytest.raises(ValueError, match="no frozen"):
        simulate_nf4_base_(Tiny())


def test_memory_arithmetic():
    assert nf4_bits_per_param() == 4.5  # 4 bits + a float32 absmax per 64 weights
    assert nf4_bits_per_param(double_quant=True) == pytest.approx(4.127, abs=5e-4)  # section 3's 0.127
    assert nf4_bits_per_param(double_quant=True) - 4 == pytest.approx(8 / 64 + 32 / (64 * 256))


def test_bit_for_bit_equal_to_bitsandbytes_when_installed():
    # Not a dependency (its CUDA wheels are large); bitsandbytes >= 0.46 also quantizes on a CPU.
    functional = pytest.importorskip("bitsandbytes.functional")
    assert torch.equal(functional.get_4bit_type("nf4", device="cpu"), NF4_CODE)
    torch.manual_seed(0)
    for shape in [(128, 128), (352, 128), (7, 13)]:
        w = torch.randn(*shape) * 0.05
        packed, state = functional.quantize_4bit(w, blocksize=64, quant_type="nf4")
        assert torch.equal(functional.dequantize_4bit(packed, state), nf4_round_trip(w))

"""Exercises of 07-09 against independent computations, and evaluate/length.py (the length-controlled win rate).

The generic checks (solution passes, stub not attempted, every mistake fails with its hint) are in
test_exercises.py; here each reference is pinned to TRL 1.16, the package, or numbers written out by hand.
"""

import math
import random

import pytest
import torch
from trl.trainer.utils import nanstd

from dpo_course.evaluate import LengthControlledWinRate, fit_length_glm, length_controlled_win_rate
from dpo_course.exercises import ex07, ex08, ex09
from dpo_course.exercises.framework import CORRECT, WRONG
from dpo_course.scaling import dpo_memory_breakdown

# ------------------------------------------------------------------ ex08: GRPO


def test_group_advantages_match_trl_formula():
    """TRL 1.16's default (scale_rewards='group'): (r - group mean) / (nanstd(group) + 1e-4)."""
    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0, -1.0, -1.0, 0.0, 1.0, 0.5, 0.5, 0.5, 0.5])
    grouped = rewards.view(-1, 4)
    trl = (grouped - grouped.mean(1, keepdim=True)) / (nanstd(grouped, dim=1).unsqueeze(1) + 1e-4)
    torch.testing.assert_close(ex08._group_advantages(rewards, 4), trl.view(-1))


def test_tied_group_gets_zero_advantage_not_nan():
    adv = ex08._group_advantages(torch.tensor([0.3, 0.3, 0.3, 1.0, 0.0, 0.0]), 3)
    assert torch.equal(adv[:3], torch.zeros(3))
    assert not torch.isnan(adv).any() and adv[3] > 0 > adv[4]


def test_nan_advantages_get_the_tied_group_hint():
    result = ex08.q1.evaluate(ex08._no_epsilon)
    assert result.status == WRONG and "NaN" in result.message and "1e-4" in result.message


def test_loss_normalisations_by_hand():
    loss, mask = ex08._LOSS, ex08._MASK
    # sequences: [0.5, -1, 2] (3 tokens), [1, 1] (2), [-2, .5, .5, .5] (4); sums 1.5, 2.0, -0.5
    assert ex08._aggregate(loss, mask, "grpo", 4).item() == pytest.approx((1.5 / 3 + 2.0 / 2 - 0.5 / 4) / 3)
    assert ex08._aggregate(loss, mask, "dapo", 4).item() == pytest.approx(3.0 / 9)
    assert ex08._aggregate(loss, mask, "dr_grpo", 4).item() == pytest.approx(3.0 / 12)
    with pytest.raises(ValueError):
        ex08._aggregate(loss, mask, "ppo", 4)


def test_rloo_advantages_match_trl_formula():
    """TRL 1.16's RLOOTrainer (normalize_advantages=False): r - (group sum - r) / (k - 1), no std."""
    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0, -1.0, -1.0, 0.0, 1.0, 0.5, 0.5, 0.5, 0.5])
    grouped = rewards.view(-1, 4)
    counts = (~torch.isnan(grouped)).sum(dim=1, keepdim=True)
    baselines = (torch.nansum(grouped, dim=1, keepdim=True) - grouped) / (counts - 1)
    torch.testing.assert_close(ex08._rloo_advantages(rewards, 4), (grouped - baselines).view(-1))


def test_rloo_is_k_over_k_minus_1_times_the_centred_reward_and_zero_on_ties():
    rewards = torch.tensor([0.3, 0.3, 0.3, 1.0, 0.0, 0.0])
    adv = ex08._rloo_advantages(rewards, 3)
    assert torch.equal(adv[:3], torch.zeros(3))
    torch.testing.assert_close(adv[3:], 1.5 * (rewards[3:] - rewards[3:].mean()))
    # by hand: 1 - (0 + 0) / 2 = 1, 0 - (1 + 0) / 2 = -0.5
    torch.testing.assert_close(adv[3:], torch.tensor([1.0, -0.5, -0.5]))


def test_rloo_self_included_baseline_gets_its_hint():
    result = ex08.q3.evaluate(ex08._self_included)
    assert result.status == WRONG and "k / (k - 1)" in result.message
    assert ex08.q3.evaluate(ex08._rloo_advantages).status == CORRECT


# ------------------------------------------------------------------ ex09: a memory budget


def test_state_bytes_match_the_mixed_precision_breakdown():
    n = 8_030_261_248
    kw = dict(batch_pairs=1, seq_len=8, vocab=10, hidden=8, layers=1, dtype_bytes=2, master_weights=True)
    full = dpo_memory_breakdown(n, **kw)
    states = ("weights", "gradients", "optimizer_state", "reference_weights")
    assert sum(full[k] for k in states) == ex09._state_bytes(n) == 18 * n
    lora = 41_943_040  # rank 16 on every linear layer of Llama 3.1 8B
    assert ex09._state_bytes(n, lora) == 2 * n + 16 * lora
    assert 8.5 < ex09._state_bytes(n) / ex09._state_bytes(n, lora) < 9.0  # "about 9x", item 1 of issue 14


# ------------------------------------------------------------------ ex07: bootstrap and length control


def test_cluster_bootstrap_is_wider_than_resampling_comparisons():
    scores, groups = ex07._bootstrap_case(0, 16, 8)
    cluster = ex07._cluster_bootstrap(scores, groups)
    single = ex07._single_comparisons(scores, groups)
    assert cluster[1] - cluster[0] > 1.5 * (single[1] - single[0])
    mean = sum(scores) / len(scores)
    assert cluster[0] < mean < cluster[1]


def test_cluster_bootstrap_accepts_another_rng():
    """A correct answer with its own random numbers passes: the check allows bootstrap noise."""

    def with_numpy(scores, groups, n_boot=2000, seed=0):
        import numpy as np

        rng = np.random.default_rng(seed + 7)
        keys = sorted(set(groups))
        rows = {k: [i for i, g in enumerate(groups) if g == k] for k in keys}
        s = np.array(scores)
        stats = [
            s[sum((rows[keys[j]] for j in rng.integers(0, len(keys), len(keys))), [])].mean()
            for _ in range(n_boot)
        ]
        return tuple(np.percentile(stats, [2.5, 97.5]))

    assert ex07.q3.evaluate(with_numpy).status == CORRECT


def test_lc_exercise_agrees_with_the_package():
    for case in ex07.q4.cases:
        assert ex07._lc_win_rate(*case.args) == pytest.approx(
            length_controlled_win_rate(*case.args).lc_rate, abs=1e-6
        )


def _biased_judge_scores(seed, n, extra, quality=0.0, phi=1.5):
    rng = random.Random(seed)
    la = [rng.randint(4, 20) + extra for _ in range(n)]
    lb = [rng.randint(4, 20) for _ in range(n)]
    scores = [
        float(rng.random() < 1 / (1 + math.exp(-(quality + phi * math.tanh((a - b) / 8)))))
        for a, b in zip(la, lb)
    ]
    return scores, la, lb


def test_length_control_undoes_a_pure_length_bias():
    scores, la, lb = _biased_judge_scores(0, 2000, extra=10)
    result = length_controlled_win_rate(scores, la, lb)
    assert result.rate > 0.7  # the judge loves the longer answers
    assert abs(result.lc_rate - 0.5) < 0.05  # equally good at equal length
    assert result.phi > 0


def test_length_control_keeps_a_real_quality_gap():
    scores, la, lb = _biased_judge_scores(1, 2000, extra=0, quality=1.0)
    result = length_controlled_win_rate(scores, la, lb)
    assert abs(result.lc_rate - 1 / (1 + math.exp(-1.0))) < 0.04


def test_length_glm_edge_cases():
    assert fit_length_glm([0.5, 0.5, 0.5], [0, 0, 0]) == (0.0, 0.0)  # ties, no length variation
    theta, phi = fit_length_glm([1.0, 0.0, 1.0, 0.0], [3, 3, -3, -3])
    assert theta == pytest.approx(0.0, abs=1e-9) and phi == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError):
        fit_length_glm([2.0], [1])
    with pytest.raises(ValueError):
        length_controlled_win_rate([1.0, 0.0], [3, 4], [1])


def test_ties_count_half_in_the_fit():
    result = length_controlled_win_rate([0.5] * 10, list(range(10)), [5] * 10)
    assert result.rate == 0.5 and result.lc_rate == pytest.approx(0.5, abs=1e-9)


def test_lc_bootstrap_interval_brackets_the_estimate():
    scores, la, lb = _biased_judge_scores(2, 200, extra=6)
    groups = [i // 4 for i in range(200)]
    result = length_controlled_win_rate(scores, la, lb, groups=groups, n_boot=200)
    assert isinstance(result, LengthControlledWinRate)
    assert result.low < result.lc_rate < result.high
    assert "length-controlled" in str(result)

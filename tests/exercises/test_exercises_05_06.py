"""Exercises 5.3, 5.4 and 6.1 against what they teach: TRL 1.16's KTO pairing and ORPO log1mexp, the pairing rule.

The generic checks (solution passes, stub is "not attempted", every listed mistake fails with its hint)
run for every exercise in test_exercises.py; these pin the references themselves, with values by hand.
"""

import json
import random
from pathlib import Path

import pytest
import torch

from dpo_course.course.authoring import strip_code
from dpo_course.data import pick_pair
from dpo_course.exercises import _ex05_z0, ex05, ex06
from dpo_course.exercises.framework import CORRECT, NOT_ATTEMPTED, WRONG

ROOT = Path(__file__).resolve().parents[2]


def _solution(q):
    namespace = {}
    exec(q.solution_code, namespace)
    return namespace[q.answer_name]


# ------------------------------------------------------------------ 5.4 ORPO's log odds ratio


def test_log1mexp_matches_trl_orpo():
    from trl.experimental.orpo.orpo_trainer import log1mexp

    x = torch.tensor([-1e-8, -1e-6, -0.01, -0.69, -0.6931, -0.70, -2.0, -30.0])
    torch.testing.assert_close(ex05._log1mexp(x), log1mexp(x))


def test_log_odds_ratio_by_hand():
    # P_w = 0.5, P_l = 0.2: odds 1 and 0.25, log odds ratio = log 4
    got = ex05._orpo_log_odds_ratio(torch.tensor([0.5]).log(), torch.tensor([0.2]).log())
    torch.testing.assert_close(got, torch.tensor([4.0]).log())


def test_log_odds_ratio_matches_the_course_orpo_loss():
    from dpo_course.losses import orpo_loss

    w, l = torch.tensor([-0.3, -1.2, -2.5]), torch.tensor([-0.9, -0.4, -3.0])
    losses, _ = orpo_loss(w, l, lam=1.0)
    nll = -w  # the SFT term on the chosen answer's averaged log-prob
    torch.testing.assert_close(losses - nll, -torch.nn.functional.logsigmoid(ex05._orpo_log_odds_ratio(w, l)))


def test_naive_log1mexp_fails_the_float32_case_the_exercise_preaches():
    w, l = torch.tensor([-1e-8]), torch.tensor([-2.0])
    assert torch.isinf(ex05._orpo_naive(w, l)).all()
    assert torch.isfinite(ex05._orpo_log_odds_ratio(w, l)).all()
    # -1e-8 - log(1e-8) - (-2 - log(1 - e^-2)) = 18.42068 + 2 - 0.14541
    torch.testing.assert_close(ex05._orpo_log_odds_ratio(w, l), torch.tensor([20.27527]))


def test_log_odds_naive_is_caught_with_its_hint():
    result = ex05.q4.evaluate(ex05._orpo_naive)
    assert result.status == WRONG and "expm1" in result.message


# ------------------------------------------------------------------ 5.3 KTO's z0


def test_z0_uses_trl_kto_rotation():
    """TRL 1.16 (KTOTrainer): KL_completion_ids = [completion_ids[-1]] + completion_ids[:-1], per batch."""
    b = 5
    completions = list(range(b))
    trl_pairing = [completions[-1]] + completions[:-1]  # row i gets completion trl_pairing[i]
    policy, reference = _ex05_z0._logp_matrices(0, b, 0.5)
    expected = torch.stack([policy[i, trl_pairing[i]] - reference[i, trl_pairing[i]] for i in range(b)])
    torch.testing.assert_close(_ex05_z0._kto_z0(policy, reference), expected.mean().clamp(min=0))


def test_z0_by_hand_and_clamped():
    # [i, j] log-ratio table; the pairs (0, 2), (1, 0), (2, 1) hold 3, -1, 1: mean 1
    ratios = torch.tensor([[9.0, 9.0, 3.0], [-1.0, 9.0, 9.0], [9.0, 1.0, 9.0]], dtype=torch.float64)
    assert _ex05_z0._kto_z0(ratios, torch.zeros_like(ratios)).item() == pytest.approx(1.0)
    assert _ex05_z0._kto_z0(-ratios, torch.zeros_like(ratios)).item() == 0.0  # mean -1, clamped
    assert _ex05_z0._kto_z0_no_clamp(-ratios, torch.zeros_like(ratios)).item() == pytest.approx(-1.0)


def test_z0_cases_include_a_negative_mean():
    raw = [_ex05_z0._kto_z0_no_clamp(*c.args).item() for c in ex05.q3.cases]
    assert min(raw) < 0 < max(raw)  # the clamp is exercised, and so is the value


# ------------------------------------------------------------------ 6.1 the loop


def test_pick_best_worst_agrees_with_the_course_pairing_rule():
    rng = random.Random(0)
    for _ in range(300):
        wins = [float(rng.randint(0, 4)) for _ in range(rng.randint(2, 6))]
        if len(set(wins)) == 1:
            continue
        assert ex06._pick_best_worst(wins) == pick_pair(wins, pairing="best_worst")


def test_lessons_running_best_is_wrong_where_the_case_says():
    wins = [2.0, 4.0, 3.0, 1.0]
    assert ex06._pick_best_worst(wins) == (1, 3)
    assert ex06._lesson_running_best(wins) == (1, 3)  # right here by luck: the worst comes last
    wins = [0.0, 6.0, 2.0, 4.0]
    assert ex06._pick_best_worst(wins) == (1, 0)
    assert ex06._lesson_running_best(wins) == (1, 3)  # the last response below the best


def test_student_stub_keeps_the_loop_and_is_not_attempted():
    nb = json.loads((ROOT / "solutions" / "06_building_preference_data.ipynb").read_text())
    cell = next(
        c for c in nb["cells"] if c["cell_type"] == "code" and "def pick_best_worst" in "".join(c["source"])
    )
    stub = strip_code("".join(cell["source"]))
    assert "for i, w in enumerate(wins):" in stub and "NotImplementedError" in stub
    namespace = {}
    exec(stub.split("ex06.q1.check")[0], namespace)
    assert ex06.q1.evaluate(namespace["pick_best_worst"]).status == NOT_ATTEMPTED
    assert ex06.q1.evaluate(_solution(ex06.q1)).status == CORRECT

"""dpo_course.data (pairs.py): round robins in one and both orders, pick_pair's tie rule and pairings, tiers."""

import math
import random
from collections import Counter

import pytest

from dpo_course.data import (
    check_verdict,
    judged_pairs,
    pair_groups,
    pick_pair,
    round_robin_wins,
    tiered_sample,
)

SCORES = {"great": 3, "good": 2, "ok": 1, "bad": 0}


def fair(prompt, a, b):
    return "tie" if SCORES[a] == SCORES[b] else ("A" if SCORES[a] > SCORES[b] else "B")


def first_shown(prompt, a, b):
    """Prefers position A unless B is better by 2 or more."""
    return "B" if SCORES[b] - SCORES[a] >= 2 else "A"


def test_round_robin_with_a_fair_judge():
    # both orders: each pair judged twice; great beats 3 others twice = 6 points
    assert round_robin_wins("p", ["ok", "great", "bad", "good"], fair) == [2.0, 6.0, 0.0, 4.0]
    assert round_robin_wins("p", ["ok", "great", "bad", "good"], fair, both_orders=False) == [
        1.0,
        3.0,
        0.0,
        2.0,
    ]
    assert round_robin_wins("p", ["ok", "ok"], fair) == [1.0, 1.0]


def test_both_orders_cancel_a_position_bias():
    # one order: "good" is shown before "great" and wins; "ok" before "good" wins too
    one = round_robin_wins("p", ["ok", "good", "great"], first_shown, both_orders=False)
    assert one == [1.0, 1.0, 1.0]  # ok beats good (shown first), loses to great; good beats great
    both = round_robin_wins("p", ["ok", "good", "great"], first_shown)
    assert both == [1.0, 2.0, 3.0]  # close calls become 1-1, the clear one (great vs ok) stays


def test_pick_pair_best_worst_takes_the_true_extremes_first_of_equals():
    assert pick_pair([0.0, 3.0, 1.0, 2.0]) == (1, 0)
    assert pick_pair([2.0, 3.0, 1.0, 3.0]) == (1, 2)  # the first of equal bests
    assert pick_pair([2.0, 5.0, 1.0, 1.0]) == (1, 2)  # the first of equal worsts
    assert pick_pair([1.0, 1.0]) is None  # all tie: no preference


def test_pick_pair_best_random_draws_only_strictly_lower_and_each_of_them():
    scores = [2.0, 5.0, 5.0, 1.0, 4.0]
    rng = random.Random(0)
    drawn = Counter(pick_pair(scores, pairing="best_random", rng=rng) for _ in range(3000))
    # the chosen is always the first best (1); the tied best (2) is never the rejected
    assert set(drawn) == {(1, 0), (1, 3), (1, 4)}
    assert all(900 < k < 1100 for k in drawn.values())  # uniform over the three lower ones
    assert pick_pair([3.0, 3.0, 3.0], pairing="best_random") is None
    seeded = [pick_pair(scores, pairing="best_random", rng=random.Random(7)) for _ in range(2)]
    assert seeded[0] == seeded[1]


def test_pick_pair_rejects_bad_input_by_name():
    with pytest.raises(ValueError, match="pairing must be one of"):
        pick_pair([1.0, 2.0], pairing="best_median")
    with pytest.raises(ValueError, match="at least two"):
        pick_pair([1.0])
    with pytest.raises(ValueError, match="finite.*position 1"):
        pick_pair([1.0, math.nan, 0.0])


def test_check_verdict_names_where_the_bad_verdict_came_from():
    assert check_verdict("tie") == "tie"
    with pytest.raises(ValueError, match="comparison 3: the judge must return"):
        check_verdict("a", "comparison 3")
    with pytest.raises(ValueError, match="got 'A wins'"):
        round_robin_wins("p", ["ok", "bad"], lambda p, a, b: "A wins")


def test_judged_pairs_pair_best_with_worst_and_skip_ties():
    rows = judged_pairs(["p1", "p2"], [["ok", "great", "bad", "good"], ["ok", "ok"]], fair)
    assert len(rows) == 1
    assert rows[0]["chosen"] == "great" and rows[0]["rejected"] == "bad" and rows[0]["margin"] == 6.0
    with pytest.raises(ValueError, match="2 prompts but 1 groups"):
        judged_pairs(["p1", "p2"], [["a", "b"]], fair)


def test_tiered_sample_counts():
    rows = [{"id": i, "tier": "high"} for i in range(4)] + [{"id": 10 + i, "tier": "low"} for i in range(10)]
    out = tiered_sample(rows, {"high": 2.0, "low": 0.3}, seed=1)
    ids = sorted(r["id"] for r in out)
    assert ids[:8] == [0, 0, 1, 1, 2, 2, 3, 3]  # every high row exactly twice
    assert len(ids) == 8 + 3 and all(10 <= i < 20 for i in ids[8:]) and len(set(ids[8:])) == 3
    assert tiered_sample(rows, {"high": 2.0, "low": 0.3}, seed=1) == out  # seeded
    assert len(tiered_sample(rows, {"high": 1.5, "low": 0.0})) == 6
    with pytest.raises(KeyError, match="row 4: tier 'low' has no weight"):
        tiered_sample(rows, {"high": 1.0})


def test_judged_pairs_best_random_is_seeded_and_never_pairs_a_tie():
    groups = [["ok", "great", "bad", "good", "great"]] * 30
    rows = judged_pairs(["p"] * 30, groups, fair, pairing="best_random", seed=3)
    assert {r["chosen"] for r in rows} == {"great"}
    assert {r["rejected"] for r in rows} == {"ok", "bad", "good"}  # each lower one drawn, never "great"
    assert rows == judged_pairs(["p"] * 30, groups, fair, pairing="best_random", seed=3)


def test_tiered_sample_rejects_a_non_finite_weight_by_tier():
    rows = [{"tier": "high"}, {"tier": "low"}]
    for bad in (math.nan, math.inf):
        with pytest.raises(ValueError, match="weight of tier 'low' must be a finite number"):
            tiered_sample(rows, {"high": 1.0, "low": bad})


def test_pair_groups_skips_ties_and_same_text_and_checks_lengths():
    groups = [["x", "y", "z"], ["same", "same"], ["a", "b"]]
    scores = [[1.0, 3.0, 2.0], [2.0, 1.0], [1.0, 1.0]]
    assert pair_groups(["p", "q", "r"], groups, scores) == [("p", groups[0], scores[0], 1, 0)]
    with pytest.raises(ValueError, match="2 prompts, 3 groups and 3 lists of scores"):
        pair_groups(["p", "q"], groups, scores)

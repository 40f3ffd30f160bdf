"""dpo_course.data (pairs.py): round robins in one and both orders, best against worst, tiered sampling."""

import pytest

from dpo_course.data import best_and_worst, judged_pairs, round_robin_wins, tiered_sample

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


def test_best_and_worst_takes_the_true_extremes():
    assert best_and_worst([0.0, 3.0, 1.0, 2.0]) == (1, 0)
    assert best_and_worst([2.0, 3.0, 1.0, 3.0]) == (1, 2)  # the first of equal bests
    assert best_and_worst([1.0, 1.0]) is None


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

"""Exercises of 07_evaluation: the Wilson interval, and a win rate judged in both orders with ties."""

from __future__ import annotations

import math

from dpo_course.exercises.framework import Case, Exercise, Mistake

# ------------------------------------------------------------------ q1: the Wilson interval


def _wilson(successes: float, n: int, z: float = 1.96) -> tuple[float, float]:
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


def _wald(successes, n, z=1.96):
    p = successes / n
    half = z * math.sqrt(p * (1 - p) / n)
    return p - half, p + half


def _not_recentred(successes, n, z=1.96):
    p = successes / n
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return p - half, p + half


def _n_not_squared(successes, n, z=1.96):
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n))
    return centre - half, centre + half


q1 = Exercise(
    name="Exercise 7.1 (the Wilson interval)",
    prompt=(
        "Write wilson_interval(successes, n, z=1.96) -> (low, high): the Wilson score interval for the "
        "proportion successes / n (successes may be fractional: a tie counts as half a win)."
    ),
    reference=_wilson,
    cases=[
        Case((11, 13), label="11 wins in 13 decisive comparisons"),
        Case((28.5, 48), label="11 wins, 2 losses and 35 ties of 48, ties counted half"),
        Case((0, 10), label="no wins at all"),
        Case((30, 30, 2.576), label="every comparison won, 99% (z = 2.576)"),
    ],
    hints=[
        "Wilson inverts the normal test: the interval is every proportion q with |p - q| <= z sqrt(q(1-q)/n). "
        "Solving that quadratic in q gives a centre pulled towards 1/2 and a half-width.",
        "p = successes / n; d = 1 + z**2 / n; centre = (p + z**2 / (2 * n)) / d; "
        "half = z / d * sqrt(p * (1 - p) / n + z**2 / (4 * n**2)); return centre - half, centre + half",
    ],
    solution_code="""
import math

def wilson_interval(successes, n, z=1.96):
    p = successes / n
    denom = 1 + z**2 / n
    centre = (p + z**2 / (2 * n)) / denom                                  # pulled towards 1/2
    half = z / denom * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2))
    return centre - half, centre + half
""",
    answer_name="wilson_interval",
    mistakes=[
        Mistake(
            "wald",
            _wald,
            "That is the Wald interval p +- z sqrt(p(1-p)/n). It collapses to a point when p is 0 or 1 (no "
            "wins: 'certainly 0%') and can leave [0, 1]. Wilson's centre is (p + z^2/2n) / (1 + z^2/n).",
        ),
        Mistake(
            "not re-centred",
            _not_recentred,
            "Your half-width is Wilson's, but you centred the interval on p. Wilson's centre moves towards 1/2: "
            "(p + z^2/(2n)) / (1 + z^2/n).",
        ),
        Mistake(
            "n not squared",
            _n_not_squared,
            "Check the last term under the square root: it is z^2 / (4 n^2), with n squared.",
        ),
    ],
)

# ---------------------------------------------------- q2: a win rate judged in both orders


_FLIP = {"A": "B", "B": "A", "tie": "tie"}


def _win_rate(verdicts_ab: list[str], verdicts_ba: list[str]) -> float:
    score = 0.0
    for v1, v2 in zip(verdicts_ab, verdicts_ba, strict=True):
        verdict = v1 if v1 == _FLIP[v2] else "tie"  # the orders disagree: no preference
        score += {"A": 1.0, "B": 0.0, "tie": 0.5}[verdict]
    return score / len(verdicts_ab)


def _no_flip(verdicts_ab, verdicts_ba):
    score = 0.0
    for v1, v2 in zip(verdicts_ab, verdicts_ba, strict=True):
        verdict = v1 if v1 == v2 else "tie"
        score += {"A": 1.0, "B": 0.0, "tie": 0.5}[verdict]
    return score / len(verdicts_ab)


def _ties_as_losses(verdicts_ab, verdicts_ba):
    wins = sum(v1 == "A" and v2 == "B" for v1, v2 in zip(verdicts_ab, verdicts_ba, strict=True))
    return wins / len(verdicts_ab)


def _ties_dropped(verdicts_ab, verdicts_ba):
    pairs = list(zip(verdicts_ab, verdicts_ba, strict=True))
    wins = sum(v1 == "A" and v2 == "B" for v1, v2 in pairs)
    losses = sum(v1 == "B" and v2 == "A" for v1, v2 in pairs)
    return wins / (wins + losses) if wins + losses else 0.5


def _orders_averaged(verdicts_ab, verdicts_ba):
    first = sum({"A": 1.0, "B": 0.0, "tie": 0.5}[v] for v in verdicts_ab)
    second = sum({"B": 1.0, "A": 0.0, "tie": 0.5}[v] for v in verdicts_ba)
    return (first + second) / (2 * len(verdicts_ab))


_AB = ["A", "A", "A", "A", "B", "tie", "A", "tie", "A"]
_BA = ["B", "B", "B", "A", "A", "tie", "tie", "B", "B"]

q2 = Exercise(
    name="Exercise 7.2 (a win rate in both orders)",
    prompt=(
        "Write win_rate(verdicts_ab, verdicts_ba) -> float. verdicts_ab[i] is the judge's verdict ('A', 'B' or "
        "'tie') with model a's response shown first; verdicts_ba[i] with b's shown first (so there 'B' means a "
        "won). A comparison counts only when both orders agree; otherwise it is a tie. Ties count half a win."
    ),
    reference=_win_rate,
    cases=[
        Case((_AB, _BA), label="nine comparisons: 4 wins, 1 loss, 1 tie, 3 disagreements"),
        Case((["A", "A", "A"], ["A", "A", "A"]), label="a judge that always picks the first response"),
        Case((["A", "A", "tie"], ["B", "tie", "tie"]), label="a win, a one-sided preference, a tie"),
    ],
    hints=[
        "In the second order the letters are swapped: a's response is 'B'. Translate verdicts_ba back (A <-> B) "
        "before comparing it with verdicts_ab.",
        "For each pair: verdict = v1 if v1 == {'A': 'B', 'B': 'A', 'tie': 'tie'}[v2] else 'tie'; "
        "score 1 for 'A', 0.5 for 'tie', 0 for 'B'; return the mean score.",
    ],
    solution_code="""
def win_rate(verdicts_ab, verdicts_ba):
    flip = {"A": "B", "B": "A", "tie": "tie"}
    score = 0.0
    for v1, v2 in zip(verdicts_ab, verdicts_ba, strict=True):
        verdict = v1 if v1 == flip[v2] else "tie"      # the orders disagree: no preference
        score += {"A": 1.0, "tie": 0.5, "B": 0.0}[verdict]
    return score / len(verdicts_ab)
""",
    answer_name="win_rate",
    mistakes=[
        Mistake(
            "no flip",
            _no_flip,
            "In verdicts_ba the responses are swapped, so 'B' there is a win for a. Translate it back "
            "(A <-> B) before checking that the two orders agree; a judge that always says 'A' must come out at 50%.",
        ),
        Mistake(
            "ties as losses",
            _ties_as_losses,
            "You counted only the wins: ties (and disagreements) are half a win each, so two equal models score 50%.",
        ),
        Mistake(
            "ties dropped",
            _ties_dropped,
            "You divided by the decisive comparisons only. This rate keeps every comparison in the denominator "
            "and counts a tie as half a win.",
        ),
        Mistake(
            "orders averaged",
            _orders_averaged,
            "You averaged the two orders. Close, but a pair where one order says 'A' and the other 'tie' is a "
            "disagreement: count it as a tie (0.5), not as 0.75.",
        ),
    ],
)

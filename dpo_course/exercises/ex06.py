"""Exercises of 06_building_preference_data: picking the best and the worst sample from a round robin."""

from __future__ import annotations

from dpo_course.exercises.framework import Case, Exercise, Mistake


def _pick_best_worst(wins):
    best = worst = 0
    for i, w in enumerate(wins):
        if w > wins[best]:  # strictly more: the first of equals stays
            best = i
        if w < wins[worst]:  # a running MINIMUM of its own, not a comparison with the best
            worst = i
    return best, worst


def _lesson_running_best(wins):
    """The popular snippet: the worst is updated by comparing with the *best* count so far."""
    best = worst = None
    best_wins = 0
    for i, w in enumerate(wins):
        if best is None or w > best_wins:
            best_wins, best = w, i
        if worst is None or w < best_wins:
            worst = i
    return best, worst


def _last_of_equals(wins):
    best = worst = 0
    for i, w in enumerate(wins):
        if w >= wins[best]:
            best = i
        if w <= wins[worst]:
            worst = i
    return best, worst


def _zero_initialised_minimum(wins):
    """Running best and worst kept as counts that start at 0: the worst never moves (points are >= 0)."""
    best = worst = 0
    best_wins = worst_wins = 0
    for i, w in enumerate(wins):
        if w > best_wins:
            best_wins, best = w, i
        if w < worst_wins:
            worst_wins, worst = w, i
    return best, worst


def _elif_worst(wins):
    """The worst only updated when the response is not a new best: misses a worst that comes first."""
    best = worst = None
    for i, w in enumerate(wins):
        if best is None or w > wins[best]:
            best = i
        elif worst is None or w < wins[worst]:
            worst = i
    return best, worst


def _values_not_indices(wins):
    return max(wins), min(wins)


q1 = Exercise(
    name="Exercise 6.1 (best against worst, in one pass)",
    prompt=(
        "Finish pick_best_worst(wins) -> (best, worst): ONE loop over the round-robin points that keeps a running "
        "best and a running worst, and returns their INDICES; on equal points keep the first one. (The caller "
        "skips all-tied groups.) This is the loop the popular snippet gets wrong."
    ),
    reference=_pick_best_worst,
    cases=[
        Case(([0.0, 6.0, 2.0, 4.0],), label="the worst comes first, then the best, then two in between"),
        Case(([4.0, 6.0, 0.0, 6.0],), label="two responses share the most points"),
        Case(([3.0, 1.0, 5.0, 1.0, 2.0],), label="five samples, two share the fewest points"),
        Case(([2.0, 4.0, 3.0, 1.0],), label="the best, then a middling one, then the worst"),
        Case(([2.0, 0.0],), label="two samples"),
    ],
    hints=[
        "Keep two positions, best and worst, both starting at 0 (the first response). At each response i, ask "
        "two separate questions: does it have more points than wins[best]? fewer than wins[worst]?",
        "Compare the worst candidate with the running WORST, never with the best: `w < best_wins` moves the "
        "worst to any response below the best, so it ends at the last of them. Use strict > and < so the first "
        "of equals stays.",
        "for i, w in enumerate(wins): `if w > wins[best]: best = i` and, separately, `if w < wins[worst]: worst = i`.",
    ],
    solution_code="""
def pick_best_worst(wins):
    best = worst = 0
    for i, w in enumerate(wins):
        if w > wins[best]:
            best = i
        if w < wins[worst]:
            worst = i
    return best, worst
""",
    answer_name="pick_best_worst",
    mistakes=[
        Mistake(
            "running comparison with the best",
            _lesson_running_best,
            "You update the worst whenever a response has fewer points than the BEST so far, so the worst ends up "
            "being the last response below the best, not the one with the fewest points. Keep a separate running "
            "minimum: compare with wins[worst].",
        ),
        Mistake(
            "last of equals",
            _last_of_equals,
            "On equal points you kept the last response (>= or <=); keep the first (strict > and <), so the pair "
            "does not depend on the order the samples came in.",
        ),
        Mistake(
            "minimum started at 0",
            _zero_initialised_minimum,
            "Your running minimum starts at 0 points, and no response has fewer than 0, so the worst never moves. "
            "Start both from the first response: best = worst = 0 as POSITIONS, compared through wins[best] and "
            "wins[worst].",
        ),
        Mistake(
            "worst only in the elif",
            _elif_worst,
            "You look for the worst only when a response is not a new best (elif), so a worst that comes before "
            "the best is never seen. Two independent `if`s.",
        ),
        Mistake(
            "points, not positions",
            _values_not_indices,
            "You returned the points. Return the positions (indices) of the two responses, so the caller can "
            "look up their text.",
        ),
    ],
)

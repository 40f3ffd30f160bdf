"""Exercises of 06_building_preference_data: picking the best and the worst sample from a round robin."""

from __future__ import annotations

from dpo_course.exercises.framework import Case, Exercise, Mistake


def _pick_best_worst(wins):
    best = max(range(len(wins)), key=lambda i: wins[i])  # max/min keep the first of equals
    worst = min(range(len(wins)), key=lambda i: wins[i])
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
    best = max(range(len(wins)), key=lambda i: (wins[i], i))
    worst = min(range(len(wins)), key=lambda i: (wins[i], -i))
    return best, worst


def _values_not_indices(wins):
    return max(wins), min(wins)


q1 = Exercise(
    name="Exercise 6.1 (best against worst)",
    prompt=(
        "Write pick_best_worst(wins) -> (best, worst): the INDICES of the response with the most and the "
        "fewest round-robin points; on equal points keep the first one. (The caller skips all-tied groups.)"
    ),
    reference=_pick_best_worst,
    cases=[
        Case(([0.0, 6.0, 2.0, 4.0],), label="the worst comes first, then the best, then two in between"),
        Case(([4.0, 6.0, 0.0, 6.0],), label="two responses share the most points"),
        Case(([3.0, 1.0, 5.0, 1.0, 2.0],), label="five samples, two share the fewest points"),
        Case(([2.0, 0.0],), label="two samples"),
    ],
    hints=[
        "Two separate searches: one for the largest points, one for the smallest. Return positions in the "
        "list, not the points themselves.",
        "best = max(range(len(wins)), key=lambda i: wins[i]); worst = min(range(len(wins)), key=lambda i: wins[i]) "
        "(max and min return the first of equal items).",
    ],
    solution_code="""
def pick_best_worst(wins):
    best = max(range(len(wins)), key=lambda i: wins[i])
    worst = min(range(len(wins)), key=lambda i: wins[i])
    return best, worst
""",
    answer_name="pick_best_worst",
    mistakes=[
        Mistake(
            "running comparison with the best",
            _lesson_running_best,
            "You update the worst whenever a response has fewer points than the BEST so far, so the worst ends up "
            "being the last response below the best, not the one with the fewest points. Keep a separate running "
            "minimum (or use min).",
        ),
        Mistake(
            "last of equals",
            _last_of_equals,
            "On equal points you kept the last response; keep the first (max and min do that for you), so the "
            "pair does not depend on how ties are ordered in your loop.",
        ),
        Mistake(
            "points, not positions",
            _values_not_indices,
            "You returned the points. Return the positions (indices) of the two responses, so the caller can "
            "look up their text.",
        ),
    ],
)

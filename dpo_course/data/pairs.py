"""Building preference pairs from scored completions: a judge's round robin, best against worst, tiers.

Taught in 06_building_preference_data. A judge is any function ``judge(prompt, a, b) -> "A" | "B"
| "tie"`` (`dpo_course.toyworld.judge` or an LLM judge); `check_verdict` holds it to that. Judges
favour the completion shown first more often than they should (position bias), so
`round_robin_wins` shows every pair in both orders by default: a judge that always says "A" then
gives every completion the same score.

`pick_pair` is the one place a group of scored completions becomes a (chosen, rejected) pair: the
round robin here, `dpo_course.data.ultrafeedback_pair` (ratings) and
`dpo_course.toyworld.on_policy_pairs` (rewards) all call it, so they share one tie rule.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence

Judge = Callable[[str, str, str], str]
VERDICTS = ("A", "B", "tie")
PAIRINGS = ("best_worst", "best_random")


def check_verdict(verdict, where: str = "the judge") -> str:
    """`verdict` itself when it is "A", "B" or "tie"; otherwise a `ValueError` that says `where`."""
    if verdict not in VERDICTS:
        raise ValueError(f"{where}: the judge must return 'A', 'B' or 'tie', got {verdict!r}")
    return verdict


def pick_pair(
    scores: Sequence[float], *, pairing: str = "best_worst", rng: random.Random | None = None
) -> tuple[int, int] | None:
    """Indices ``(chosen, rejected)`` of a group of scored completions, or None when every score ties.

    The tie rule, the same wherever the course pairs completions: the chosen is the **first** of the
    equal-best scores, in the order given. The rejected depends on `pairing`:

    - ``"best_worst"``: the first of the equal-worst scores. The largest margin the group offers.
    - ``"best_random"``: one completion drawn uniformly (with `rng`, default ``random.Random(0)``)
      from those scored **strictly below** the best, as Argilla's
      ``ultrafeedback-binarized-preferences`` does ("a random response with lower mean rating",
      following Zephyr's choice of a random rather than the lowest-rated response, which avoids
      only easy, huge-margin pairs). Zephyr's own ``ultrafeedback_binarized`` drew from all three
      remaining completions, so a rejected could tie the chosen; here a tie never becomes a pair.

    ``pick_pair([2, 5, 1, 5])`` is ``(1, 2)``; ``pick_pair([3, 3])`` is None. Scores must be finite.
    Taught in 06_building_preference_data.
    """
    if pairing not in PAIRINGS:
        raise ValueError(f"pairing must be one of {PAIRINGS}, got {pairing!r}")
    if len(scores) < 2:
        raise ValueError(f"need at least two scored completions to make a pair, got {len(scores)}")
    bad = [i for i, s in enumerate(scores) if not math.isfinite(s)]
    if bad:
        raise ValueError(f"scores must be finite, got {scores[bad[0]]!r} at position {bad[0]}")
    best = max(range(len(scores)), key=lambda i: scores[i])  # max and min keep the first of equals
    lower = [i for i in range(len(scores)) if scores[i] < scores[best]]
    if not lower:
        return None
    if pairing == "best_worst":
        return best, min(lower, key=lambda i: scores[i])
    return best, (rng or random.Random(0)).choice(lower)


def round_robin_wins(
    prompt: str, completions: Sequence[str], judge: Judge, *, both_orders: bool = True
) -> list[float]:
    """Points of each completion in a round robin: 1 per win, 0.5 per tie, over every pair.

    With ``both_orders=True`` each pair is judged as (a, b) and as (b, a), so each completion sits
    in position A as often as in B and a position bias cancels (2 points per pair in all). With
    ``both_orders=False`` the earlier completion is always shown first (1 point per pair).
    """
    if len(completions) < 2:
        raise ValueError(f"need at least two completions to compare, got {len(completions)}")
    wins = [0.0] * len(completions)
    for i in range(len(completions)):
        for j in range(i + 1, len(completions)):
            for a, b in [(i, j), (j, i)] if both_orders else [(i, j)]:
                verdict = check_verdict(judge(prompt, completions[a], completions[b]))
                if verdict == "tie":
                    wins[a] += 0.5
                    wins[b] += 0.5
                else:
                    wins[a if verdict == "A" else b] += 1.0
    return wins


def pair_groups(
    prompts: Sequence[str],
    groups: Sequence[Sequence[str]],
    scores: Sequence[Sequence[float]],
    *,
    pairing: str = "best_worst",
    seed: int = 0,
    pick: Callable[[Sequence[float]], tuple[int, int] | None] | None = None,
) -> list[tuple[str, Sequence[str], Sequence[float], int, int]]:
    """``(prompt, group, scores, chosen, rejected)`` for every group that makes a pair.

    `scores[k][i]` scores `groups[k][i]`, a completion of `prompts[k]`. The pair is
    ``pick_pair(scores[k], pairing=pairing)`` (one generator seeded by `seed` serves every group),
    or ``pick(scores[k])`` when given. Groups whose scores all tie, or whose two picks are the same
    text, give none. `judged_pairs` and `dpo_course.toyworld.on_policy_pairs` build their rows on it.
    """
    if not len(prompts) == len(groups) == len(scores):
        raise ValueError(
            f"got {len(prompts)} prompts, {len(groups)} groups and {len(scores)} lists of scores"
        )
    rng = random.Random(seed)
    out = []
    for prompt, group, points in zip(prompts, groups, scores, strict=True):
        picked = pick(points) if pick is not None else pick_pair(points, pairing=pairing, rng=rng)
        if picked is not None and group[picked[0]] != group[picked[1]]:
            out.append((prompt, group, points, *picked))
    return out


def judged_pairs(
    prompts: Sequence[str],
    samples: Sequence[Sequence[str]],
    judge: Judge,
    *,
    both_orders: bool = True,
    pairing: str = "best_worst",
    seed: int = 0,
    pick: Callable[[Sequence[float]], tuple[int, int] | None] | None = None,
) -> list[dict]:
    """One pair per prompt from a round robin: `pick_pair` on the points (`pairing`, seeded by `seed`).

    `samples[k]` are the completions to `prompts[k]`. `pick(wins) -> (chosen, rejected) | None`
    replaces `pick_pair` (notebook 06 passes a buggy one on purpose). Prompts whose samples all
    score the same, or whose two picks are the same text, give no pair. Rows carry the round-robin
    ``wins`` and the ``margin`` (points of chosen minus rejected) for tiering.
    """
    if len(prompts) != len(samples):
        raise ValueError(f"got {len(prompts)} prompts but {len(samples)} groups of samples")
    wins = [
        round_robin_wins(p, g, judge, both_orders=both_orders) for p, g in zip(prompts, samples, strict=True)
    ]
    return [
        {"prompt": p, "chosen": g[b], "rejected": g[w], "wins": list(s), "margin": s[b] - s[w]}
        for p, g, s, b, w in pair_groups(prompts, samples, wins, pairing=pairing, seed=seed, pick=pick)
    ]


def tiered_sample(
    rows: Sequence[dict], weights: Mapping[str, float], *, tier_key: str = "tier", seed: int = 0
) -> list[dict]:
    """Resample rows by tier: weight 2 keeps every row twice, 0.5 keeps a random half, 0 drops the tier.

    A weight ``w`` keeps ``floor(w)`` copies of every row plus a seeded random
    ``round((w - floor(w)) * n)`` of the tier's ``n`` rows, so a weight above 1 repeats every row
    the same number of times (give or take one) instead of drawing with replacement, which
    repeats some rows many times and leaves others out. Raises for a tier with no weight.
    """
    rng = random.Random(seed)
    by_tier: dict[str, list[dict]] = {}
    for i, row in enumerate(rows):
        tier = row.get(tier_key)
        if tier not in weights:
            raise KeyError(f"row {i}: tier {tier!r} has no weight (weights: {sorted(weights)})")
        by_tier.setdefault(tier, []).append(row)
    out: list[dict] = []
    for tier, group in by_tier.items():
        w = weights[tier]
        if not (math.isfinite(w) and w >= 0):  # NaN and inf too, by the tier's name
            raise ValueError(f"weight of tier {tier!r} must be a finite number >= 0, got {w}")
        whole, frac = int(w), w - int(w)
        out += [dict(r) for r in group for _ in range(whole)]
        out += [dict(r) for r in rng.sample(group, round(frac * len(group)))]
    rng.shuffle(out)
    return out

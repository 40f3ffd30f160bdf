"""Building preference pairs from a model's samples: a judge's round robin, best against worst, tiers.

Taught in 06_building_preference_data. A judge is any function ``judge(prompt, a, b) -> "A" | "B"
| "tie"`` (`dpo_course.toyworld.judge` or an LLM judge). Judges favour the answer shown first
more often than they should (position bias), so `round_robin_wins` shows every pair in both
orders by default: a judge that always says "A" then gives every response the same score.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence

Judge = Callable[[str, str, str], str]


def round_robin_wins(
    prompt: str, responses: Sequence[str], judge: Judge, *, both_orders: bool = True
) -> list[float]:
    """Points of each response in a round robin: 1 per win, 0.5 per tie, over every pair.

    With ``both_orders=True`` each pair is judged as (a, b) and as (b, a), so each response sits in
    position A as often as in B and a position bias cancels (2 points per pair in all). With
    ``both_orders=False`` the earlier response is always shown first (1 point per pair).
    """
    if len(responses) < 2:
        raise ValueError(f"need at least two responses to compare, got {len(responses)}")
    wins = [0.0] * len(responses)
    for i in range(len(responses)):
        for j in range(i + 1, len(responses)):
            orders = [(i, j), (j, i)] if both_orders else [(i, j)]
            for a, b in orders:
                verdict = judge(prompt, responses[a], responses[b])
                if verdict not in ("A", "B", "tie"):
                    raise ValueError(f"the judge must return 'A', 'B' or 'tie', got {verdict!r}")
                if verdict == "tie":
                    wins[a] += 0.5
                    wins[b] += 0.5
                else:
                    wins[a if verdict == "A" else b] += 1.0
    return wins


def best_and_worst(wins: Sequence[float]) -> tuple[int, int] | None:
    """Indices of the most and the least winning response (the first of equals), or None if all tie."""
    best = max(range(len(wins)), key=lambda i: wins[i])
    worst = min(range(len(wins)), key=lambda i: wins[i])
    return None if wins[best] == wins[worst] else (best, worst)


def judged_pairs(
    prompts: Sequence[str],
    samples: Sequence[Sequence[str]],
    judge: Judge,
    *,
    both_orders: bool = True,
    pick: Callable[[Sequence[float]], tuple[int, int] | None] = best_and_worst,
) -> list[dict]:
    """One pair per prompt: its best sample (chosen) against its worst (rejected), by round robin.

    `samples[k]` are the responses to `prompts[k]`. Prompts whose samples all score the same, or
    whose two picks are the same text, give no pair. Rows carry the round-robin ``wins`` and the
    ``margin`` (points of chosen minus rejected) for tiering.
    """
    if len(prompts) != len(samples):
        raise ValueError(f"got {len(prompts)} prompts but {len(samples)} groups of samples")
    rows = []
    for prompt, group in zip(prompts, samples, strict=True):
        wins = round_robin_wins(prompt, group, judge, both_orders=both_orders)
        picked = pick(wins)
        if picked is None or group[picked[0]] == group[picked[1]]:
            continue
        best, worst = picked
        rows.append(
            {
                "prompt": prompt,
                "chosen": group[best],
                "rejected": group[worst],
                "wins": list(wins),
                "margin": wins[best] - wins[worst],
            }
        )
    return rows


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
        if w < 0:
            raise ValueError(f"weight of tier {tier!r} must be >= 0, got {w}")
        whole, frac = int(w), w - int(w)
        out += [dict(r) for r in group for _ in range(whole)]
        out += [dict(r) for r in rng.sample(group, round(frac * len(group)))]
    rng.shuffle(out)
    return out

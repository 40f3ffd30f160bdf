"""Win rates of a policy against a baseline, judged in both orders, with confidence intervals.

Taught in 07_evaluation.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist

from dpo_course.data.pairs import check_verdict

INTERVALS = ("wilson", "sign", "bootstrap")
_FLIP = {"A": "B", "B": "A", "tie": "tie"}


# ============================================================================================ win rate


def wilson_interval(successes: float, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a proportion ``successes / n``.

    With ``p = successes / n`` and ``z`` the two-sided normal quantile of `confidence`::

        centre = (p + z^2 / 2n) / (1 + z^2 / n)
        half   = z / (1 + z^2 / n) * sqrt(p (1 - p) / n + z^2 / 4n^2)

    Unlike the Wald interval ``p +- z sqrt(p(1-p)/n)`` it stays inside [0, 1] and does not
    collapse to a point at p = 0 or 1. `successes` may be fractional (ties counted as half).
    Taught in 07_evaluation.
    """
    if n <= 0:
        raise ValueError(f"n must be positive, got {n}")
    if not 0 <= successes <= n:
        raise ValueError(f"successes must lie in [0, n] = [0, {n}], got {successes}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    low = 0.0 if successes == 0 else max(0.0, centre - half)  # exact ends: no 1e-17 rounding residue
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


@dataclass
class WinRate:
    """Result of `win_rate`: counts, the rate (ties count half) and its interval.

    ``rate = (wins + ties / 2) / n``. `consistency` is the share of comparisons whose two
    orders agreed; `first_position_share` is the share of decisive single-order verdicts that
    picked the completion shown first (0.5 = no position bias); `unparseable` counts judge
    answers that could not be read (only for judges that count them, like `LLMJudge`).
    """

    wins: int
    losses: int
    ties: int
    n: int
    rate: float
    low: float
    high: float
    confidence: float
    interval: str
    consistency: float
    first_position_share: float
    inconsistent: int = 0
    unparseable: int = 0
    scores: list[float] = field(default_factory=list, repr=False)

    def __str__(self) -> str:
        return (
            f"win rate {self.rate:.1%} [{self.low:.1%}, {self.high:.1%}] ({self.confidence:.0%} {self.interval}) | "
            f"{self.wins} wins, {self.losses} losses, {self.ties} ties of {self.n} | "
            f"orders agree {self.consistency:.0%}, first position wins {self.first_position_share:.0%} of decisive verdicts"
            + (f" | {self.unparseable} unparseable" if self.unparseable else "")
        )


def _bootstrap(
    scores: list[float], groups: Sequence | None, confidence: float, n_boot: int, seed: int
) -> tuple[float, float]:
    """Percentile bootstrap of the mean score, resampling whole groups (e.g. prompts) when given."""
    if groups is None:
        groups = range(len(scores))
    clusters: dict = {}
    for g, s in zip(groups, scores, strict=True):
        clusters.setdefault(g, []).append(s)
    sums = [(sum(v), len(v)) for v in clusters.values()]
    rng = random.Random(seed)
    stats = []
    for _ in range(n_boot):
        draw = [sums[rng.randrange(len(sums))] for _ in sums]
        stats.append(sum(s for s, _ in draw) / sum(k for _, k in draw))
    stats.sort()
    alpha = (1 - confidence) / 2
    return stats[int(alpha * (n_boot - 1))], stats[int(math.ceil((1 - alpha) * (n_boot - 1)))]


def _judge_both_orders(judge, prompts, completions_a, completions_b) -> tuple[list[str], list[str]]:
    """Verdicts of every comparison as (a, b) and as (b, a), each checked; batched when the judge can."""
    batch = getattr(judge, "judge_batch", None)
    if batch is not None:  # e.g. LLMJudge: one batched generate call per order
        first, second = (
            batch(prompts, completions_a, completions_b),
            batch(prompts, completions_b, completions_a),
        )
    else:
        rows = list(zip(prompts, completions_a, completions_b, strict=True))
        first, second = [judge(p, a, b) for p, a, b in rows], [judge(p, b, a) for p, a, b in rows]
    first = [check_verdict(v, f"comparison {i}, order (a, b)") for i, v in enumerate(first)]
    second = [check_verdict(v, f"comparison {i}, order (b, a)") for i, v in enumerate(second)]
    return first, second


def _interval(
    interval, wins, losses, ties, n, scores, groups, confidence, n_boot, seed
) -> tuple[float, float]:
    if interval == "wilson":
        return wilson_interval(wins + ties / 2, n, confidence)
    if interval == "sign":
        d_low, d_high = wilson_interval(wins, wins + losses, confidence) if wins + losses else (0.5, 0.5)
        return (ties / 2 + (wins + losses) * d_low) / n, (ties / 2 + (wins + losses) * d_high) / n
    return _bootstrap(scores, groups, confidence, n_boot, seed)


def _check_inputs(prompts, completions_a, completions_b, confidence, interval, groups) -> None:
    if not (len(prompts) == len(completions_a) == len(completions_b)):
        raise ValueError(
            f"prompts, completions_a and completions_b must have the same length, got {len(prompts)}, "
            f"{len(completions_a)} and {len(completions_b)}"
        )
    if not prompts:
        raise ValueError("nothing to compare: prompts is empty")
    if interval not in INTERVALS:
        raise ValueError(f"interval must be one of {INTERVALS}, got {interval!r}")
    if not 0 < confidence < 1:  # NaN too
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    if groups is not None and len(groups) != len(prompts):
        raise ValueError(f"groups must give one label per comparison ({len(prompts)}), got {len(groups)}")


def win_rate(
    prompts: Sequence[str],
    completions_a: Sequence[str],
    completions_b: Sequence[str],
    judge: Callable[[str, str, str], str],
    *,
    confidence: float = 0.95,
    interval: str = "wilson",
    groups: Sequence | None = None,
    n_boot: int = 2000,
    seed: int = 0,
) -> WinRate:
    """How often completions A beat completions B, judged in both orders, with a confidence interval.

    Each comparison asks ``judge(p, a, b)`` and ``judge(p, b, a)``; when the two verdicts agree
    (after swapping the letters back) that is the result, otherwise it is an inconsistent pair,
    counted as a tie. ``rate = (wins + ties / 2) / n``. `interval`:

    - ``"wilson"``: Wilson score interval of ``rate`` over ``n`` comparisons. It treats a tie as
      a coin flip, so with many ties it is wider than it need be (conservative).
    - ``"sign"``: ties held fixed: Wilson interval of ``wins / (wins + losses)`` mapped to the
      rate, ``(ties / 2 + (wins + losses) * d) / n``. ``rate > 1/2`` exactly when
      ``wins > losses``, so this is the sign test's interval (conditional on the tie count).
    - ``"bootstrap"``: percentile bootstrap of the rate (`n_boot` draws, `seed`), resampling
      whole `groups` (e.g. the prompt of each comparison when there are several samples per
      prompt, which are not independent); without `groups`, single comparisons.

    Returns a `WinRate`. Taught in 07_evaluation.
    """
    prompts, completions_a, completions_b = list(prompts), list(completions_a), list(completions_b)
    _check_inputs(prompts, completions_a, completions_b, confidence, interval, groups)
    unparseable_before = getattr(judge, "unparseable", 0)
    first, second = _judge_both_orders(judge, prompts, completions_a, completions_b)
    decisive = sum(v != "tie" for v in first + second)
    first_pos = sum(v == "A" for v in first + second)
    verdicts = [v1 if v1 == _FLIP[v2] else "inconsistent" for v1, v2 in zip(first, second, strict=True)]
    wins, losses = verdicts.count("A"), verdicts.count("B")
    inconsistent = verdicts.count("inconsistent")
    n = len(prompts)
    ties = n - wins - losses
    scores = [{"A": 1.0, "B": 0.0}.get(v, 0.5) for v in verdicts]
    low, high = _interval(interval, wins, losses, ties, n, scores, groups, confidence, n_boot, seed)
    return WinRate(
        wins=wins,
        losses=losses,
        ties=ties,
        n=n,
        rate=(wins + ties / 2) / n,
        low=low,
        high=high,
        confidence=confidence,
        interval=interval,
        consistency=1 - inconsistent / n,
        first_position_share=first_pos / decisive if decisive else 0.5,
        inconsistent=inconsistent,
        unparseable=getattr(judge, "unparseable", 0) - unparseable_before,
        scores=scores,
    )

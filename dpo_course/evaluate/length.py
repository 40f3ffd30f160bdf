"""A length-controlled win rate: the judge's preference with the length difference regressed out.

Taught in 07_evaluation. AlpacaEval 2's headline metric (Dubois et al., 2024, "Length-Controlled
AlpacaEval", arXiv 2404.04475): fit a logistic model (a GLM) of the judge's preference on the
length difference, then predict the preference at a length difference of zero. AlpacaEval's
``length_controlled_v1`` formula is ``logit P(a beats b) = theta + phi * tanh(dlen / sd(dlen))
+ instruction difficulty``; with one model against one baseline on one prompt set the difficulty
term has nothing to separate, so this keeps the first two::

    logit P(a beats b | dlen) = theta + phi * tanh(dlen / sd(dlen))
    length-controlled win rate = sigmoid(theta)          (the prediction at dlen = 0)

A tie is half a win (a soft label of 0.5 in the logistic likelihood), as in `win_rate`.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass
class LengthControlledWinRate:
    """Result of `length_controlled_win_rate`.

    ``rate`` is the raw win rate (ties half), ``lc_rate`` the length-controlled one, ``theta`` and
    ``phi`` the fitted intercept and length coefficient (``phi > 0``: the judge prefers the longer
    answer), ``low``/``high`` a cluster-bootstrap interval of ``lc_rate`` (None without ``n_boot``).
    """

    rate: float
    lc_rate: float
    theta: float
    phi: float
    n: int
    low: float | None = None
    high: float | None = None

    def __str__(self) -> str:
        interval = "" if self.low is None else f" [{self.low:.1%}, {self.high:.1%}]"
        return (
            f"raw win rate {self.rate:.1%}, length-controlled {self.lc_rate:.1%}{interval} over {self.n} "
            f"comparisons (length coefficient phi = {self.phi:+.2f})"
        )


def fit_length_glm(
    scores: Sequence[float], length_diffs: Sequence[float], *, iters: int = 50
) -> tuple[float, float]:
    """Maximum-likelihood ``(theta, phi)`` of ``logit P = theta + phi * tanh(dlen / sd(dlen))``.

    `scores` are the judge's outcomes for a (1 win, 0.5 tie, 0 loss), `length_diffs` the lengths of a's
    answers minus b's. Newton's method on the two parameters, with a tiny ridge (1e-6) so that a
    separable or constant input stays finite. Behind `length_controlled_win_rate` (07_evaluation).
    """
    y, d = [float(v) for v in scores], [float(v) for v in length_diffs]
    if not y or len(y) != len(d):
        raise ValueError(
            f"need as many scores as length differences (and at least one), got {len(y)}, {len(d)}"
        )
    if any(not 0 <= v <= 1 for v in y):
        raise ValueError("scores must lie in [0, 1] (1 win, 0.5 tie, 0 loss)")
    mean = sum(d) / len(d)
    sd = math.sqrt(sum((v - mean) ** 2 for v in d) / len(d))
    x = [math.tanh(v / sd) if sd > 0 else 0.0 for v in d]  # no length variation: nothing to control
    theta = phi = 0.0
    for _ in range(iters):  # Newton's method on (theta, phi): a 2x2 system per step
        g0, g1, h00, h01, h11 = -1e-6 * theta, -1e-6 * phi, 1e-6, 0.0, 1e-6
        for yi, xi in zip(y, x, strict=True):
            p = 1 / (1 + math.exp(-(theta + phi * xi)))
            w = p * (1 - p)
            g0, g1 = g0 + (yi - p), g1 + (yi - p) * xi
            h00, h01, h11 = h00 + w, h01 + w * xi, h11 + w * xi * xi
        det = h00 * h11 - h01 * h01
        step0, step1 = (h11 * g0 - h01 * g1) / det, (h00 * g1 - h01 * g0) / det
        theta, phi = theta + step0, phi + step1
        if max(abs(step0), abs(step1)) < 1e-9:
            break
    return theta, phi


def length_controlled_win_rate(
    scores: Sequence[float],
    lengths_a: Sequence[float],
    lengths_b: Sequence[float],
    *,
    groups: Sequence | None = None,
    n_boot: int = 0,
    confidence: float = 0.95,
    seed: int = 0,
) -> LengthControlledWinRate:
    """Raw and length-controlled win rate of a over b, from per-comparison `scores` (1, 0.5 or 0).

    With ``n_boot > 0`` the interval is a percentile bootstrap of the whole fit, resampling whole
    `groups` (e.g. the prompt of each comparison) or single comparisons. `WinRate.scores` from
    `win_rate` are the scores to pass. Taught in 07_evaluation.
    """
    scores, lengths_a, lengths_b = list(scores), list(lengths_a), list(lengths_b)
    if not (len(scores) == len(lengths_a) == len(lengths_b)):
        raise ValueError(
            f"scores, lengths_a and lengths_b must have the same length, got {len(scores)}, "
            f"{len(lengths_a)} and {len(lengths_b)}"
        )
    diffs = [a - b for a, b in zip(lengths_a, lengths_b, strict=True)]
    theta, phi = fit_length_glm(scores, diffs)
    result = LengthControlledWinRate(
        rate=sum(scores) / len(scores),
        lc_rate=1 / (1 + math.exp(-theta)),
        theta=theta,
        phi=phi,
        n=len(scores),
    )
    if n_boot:
        if groups is not None and len(groups) != len(scores):
            raise ValueError(f"groups must give one label per comparison ({len(scores)}), got {len(groups)}")
        clusters: dict = {}
        for i, g in enumerate(groups if groups is not None else range(len(scores))):
            clusters.setdefault(g, []).append(i)
        members = list(clusters.values())
        rng = random.Random(seed)
        stats = []
        for _ in range(n_boot):
            idx = [i for _ in members for i in members[rng.randrange(len(members))]]
            t, _ = fit_length_glm([scores[i] for i in idx], [diffs[i] for i in idx])
            stats.append(1 / (1 + math.exp(-t)))
        stats.sort()
        alpha = (1 - confidence) / 2
        result.low = stats[int(alpha * (n_boot - 1))]
        result.high = stats[int(math.ceil((1 - alpha) * (n_boot - 1)))]
    return result

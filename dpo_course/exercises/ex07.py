"""Exercises of 07_evaluation: the Wilson interval (7.1), a win rate in both orders (7.2), a cluster
bootstrap (7.3) and a length-controlled win rate (7.4)."""

from __future__ import annotations

import math
import random

from dpo_course.exercises.framework import Case, Exercise, Mistake

# ------------------------------------------------------------------ q1: the Wilson interval


def _wilson(successes: float, n: int, z: float = 1.96, *, recentre: bool = True, last: int = 2):
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom if recentre else p  # recentre=False, last=1: two known mistakes
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n**last))
    return centre - half, centre + half


def _wald(successes, n, z=1.96):
    p = successes / n
    half = z * math.sqrt(p * (1 - p) / n)
    return p - half, p + half


def _not_recentred(successes, n, z=1.96):
    return _wilson(successes, n, z, recentre=False)


def _n_not_squared(successes, n, z=1.96):
    return _wilson(successes, n, z, last=1)


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
import random

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

# ---------------------------------------------------- q3: a cluster bootstrap


def _cluster_bootstrap(scores, groups, n_boot=2000, seed=0):
    rng = random.Random(seed)
    clusters: dict = {}
    for g, s in zip(groups, scores, strict=True):
        clusters.setdefault(g, []).append(s)
    members = list(clusters.values())
    stats = []
    for _ in range(n_boot):
        draw = [members[rng.randrange(len(members))] for _ in members]  # whole prompts, with replacement
        stats.append(sum(sum(c) for c in draw) / sum(len(c) for c in draw))
    stats.sort()
    return stats[int(0.025 * (n_boot - 1))], stats[int(math.ceil(0.975 * (n_boot - 1)))]


def _single_comparisons(scores, groups, n_boot=2000, seed=0):
    return _cluster_bootstrap(scores, list(range(len(scores))), n_boot, seed)


def _without_replacement(scores, groups, n_boot=2000, seed=0):  # every draw: each prompt once, the same mean
    return sum(scores) / len(scores), sum(scores) / len(scores)


def _bootstrap_case(seed: int, prompts: int, per_prompt: int):
    """Scores whose samples of one prompt agree far more than chance: an easy prompt is easy every time."""
    rng = random.Random(seed)
    scores, groups = [], []
    for g in range(prompts):
        p = rng.choice([0.05, 0.2, 0.5, 0.8, 0.95])
        for _ in range(per_prompt):
            scores.append(rng.choice([1.0, 0.5, 0.0]) if rng.random() < 0.2 else float(rng.random() < p))
            groups.append(f"prompt {g}")
    return scores, groups


q3 = Exercise(
    name="Exercise 7.3 (a cluster bootstrap)",
    prompt=(
        "Write cluster_bootstrap(scores, groups, n_boot=2000, seed=0) -> (low, high): a 95% percentile "
        "bootstrap interval of the mean score that resamples whole groups (prompts) with replacement: each "
        "draw picks as many groups as there are, at random, and pools all of their scores."
    ),
    reference=_cluster_bootstrap,
    cases=[
        Case(_bootstrap_case(0, 16, 8), label="16 prompts x 8 samples, samples of a prompt correlated"),
        Case(_bootstrap_case(1, 24, 4), label="24 prompts x 4 samples"),
    ],
    hints=[
        "Group the scores first: {prompt: [its scores]}. A bootstrap draw is a list of len(groups) prompts picked "
        "with replacement (random.Random(seed).randrange), and its statistic is the mean of all their scores.",
        "Repeat n_boot times, sort the draws' means, and read the 2.5th and 97.5th percentiles: "
        "stats[int(0.025 * (n_boot - 1))] and stats[math.ceil(0.975 * (n_boot - 1))].",
    ],
    solution_code="""
import math
import random
import random

def cluster_bootstrap(scores, groups, n_boot=2000, seed=0):
    rng = random.Random(seed)
    clusters = {}
    for g, s in zip(groups, scores):
        clusters.setdefault(g, []).append(s)
    members = list(clusters.values())
    stats = []
    for _ in range(n_boot):
        draw = [members[rng.randrange(len(members))] for _ in members]   # whole prompts, with replacement
        stats.append(sum(sum(c) for c in draw) / sum(len(c) for c in draw))
    stats.sort()
    return stats[int(0.025 * (n_boot - 1))], stats[math.ceil(0.975 * (n_boot - 1))]
""",
    answer_name="cluster_bootstrap",
    rtol=0.0,
    atol=0.03,
    mistakes=[
        Mistake(
            "single comparisons",
            _single_comparisons,
            "Your interval is too narrow: you resampled single comparisons. Samples of one prompt are correlated "
            "(an easy prompt is easy for every sample), so resample whole prompts and keep their samples together.",
        ),
        Mistake(
            "without replacement",
            _without_replacement,
            "Your interval has zero width: drawing the prompts without replacement gives back the same set every "
            "time. A bootstrap draws with replacement, so some prompts appear twice and others not at all.",
        ),
    ],
)

# ---------------------------------------------------- q4: a length-controlled win rate


def _lc_features(length_diffs, squash=True, standardise=True):
    n = len(length_diffs)
    mean = sum(length_diffs) / n
    sd = math.sqrt(sum((d - mean) ** 2 for d in length_diffs) / n) if standardise else 1.0
    return [(math.tanh(d / sd) if squash else d / sd) if sd > 0 else 0.0 for d in length_diffs]


def _fit(scores, x, iters=100):
    theta = phi = 0.0
    for _ in range(iters):
        g0 = g1 = h00 = h01 = h11 = 0.0
        for y, xi in zip(scores, x, strict=True):
            p = 1 / (1 + math.exp(-(theta + phi * xi)))
            w = p * (1 - p)
            g0, g1, h00, h01, h11 = g0 + y - p, g1 + (y - p) * xi, h00 + w, h01 + w * xi, h11 + w * xi * xi
        det = h00 * h11 - h01 * h01
        theta, phi = theta + (h11 * g0 - h01 * g1) / det, phi + (h00 * g1 - h01 * g0) / det
    return theta, phi


def _lc_win_rate(scores, lengths_a, lengths_b):
    x = _lc_features([a - b for a, b in zip(lengths_a, lengths_b, strict=True)])
    theta, _ = _fit(scores, x)
    return 1 / (1 + math.exp(-theta))


def _raw_rate(scores, lengths_a, lengths_b):
    return sum(scores) / len(scores)


def _lc_variant(**features):
    def lc(scores, lengths_a, lengths_b):
        x = _lc_features([a - b for a, b in zip(lengths_a, lengths_b, strict=True)], **features)
        return 1 / (1 + math.exp(-_fit(scores, x)[0]))

    return lc


def _lc_case(seed: int, n: int, extra_words: int, quality: float):
    """A judge that likes long answers: P(a wins) = sigmoid(quality + 1.5 tanh(dlen / 8)); ties count half."""
    rng = random.Random(seed)
    la = [rng.randint(4, 20) + extra_words for _ in range(n)]
    lb = [rng.randint(4, 20) for _ in range(n)]
    scores = []
    for a, b in zip(la, lb, strict=True):
        p = 1 / (1 + math.exp(-(quality + 1.5 * math.tanh((a - b) / 8))))
        u = rng.random()
        scores.append(0.5 if u < 0.1 else float(u < 0.1 + 0.9 * p))
    return scores, la, lb


q4 = Exercise(
    name="Exercise 7.4 (a length-controlled win rate)",
    prompt=(
        "Write lc_win_rate(scores, lengths_a, lengths_b) -> float, AlpacaEval 2's length control: with "
        "d = lengths_a - lengths_b and x = tanh(d / sd(d)) (sd: the population standard deviation of d), fit "
        "logit P(a wins) = theta + phi * x by maximum likelihood (scores are 1, 0.5 or 0; a tie is a soft label "
        "of 0.5), and return sigmoid(theta): the predicted win rate at a length difference of zero."
    ),
    reference=_lc_win_rate,
    cases=[
        Case(
            _lc_case(0, 200, 8, 0.0), label="equally good answers, a's 8 words longer, a length-loving judge"
        ),
        Case(_lc_case(1, 200, 0, 0.8), label="a better and no longer"),
        Case(_lc_case(2, 300, 12, -0.4), label="a worse but 12 words longer"),
    ],
    rtol=0.0,
    atol=2e-3,
    hints=[
        "Two parameters, a convex loss: -mean(y log p + (1 - y) log(1 - p)) with p = sigmoid(theta + phi * x). "
        "Newton's method converges in a few steps; so do a few hundred steps of torch.optim.LBFGS or Adam on a "
        "tensor of two parameters (check that the gradient is ~0 at the end).",
        "x = tanh(d / d.std(unbiased=False)); fit; return sigmoid(theta). Not the mean of the fitted "
        "probabilities: with an intercept, maximum likelihood makes that exactly the raw win rate.",
    ],
    solution_code="""
import torch

def lc_win_rate(scores, lengths_a, lengths_b):
    y = torch.tensor(scores, dtype=torch.float64)
    d = torch.tensor(lengths_a, dtype=torch.float64) - torch.tensor(lengths_b, dtype=torch.float64)
    x = torch.tanh(d / d.std(unbiased=False))                   # AlpacaEval's standardised, squashed gap
    w = torch.zeros(2, dtype=torch.float64, requires_grad=True)  # theta, phi
    opt = torch.optim.LBFGS([w], max_iter=200, tolerance_grad=1e-12, tolerance_change=1e-14)

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(w[0] + w[1] * x, y)
        loss.backward()
        return loss

    opt.step(closure)
    return torch.sigmoid(w[0]).item()                           # the prediction at a zero length gap
""",
    answer_name="lc_win_rate",
    mistakes=[
        Mistake(
            "raw rate",
            _raw_rate,
            "That is the raw win rate: nothing is controlled. Fit the logistic model on the length difference and "
            "read its prediction at a difference of zero, sigmoid(theta).",
        ),
        Mistake(
            "not standardised",
            _lc_variant(standardise=False),
            "Divide the length difference by its standard deviation before the tanh: tanh(d) of a gap of a few "
            "words is already +-1, so the feature cannot tell a small gap from a large one.",
        ),
        Mistake(
            "not squashed",
            _lc_variant(squash=False),
            "Close: you used d / sd(d) as the feature. AlpacaEval squashes it with tanh, so that a few very long "
            "answers cannot dominate the fit: x = tanh(d / sd(d)).",
        ),
    ],
)

"""Auditing a judge against the toy world's ground truth: agreement, and biases made to happen.

Taught in 07_evaluation. In the toy world the true preference is known (`dpo_course.toyworld.judge`,
built on the ground-truth reward), so an LLM judge can be graded rather than trusted:

- `judge_agreement`: how often the judge's verdict (asked in both orders, as `win_rate` does)
  matches the truth on the comparisons the truth decides, with a Wilson interval; plus its
  position bias (share of single-order verdicts for the completion shown first) and how often
  its two orders disagree.
- `judge_bias`: the judge's win rate of a *probe* side over the other side of constructed pairs,
  beside the truth's on the same pairs; ``excess = rate - truth_rate`` is the bias. Verbosity bias:
  probe = padded (longer, not better) completions, e.g. from `verbosity_pairs`. Self-preference:
  probe = the judge model's own completions against another model's.

Zheng et al. (2023, "Judging LLM-as-a-Judge with MT-Bench and Chatbot Arena", arXiv 2306.05685, in
"Limitations of LLM-as-a-Judge") name these three: position, verbosity and self-enhancement bias.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dpo_course.data.pairs import Judge
from dpo_course.evaluate.winrate import _FLIP, _check_inputs, _judge_both_orders, wilson_interval, win_rate


def _truth(truth: Judge | None) -> Judge:
    if truth is not None:
        return truth
    from dpo_course.toyworld import judge

    return judge


@dataclass
class JudgeAgreement:
    """Result of `judge_agreement`: shares of the `n_decided` comparisons the truth decides."""

    agreement: float
    low: float
    high: float
    reversed: float
    undecided: float
    n_decided: int
    n: int
    first_position_share: float
    consistency: float

    def __str__(self) -> str:
        return (
            f"agrees with the ground truth on {self.agreement:.0%} [{self.low:.0%}, {self.high:.0%}] of "
            f"{self.n_decided} decided comparisons (reversed {self.reversed:.0%}, undecided {self.undecided:.0%}) | "
            f"first position wins {self.first_position_share:.0%} of decisive verdicts, orders agree {self.consistency:.0%}"
        )


def judge_agreement(
    prompts: Sequence[str],
    completions_a: Sequence[str],
    completions_b: Sequence[str],
    judge: Judge,
    *,
    truth: Judge | None = None,
    confidence: float = 0.95,
) -> JudgeAgreement:
    """Grade `judge` against `truth` (default: the toy world's ground-truth judge) on the same comparisons.

    Both judges are asked in both orders; a judge's verdict is the one its two orders agree on,
    else undecided. Over the comparisons the truth decides (not a tie): ``agreement`` = the judge
    picks the same side, ``reversed`` = the other side, ``undecided`` = a tie or its orders
    disagree; the three sum to 1. ``low``/``high``: Wilson interval of ``agreement``.
    Taught in 07_evaluation.
    """
    prompts, completions_a, completions_b = list(prompts), list(completions_a), list(completions_b)
    _check_inputs(prompts, completions_a, completions_b, confidence, "wilson", None)
    first, second = _judge_both_orders(judge, prompts, completions_a, completions_b)  # the judge, asked once
    judged = _agreed(first, second)
    true = _agreed(*_judge_both_orders(_truth(truth), prompts, completions_a, completions_b))
    single = [v for v in first + second if v != "tie"]
    decided = [(t, j) for t, j in zip(true, judged, strict=True) if t in ("A", "B")]
    if not decided:
        raise ValueError("the ground truth decides none of these comparisons: nothing to agree on")
    agree = sum(t == j for t, j in decided)
    flipped = sum(j == _FLIP[t] for t, j in decided)
    low, high = wilson_interval(agree, len(decided), confidence)
    return JudgeAgreement(
        agreement=agree / len(decided),
        low=low,
        high=high,
        reversed=flipped / len(decided),
        undecided=(len(decided) - agree - flipped) / len(decided),
        n_decided=len(decided),
        n=len(prompts),
        first_position_share=sum(v == "A" for v in single) / len(single) if single else 0.5,
        consistency=sum(v1 == _FLIP[v2] for v1, v2 in zip(first, second, strict=True)) / len(prompts),
    )


def _agreed(first: list[str], second: list[str]) -> list[str]:
    """One verdict per comparison: the side both orders pick, else "undecided"."""
    return [
        v1 if v1 == _FLIP[v2] and v1 != "tie" else "undecided" for v1, v2 in zip(first, second, strict=True)
    ]


@dataclass
class JudgeBias:
    """Result of `judge_bias`: the judge's and the truth's win rate of the probe side (ties half)."""

    name: str
    rate: float
    low: float
    high: float
    truth_rate: float
    n: int

    @property
    def excess(self) -> float:
        """How much more the judge favours the probe side than the ground truth does."""
        return self.rate - self.truth_rate

    def __str__(self) -> str:
        return (
            f"{self.name}: the judge favours the probe side in {self.rate:.0%} [{self.low:.0%}, {self.high:.0%}] "
            f"of {self.n} pairs, the ground truth in {self.truth_rate:.0%} (excess {self.excess:+.0%})"
        )


def judge_bias(
    prompts: Sequence[str],
    probe: Sequence[str],
    other: Sequence[str],
    judge: Judge,
    *,
    name: str = "bias",
    truth: Judge | None = None,
    confidence: float = 0.95,
) -> JudgeBias:
    """The judge's win rate of `probe` over `other` (both orders, Wilson interval) beside the truth's.

    Verbosity bias: `probe` = longer but not better completions (`verbosity_pairs`); a faithful
    judge's rate matches the truth's (0% when every padded answer is worse). Self-preference:
    `probe` = completions of the judge's own model, `other` = another model's; the truth's rate
    is what their quality alone would earn. Taught in 07_evaluation.
    """
    measured = win_rate(prompts, probe, other, judge, confidence=confidence)
    baseline = win_rate(prompts, probe, other, _truth(truth), confidence=confidence)
    return JudgeBias(name, measured.rate, measured.low, measured.high, baseline.rate, measured.n)


def verbosity_pairs(prompts: Sequence[str], *, seed: int = 0) -> tuple[list[str], list[str], list[str]]:
    """Toy-world pairs for a verbosity probe: ``(prompts, concise, verbose)``, both correct.

    The verbose answer says the same correct thing with an opener and a closer, so the ground
    truth prefers the concise one (its reward loses 0.02 a word past the concise length): a judge
    that picks the verbose one is rewarding length. Toy prompts only (`toyworld.train_prompts`, ...).
    """
    import random

    from dpo_course.toyworld.domain import parse_prompt, write_response

    rng = random.Random(seed)
    items = [parse_prompt(p) for p in prompts]
    concise = [write_response(item, "concise", rng) for item in items]
    verbose = [write_response(item, "verbose", rng) for item in items]
    return list(prompts), concise, verbose

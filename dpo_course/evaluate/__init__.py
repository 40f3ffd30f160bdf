"""Evaluating a DPO model against its starting point. Taught in 07_evaluation (used in 03, 05, 08).

- winrate.py: `win_rate`, a pairwise judge in both orders with Wilson, sign-test and bootstrap intervals;
- rewards.py: `implicit_rewards`, `preference_accuracy`, `kl_to_reference` (sampled), `mean_reward`, `mean_length`;
- judges.py: `LLMJudge`, a language model as the judge, and `parse_verdict`;
- judge_bias.py: `judge_agreement` with the toy's ground truth, `judge_bias` (verbosity, self-preference);
- diagnostics.py: `diagnose`, the debugging checklist as findings;
- length.py: `length_controlled_win_rate`, AlpacaEval 2's length-controlled win rate.
"""

from dpo_course.evaluate.diagnostics import LR_RANGES, Finding, diagnose
from dpo_course.evaluate.judge_bias import (
    JudgeAgreement,
    JudgeBias,
    judge_agreement,
    judge_bias,
    verbosity_pairs,
)
from dpo_course.evaluate.judges import DEFAULT_TEMPLATE, LLMJudge, parse_verdict
from dpo_course.evaluate.length import LengthControlledWinRate, fit_length_glm, length_controlled_win_rate
from dpo_course.evaluate.rewards import (
    KLEstimate,
    implicit_rewards,
    kl_to_reference,
    mean_length,
    mean_reward,
    preference_accuracy,
)
from dpo_course.evaluate.winrate import INTERVALS, WinRate, wilson_interval, win_rate

__all__ = [
    "DEFAULT_TEMPLATE",
    "INTERVALS",
    "JudgeAgreement",
    "JudgeBias",
    "LR_RANGES",
    "Finding",
    "KLEstimate",
    "LLMJudge",
    "LengthControlledWinRate",
    "WinRate",
    "diagnose",
    "fit_length_glm",
    "implicit_rewards",
    "judge_agreement",
    "judge_bias",
    "kl_to_reference",
    "length_controlled_win_rate",
    "mean_length",
    "mean_reward",
    "parse_verdict",
    "preference_accuracy",
    "verbosity_pairs",
    "wilson_interval",
    "win_rate",
]

"""Exercise 5.3 of 05_variants (KTO's reference point z0), kept apart so ex05.py stays one screenful per idea.

Learners meet it as ``ex05.q3``.
"""

from __future__ import annotations

import torch

from dpo_course.exercises.framework import Case, Exercise, Mistake

# ------------------------------------------------------------------ q3: KTO's reference point z0


def _kto_z0(policy_logps, reference_logps):
    """[i, j] = log pi(y_j | x_i), summed over y_j's tokens: prompt i with completion i-1, as TRL cycles them."""
    b = policy_logps.shape[0]
    rows, cols = torch.arange(b), (torch.arange(b) - 1) % b  # (x_1, y_B), (x_2, y_1), ..., (x_B, y_{B-1})
    return (policy_logps[rows, cols] - reference_logps[rows, cols]).mean().clamp(min=0)


def _kto_z0_diagonal(p, r):
    return torch.diagonal(p - r).mean().clamp(min=0)


def _kto_z0_no_clamp(p, r):
    b = p.shape[0]
    rows, cols = torch.arange(b), (torch.arange(b) - 1) % b
    return (p[rows, cols] - r[rows, cols]).mean()


def _kto_z0_next(p, r):
    b = p.shape[0]
    rows, cols = torch.arange(b), (torch.arange(b) + 1) % b
    return (p[rows, cols] - r[rows, cols]).mean().clamp(min=0)


def _kto_z0_all_mismatched(p, r):
    b = p.shape[0]
    off = ~torch.eye(b, dtype=torch.bool)
    return (p - r)[off].mean().clamp(min=0)


def _kto_z0_clamp_each(p, r):
    b = p.shape[0]
    rows, cols = torch.arange(b), (torch.arange(b) - 1) % b
    return (p[rows, cols] - r[rows, cols]).clamp(min=0).mean()


def _kto_z0_sum(p, r):
    b = p.shape[0]
    rows, cols = torch.arange(b), (torch.arange(b) - 1) % b
    return (p[rows, cols] - r[rows, cols]).sum().clamp(min=0)


def _logp_matrices(seed: int, b: int, drift: float):
    g = torch.Generator().manual_seed(seed)
    reference = -(torch.rand(b, b, generator=g, dtype=torch.float64) * 20 + 5)  # (B, B) summed log-probs
    policy = reference + drift + torch.randn(b, b, generator=g, dtype=torch.float64)
    return policy, reference


q3 = Exercise(
    name="Exercise 5.3 (KTO's reference point z0)",
    prompt=(
        "Write kto_z0(policy_logps, reference_logps) -> 0-dim tensor. Both are (B, B): entry [i, j] is the "
        "summed log-prob of completion j after prompt i. Pair each prompt with the completion of the row "
        "BEFORE it, cyclically (prompt 0 with completion B-1), as TRL 1.16's KTOTrainer does; z0 is the batch "
        "mean of those log-ratios log pi - log pi_ref, clamped at 0."
    ),
    reference=_kto_z0,
    cases=[
        Case(_logp_matrices(11, 4, 0.8), label="4 rows, the policy a little above the reference"),
        Case(_logp_matrices(12, 5, -0.8), label="5 rows, the policy BELOW the reference on mismatched text"),
        Case(_logp_matrices(13, 3, 2.0), label="3 rows"),
    ],
    hints=[
        "Which entries? Not the diagonal: [i, i] is a row's own completion, whose log-ratio is the reward being "
        "trained. z0 uses completions that do not belong to the prompt: [i, i-1], with row 0 taking column B-1.",
        "cols = (torch.arange(B) - 1) % B picks them; average the log-ratios over the batch, then clamp the mean "
        "at 0 (a KL cannot be negative, but this estimate can).",
        "rows, cols = torch.arange(B), (torch.arange(B) - 1) % B; "
        "return (policy_logps[rows, cols] - reference_logps[rows, cols]).mean().clamp(min=0)",
    ],
    solution_code="""
import torch

def kto_z0(policy_logps, reference_logps):
    B = policy_logps.shape[0]
    rows, cols = torch.arange(B), (torch.arange(B) - 1) % B   # (x_0, y_{B-1}), (x_1, y_0), ...
    return (policy_logps[rows, cols] - reference_logps[rows, cols]).mean().clamp(min=0)
""",
    answer_name="kto_z0",
    mistakes=[
        Mistake(
            "the diagonal",
            _kto_z0_diagonal,
            "You used the diagonal [i, i]: each prompt with its OWN completion, which is the implied reward being "
            "trained. z0 is measured on mismatched pairs (prompt i, completion i-1), so that it tracks how far the "
            "policy drifts on text in general, not on the labelled answers.",
        ),
        Mistake(
            "no clamp",
            _kto_z0_no_clamp,
            "On mismatched text the policy can lose probability, and the mean log-ratio goes negative. TRL clamps "
            "the batch mean at 0: .clamp(min=0).",
        ),
        Mistake(
            "the next row",
            _kto_z0_next,
            "You paired prompt i with completion i+1. TRL 1.16 cycles the other way: prompt i with completion i-1 "
            "(prompt 0 with the last completion): (torch.arange(B) - 1) % B.",
        ),
        Mistake(
            "every mismatched pair",
            _kto_z0_all_mismatched,
            "You averaged every off-diagonal entry. TRL scores ONE mismatched completion per prompt (the row "
            "before): [i, (i - 1) % B].",
        ),
        Mistake(
            "clamped each term",
            _kto_z0_clamp_each,
            "You clamped each log-ratio before averaging, which biases z0 upwards. Clamp the batch MEAN once.",
        ),
        Mistake(
            "sum, not mean",
            _kto_z0_sum,
            "You summed over the batch: z0 would grow with the batch size. Take the mean.",
        ),
    ],
)

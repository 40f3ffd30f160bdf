"""Exercises of 01_derivation: the optimal policy, Bradley-Terry, and why Z(x) cancels.

All three work on a small discrete problem: for each prompt x there are K candidate responses,
a reference distribution ``pi_ref(. | x)`` over them (shape (..., K)) and a reward per candidate.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from dpo_course.exercises.framework import Case, Exercise, Mistake

# ------------------------------------------------------------------ q1: the optimal policy


def _optimal_policy(reference_probs: torch.Tensor, rewards: torch.Tensor, beta: float) -> torch.Tensor:
    # pi*(y|x) = pi_ref(y|x) exp(r(x,y)/beta) / Z(x); softmax of log pi_ref + r/beta is the stable form
    return torch.softmax(reference_probs.log() + rewards / beta, dim=-1)


def _unnormalised(reference_probs, rewards, beta):
    return reference_probs * torch.exp(rewards / beta)


def _times_beta(reference_probs, rewards, beta):
    w = reference_probs * torch.exp(rewards * beta)
    return w / w.sum(-1, keepdim=True)


def _no_reference(reference_probs, rewards, beta):
    return torch.softmax(rewards / beta, dim=-1)


def _global_sum(reference_probs, rewards, beta):
    w = reference_probs * torch.exp(rewards / beta)
    return w / w.sum()


_REF_1D = torch.tensor([0.40, 0.10, 0.30, 0.20])
_R_1D = torch.tensor([1.0, 0.5, -1.0, 0.0])
_REF_2D = torch.tensor([[0.40, 0.10, 0.30, 0.20], [0.05, 0.05, 0.60, 0.30]])
_R_2D = torch.tensor([[1.0, 0.5, -1.0, 0.0], [0.2, 1.0, -1.0, 0.0]])

q1 = Exercise(
    name="Exercise 1.1 (the optimal policy)",
    prompt=(
        "Write optimal_policy(reference_probs, rewards, beta): the maximiser pi* of "
        "E_pi[r] - beta KL(pi || pi_ref), as probabilities over the last dimension (shape (..., K))."
    ),
    reference=_optimal_policy,
    cases=[
        Case((_REF_1D, _R_1D, 0.5), label="one prompt, four candidates, beta = 0.5"),
        Case((_REF_2D, _R_2D, 0.25), label="two prompts (rows), beta = 0.25"),
        Case((_REF_1D, _R_1D, 4.0), label="a large beta = 4.0"),
    ],
    hints=[
        "Look at the closed form in the cell above: pi* reweights pi_ref. Each candidate's reference "
        "probability is multiplied by a factor that grows with its reward, and the result must sum to one.",
        "The factor is exp(reward / beta) (divided, not multiplied: a small beta follows the reward sharply), "
        "and Z(x) is the sum of the weights over the candidates of ONE prompt: the last dimension, keepdim.",
        "w = reference_probs * torch.exp(rewards / beta), then divide w by its sum over dim=-1. "
        "(A softmax of log pi_ref + r / beta over dim=-1 is the same and never overflows.)",
    ],
    solution_code="""
import torch

def optimal_policy(reference_probs, rewards, beta):
    # pi* = pi_ref * exp(r / beta) / Z, with Z the sum over the candidates (last dimension)
    return torch.softmax(reference_probs.log() + rewards / beta, dim=-1)
""",
    answer_name="optimal_policy",
    mistakes=[
        Mistake(
            "no normaliser",
            _unnormalised,
            "Your weights do not sum to one: divide pi_ref * exp(r / beta) by Z(x), their sum over the candidates.",
        ),
        Mistake(
            "r times beta",
            _times_beta,
            "You multiplied the reward by beta. The closed form divides it: exp(r / beta). A small beta (weak KL "
            "penalty) must make pi* follow the reward more sharply, not less.",
        ),
        Mistake(
            "no reference",
            _no_reference,
            "You left out pi_ref: that is a softmax of the rewards alone. pi* reweights the reference, "
            "pi_ref * exp(r / beta), so it stays close to it when beta is large.",
        ),
        Mistake(
            "normalised over everything",
            _global_sum,
            "With several prompts (rows) you normalised over the whole tensor. Z(x) is per prompt: "
            "sum over the candidates only, w.sum(dim=-1, keepdim=True).",
        ),
    ],
)

# ------------------------------------------------------------------ q2: Bradley-Terry


def _bradley_terry(chosen_rewards: torch.Tensor, rejected_rewards: torch.Tensor) -> torch.Tensor:
    return torch.sigmoid(chosen_rewards - rejected_rewards)


_RW = torch.tensor([1.0, 0.5, 2.0, 0.3])
_RL = torch.tensor([0.5, 1.5, 0.25, 0.3])

q2 = Exercise(
    name="Exercise 1.2 (Bradley-Terry)",
    prompt=(
        "Write bradley_terry(chosen_rewards, rejected_rewards): the probability, under the Bradley-Terry "
        "model, that the first response is preferred to the second, elementwise (shape (B,))."
    ),
    reference=_bradley_terry,
    cases=[
        Case((_RW, _RL), label="four pairs, positive rewards, one tie"),
        Case((torch.tensor([-1.0, 0.0, 3.0]), torch.tensor([1.0, -2.0, -3.0])), label="negative rewards too"),
    ],
    hints=[
        "Bradley-Terry: P(y_w > y_l) = exp(r_w) / (exp(r_w) + exp(r_l)). The answer must be in (0, 1) and "
        "exactly 0.5 for a tie.",
        "Divide top and bottom by exp(r_w): the probability depends on the rewards only through their "
        "difference r_w - r_l, fed to a function torch has built in (1 / (1 + exp(-z))).",
        "That function is the logistic sigmoid, torch.sigmoid, applied to chosen minus rejected.",
    ],
    solution_code="""
import torch

def bradley_terry(chosen_rewards, rejected_rewards):
    return torch.sigmoid(chosen_rewards - rejected_rewards)
""",
    answer_name="bradley_terry",
    mistakes=[
        Mistake(
            "flipped",
            lambda w, lo: torch.sigmoid(lo - w),
            "That is the probability that the *second* response wins: the sign of the difference is flipped. "
            "The response with the higher reward should win more than half the time.",
        ),
        Mistake(
            "log-probability",
            lambda w, lo: F.logsigmoid(w - lo),
            "That is the log-probability (log sigmoid): it is what the loss uses, but the question asks for the "
            "probability itself, a number in (0, 1).",
        ),
        Mistake(
            "ratio of rewards",
            lambda w, lo: w / (w + lo),
            "You divided the rewards themselves. Bradley-Terry divides their exponentials, "
            "exp(r_w) / (exp(r_w) + exp(r_l)), which works for negative rewards too and depends only on r_w - r_l.",
        ),
    ],
)

# ------------------------------------------------------------------ q3: Z(x) cancels


def _pick(t: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    return t.gather(-1, idx.unsqueeze(-1)).squeeze(-1)


def _logratio_margin(policy_logps, reference_logps, chosen, rejected):
    logratios = policy_logps - reference_logps  # (N, K)
    return _pick(logratios, chosen) - _pick(logratios, rejected)  # (N,)


def _preference_from_policy(policy_logps, reference_logps, chosen, rejected, beta):
    return torch.sigmoid(beta * _logratio_margin(policy_logps, reference_logps, chosen, rejected))


def _softmax_over_candidates(policy_logps, reference_logps, chosen, rejected, beta):
    implied = beta * (policy_logps - reference_logps)
    return _pick(torch.softmax(implied, dim=-1), chosen)


def _no_reference_pref(policy_logps, reference_logps, chosen, rejected, beta):
    return torch.sigmoid(beta * (_pick(policy_logps, chosen) - _pick(policy_logps, rejected)))


_G = torch.Generator().manual_seed(1)
_POLICY = torch.log_softmax(torch.randn(3, 5, generator=_G, dtype=torch.float64), dim=-1)
_REFERENCE = torch.log_softmax(torch.randn(3, 5, generator=_G, dtype=torch.float64), dim=-1)
_CHOSEN = torch.tensor([0, 2, 4])
_REJECTED = torch.tensor([3, 1, 0])

q3 = Exercise(
    name="Exercise 1.3 (Z(x) cancels)",
    prompt=(
        "Write preference_from_policy(policy_logps, reference_logps, chosen, rejected, beta): "
        "P(y_chosen > y_rejected | x) under Bradley-Terry, with the reward written through the policy, "
        "r = beta log(pi/pi_ref) + beta log Z(x). policy_logps and reference_logps are (N, K) log-probabilities "
        "of the K candidates of N prompts; chosen and rejected are (N,) candidate indices. Never compute Z."
    ),
    reference=_preference_from_policy,
    cases=[
        Case(
            (_POLICY, _REFERENCE, _CHOSEN, _REJECTED, 0.5), label="three prompts, five candidates, beta = 0.5"
        ),
        Case((_POLICY, _REFERENCE, _REJECTED, _CHOSEN, 2.0), label="the same pairs swapped, beta = 2.0"),
    ],
    hints=[
        "Substitute r = beta log(pi/pi_ref) + beta log Z(x) into sigmoid(r_w - r_l): both responses answer "
        "the same prompt, so beta log Z(x) appears once with + and once with -.",
        "So you need, per prompt (row), the log-ratio log pi - log pi_ref of candidate `chosen[n]` and of "
        "candidate `rejected[n]`. Build the (N, K) log-ratios first, then pick one column per row.",
        "Picking one column per row: t.gather(-1, idx.unsqueeze(-1)).squeeze(-1). Then sigmoid of beta times "
        "the chosen log-ratio minus the rejected one.",
    ],
    solution_code="""
import torch

def preference_from_policy(policy_logps, reference_logps, chosen, rejected, beta):
    logratios = policy_logps - reference_logps                    # (N, K): log pi/pi_ref per candidate
    w = logratios.gather(-1, chosen.unsqueeze(-1)).squeeze(-1)    # (N,)
    l = logratios.gather(-1, rejected.unsqueeze(-1)).squeeze(-1)  # (N,)
    return torch.sigmoid(beta * (w - l))                          # beta log Z(x) cancelled in w - l
""",
    answer_name="preference_from_policy",
    mistakes=[
        Mistake(
            "no beta",
            lambda p, r, w, lo, beta: torch.sigmoid(_logratio_margin(p, r, w, lo)),
            "You forgot beta: the reward is beta * log(pi/pi_ref) (+ beta log Z), so the sigmoid's argument is "
            "beta times the log-ratio difference.",
        ),
        Mistake(
            "divided by beta",
            lambda p, r, w, lo, beta: torch.sigmoid(_logratio_margin(p, r, w, lo) / beta),
            "You divided by beta. pi* = pi_ref exp(r/beta) / Z gives log(pi*/pi_ref) = r/beta - log Z, so "
            "r = beta log(pi*/pi_ref) + beta log Z: multiply by beta.",
        ),
        Mistake(
            "softmax over all candidates",
            _softmax_over_candidates,
            "You normalised the implied rewards over all K candidates (a softmax, i.e. a partition function over "
            "responses). Bradley-Terry compares two responses, sigmoid(r_w - r_l); the per-prompt constant "
            "beta log Z(x) cancels in that difference, so no normaliser is needed at all.",
        ),
        Mistake(
            "no reference",
            _no_reference_pref,
            "You used the policy's log-probabilities alone. The implied reward is a log-*ratio* against the "
            "reference, beta log(pi/pi_ref): subtract reference_logps.",
        ),
    ],
)

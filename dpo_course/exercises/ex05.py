"""Exercises of 05_variants: the IPO loss and the SimPO loss, as pure functions of per-sequence log-probs.

Vocabulary as in `dpo_course.losses`: IPO takes policy and reference log-probs (averaged over tokens,
as TRL feeds it), SimPO the policy's averaged log-probs only; both return per-example losses (B,).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from dpo_course.exercises.framework import Case, Exercise, Mistake

# ------------------------------------------------------------------ q1: IPO


def _ipo(policy_chosen_logps, policy_rejected_logps, reference_chosen_logps, reference_rejected_logps, beta):
    h = (policy_chosen_logps - reference_chosen_logps) - (
        policy_rejected_logps - reference_rejected_logps
    )  # (B,)
    return (h - 1 / (2 * beta)) ** 2


def _ipo_target_beta(pc, pr, rc, rr, beta):
    h = (pc - rc) - (pr - rr)
    return (h - beta / 2) ** 2


def _ipo_one_over_beta(pc, pr, rc, rr, beta):
    h = (pc - rc) - (pr - rr)
    return (h - 1 / beta) ** 2


def _ipo_beta_inside(pc, pr, rc, rr, beta):
    h = (pc - rc) - (pr - rr)
    return (beta * h - 1 / (2 * beta)) ** 2


def _ipo_no_reference(pc, pr, rc, rr, beta):
    return ((pc - pr) - 1 / (2 * beta)) ** 2


def _ipo_not_squared(pc, pr, rc, rr, beta):
    h = (pc - rc) - (pr - rr)
    return (h - 1 / (2 * beta)).abs()


_G = torch.Generator().manual_seed(5)
# averaged log-probs: a few nats per token at most
_PC, _PR, _RC, _RR = (-(torch.rand(5, generator=_G, dtype=torch.float64) * 3 + 0.2) for _ in range(4))

q1 = Exercise(
    name="Exercise 5.1 (the IPO loss)",
    prompt=(
        "Write ipo_loss(policy_chosen_logps, policy_rejected_logps, reference_chosen_logps, "
        "reference_rejected_logps, beta): the per-example IPO losses (B,), with h the log-ratio margin and "
        "target 1 / (2 beta)."
    ),
    reference=_ipo,
    cases=[
        Case((_PC, _PR, _RC, _RR, 0.1), label="five pairs, beta = 0.1 (target margin 5)"),
        Case((_PC, _PR, _RC, _RR, 0.5), label="the same pairs, beta = 0.5 (target margin 1)"),
        Case(
            (_RC, _RR, _RC, _RR, 0.25), label="policy == reference: h = 0, so the loss is (1/(2 beta))^2 = 4"
        ),
    ],
    hints=[
        "Same margin as DPO: h = (log pi(y_w) - log pi_ref(y_w)) - (log pi(y_l) - log pi_ref(y_l)). IPO regresses "
        "h onto a fixed target instead of pushing it through a sigmoid.",
        "return (h - 1 / (2 * beta)) ** 2: no sigmoid, no beta multiplying h.",
    ],
    solution_code="""
def ipo_loss(policy_chosen_logps, policy_rejected_logps, reference_chosen_logps, reference_rejected_logps, beta):
    h = (policy_chosen_logps - reference_chosen_logps) - (policy_rejected_logps - reference_rejected_logps)
    return (h - 1 / (2 * beta)) ** 2
""",
    answer_name="ipo_loss",
    mistakes=[
        Mistake(
            "target beta/2",
            _ipo_target_beta,
            "Your target is beta / 2. It is 1 / (2 beta): a SMALL beta (weak regularisation) means a LARGE target margin.",
        ),
        Mistake(
            "target 1/beta",
            _ipo_one_over_beta,
            "Your target is 1 / beta; IPO's is 1 / (2 beta) (Azar et al. 2023, Eq. 17).",
        ),
        Mistake(
            "beta times h",
            _ipo_beta_inside,
            "You multiplied h by beta as in DPO's sigmoid. In IPO, beta (the paper's tau) only sets the target: "
            "(h - 1/(2 beta))^2 with h unscaled.",
        ),
        Mistake(
            "no reference",
            _ipo_no_reference,
            "You used the policy's log-prob difference alone. IPO, like DPO, works on log-RATIOS against the "
            "reference: subtract reference_chosen_logps and reference_rejected_logps.",
        ),
        Mistake(
            "not squared",
            _ipo_not_squared,
            "IPO is a squared loss, (h - 1/(2 beta)) ** 2, not an absolute value.",
        ),
    ],
)

# ------------------------------------------------------------------ q2: SimPO


def _simpo(policy_chosen_avg_logps, policy_rejected_avg_logps, beta, gamma):
    return -F.logsigmoid(beta * (policy_chosen_avg_logps - policy_rejected_avg_logps) - gamma)  # (B,)


def _simpo_gamma_over_beta(pc, pr, beta, gamma):
    return -F.logsigmoid(beta * (pc - pr) - gamma / beta)


def _simpo_plus_gamma(pc, pr, beta, gamma):
    return -F.logsigmoid(beta * (pc - pr) + gamma)


def _simpo_gamma_inside(pc, pr, beta, gamma):
    return -F.logsigmoid(beta * (pc - pr - gamma))


def _simpo_no_log(pc, pr, beta, gamma):
    return -torch.sigmoid(beta * (pc - pr) - gamma)


_G2 = torch.Generator().manual_seed(6)
_AC, _AR = (-(torch.rand(5, generator=_G2, dtype=torch.float64) * 2 + 0.1) for _ in range(2))

q2 = Exercise(
    name="Exercise 5.2 (the SimPO loss)",
    prompt=(
        "Write simpo_loss(policy_chosen_avg_logps, policy_rejected_avg_logps, beta, gamma): the per-example "
        "SimPO losses (B,). Inputs are per-token AVERAGED log-probs; there is no reference model."
    ),
    reference=_simpo,
    cases=[
        Case((_AC, _AR, 2.0, 1.0), label="five pairs, beta = 2, gamma = 1"),
        Case((_AC, _AR, 2.5, 1.375), label="the SimPO paper's beta = 2.5 with gamma/beta = 0.55"),
        Case((_AC, _AC, 2.0, 0.5), label="equal log-probs: loss = -log sigmoid(-gamma) = softplus(gamma)"),
    ],
    hints=[
        "The reward of a response is beta * (its averaged log-prob); the loss is Bradley-Terry on the reward "
        "difference, which must beat a margin gamma.",
        "return -F.logsigmoid(beta * (policy_chosen_avg_logps - policy_rejected_avg_logps) - gamma)",
    ],
    solution_code="""
import torch.nn.functional as F

def simpo_loss(policy_chosen_avg_logps, policy_rejected_avg_logps, beta, gamma):
    return -F.logsigmoid(beta * (policy_chosen_avg_logps - policy_rejected_avg_logps) - gamma)
""",
    answer_name="simpo_loss",
    mistakes=[
        Mistake(
            "gamma/beta",
            _simpo_gamma_over_beta,
            "You subtracted gamma / beta from the scaled difference. gamma is on the reward scale (already "
            "multiplied by beta): beta * (avg_w - avg_l) - gamma. (The SimPO code's gamma_beta_ratio is gamma / beta.)",
        ),
        Mistake(
            "+gamma",
            _simpo_plus_gamma,
            "The margin is SUBTRACTED: the chosen reward must beat the rejected one by gamma.",
        ),
        Mistake(
            "gamma inside",
            _simpo_gamma_inside,
            "You wrote beta * (avg_w - avg_l - gamma), which scales the margin by beta too. The paper's "
            "gamma is outside: beta * (avg_w - avg_l) - gamma.",
        ),
        Mistake(
            "no log",
            _simpo_no_log,
            "You returned -sigmoid(...). The loss is the negative LOG-sigmoid (the Bradley-Terry likelihood); "
            "use F.logsigmoid, which is also numerically stable.",
        ),
    ],
)

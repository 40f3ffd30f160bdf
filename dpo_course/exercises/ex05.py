"""Exercises of 05_variants: the IPO and SimPO losses (5.1, 5.2), KTO's z0 (5.3), ORPO's log odds ratio (5.4).

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

# ------------------------------------------------------------------ q4: ORPO's log odds ratio


def _log1mexp(x):
    """log(1 - exp(x)) for x < 0, as TRL 1.16's `orpo_trainer.log1mexp`: branch at -log 2."""
    return torch.where(x < -0.6931471805599453, torch.log1p(-torch.exp(x)), torch.log(-torch.expm1(x)))


def _orpo_log_odds_ratio(chosen_avg_logps, rejected_avg_logps):
    # log odds(y) = log P - log(1 - P) with log P the averaged log-prob: ORPO's Eq. 4, in logs
    return (chosen_avg_logps - _log1mexp(chosen_avg_logps)) - (
        rejected_avg_logps - _log1mexp(rejected_avg_logps)
    )  # (B,)


def _orpo_naive(a, b):
    return (a - torch.log(1 - torch.exp(a))) - (b - torch.log(1 - torch.exp(b)))


def _orpo_log_ratio_only(a, b):
    return a - b


def _orpo_plus(a, b):
    return (a + _log1mexp(a)) - (b + _log1mexp(b))


def _orpo_the_loss(a, b):
    return -F.logsigmoid(_orpo_log_odds_ratio(a, b))


_G3 = torch.Generator().manual_seed(7)
_OW, _OL = (-(torch.rand(4, generator=_G3) * 2.5 + 0.05) for _ in range(2))  # float32, as a model gives them

q4 = Exercise(
    name="Exercise 5.4 (ORPO's log odds ratio)",
    prompt=(
        "Write orpo_log_odds_ratio(chosen_avg_logps, rejected_avg_logps) -> tensor (B,): "
        "log(odds(y_w) / odds(y_l)) with odds(y) = P / (1 - P) and P = exp(averaged log-prob). Compute "
        "log(1 - P) from the log-prob without cancellation (log1mexp): the answers arrive in float32."
    ),
    reference=_orpo_log_odds_ratio,
    cases=[
        Case((_OW, _OL), label="four pairs of averaged log-probs (float32)"),
        Case(
            (torch.tensor([-1e-8, -0.3]), torch.tensor([-2.0, -1e-6])),
            label="an answer the model is sure of: averaged log-prob -1e-8 (float32: exp(-1e-8) == 1.0)",
        ),
        Case(
            (torch.tensor([-0.69, -0.70]), torch.tensor([-30.0, -0.69])),
            label="either side of log1mexp's branch at -log 2, and an unlikely answer (-30)",
        ),
    ],
    hints=[
        "Work in logs: log odds(y) = log P - log(1 - P), and log P is the averaged log-prob you are given. "
        "The ratio of two odds is a difference of two log-odds.",
        "log(1 - exp(x)) by the book loses everything near x = 0: in float32 exp(-1e-8) is exactly 1.0, so "
        "1 - exp(x) is 0 and the log is -inf. Use log(-expm1(x)) there (expm1 keeps the small difference), "
        "and log1p(-exp(x)) for x below -log 2.",
        "log1mexp = lambda x: torch.where(x < -0.6931, torch.log1p(-torch.exp(x)), torch.log(-torch.expm1(x))); "
        "return (w - log1mexp(w)) - (l - log1mexp(l)).",
    ],
    solution_code="""
import torch

def log1mexp(x):  # log(1 - exp(x)) for x < 0, accurate on both sides of -log 2 (TRL's orpo_trainer.log1mexp)
    return torch.where(x < -0.6931471805599453, torch.log1p(-torch.exp(x)), torch.log(-torch.expm1(x)))

def orpo_log_odds_ratio(chosen_avg_logps, rejected_avg_logps):
    return (chosen_avg_logps - log1mexp(chosen_avg_logps)) - (rejected_avg_logps - log1mexp(rejected_avg_logps))
""",
    answer_name="orpo_log_odds_ratio",
    mistakes=[
        Mistake(
            "log(1 - exp(x))",
            _orpo_naive,
            "Right formula, but log(1 - exp(x)) (or log1p(-exp(x))) cancels near x = 0: in float32 exp(-1e-8) "
            "rounds to 1.0 and the log odds come out infinite. Use log(-expm1(x)) for x >= -log 2 (log1mexp).",
        ),
        Mistake(
            "log-ratio only",
            _orpo_log_ratio_only,
            "You returned log P_w - log P_l, the log-probability ratio. ORPO's is the ODDS ratio: subtract "
            "log(1 - P_w) - log(1 - P_l) as well.",
        ),
        Mistake(
            "+ log(1 - P)",
            _orpo_plus,
            "log odds = log P - log(1 - P): the log1mexp term is subtracted, not added.",
        ),
        Mistake(
            "the loss, not the ratio",
            _orpo_the_loss,
            "You returned -log sigmoid(log odds ratio), ORPO's loss term. Return the log odds ratio itself; the "
            "trainer applies -lambda * logsigmoid to it.",
        ),
    ],
)


from dpo_course.exercises._ex05_z0 import q3  # noqa: E402, F401  (5.3, KTO z0: ex05.q3)

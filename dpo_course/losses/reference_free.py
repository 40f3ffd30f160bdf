"""Losses without a reference model, on per-token averaged log-probs: SimPO and ORPO.

Taught in 05_variants.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from dpo_course.losses._checks import (
    check_finite,
    check_log_probs,
    check_non_negative,
    check_positive,
    check_same_shape,
    log1mexp,
)
from dpo_course.losses.registry import PAIRED_INPUTS, register_loss


@register_loss(
    "simpo", inputs=PAIRED_INPUTS, average_logps=True, config_fields={"beta": "beta", "gamma": "simpo_gamma"}
)
def simpo_loss(
    policy_chosen_avg_logps: Tensor,
    policy_rejected_avg_logps: Tensor,
    beta: float = 2.0,
    gamma: float = 1.0,
) -> tuple[Tensor, Tensor, Tensor]:
    """The SimPO loss (Meng et al. 2024, Eq. 6): no reference model, length-normalised rewards.

    ``loss = -log sigmoid(beta (avg_w - avg_l) - gamma)``, where ``avg`` is the policy's log-prob
    of a completion *averaged* over its tokens, shape ``(B,)`` (<= 0: a positive one raises). The
    reward is ``beta * avg`` (Eq. 4) and ``gamma`` is the target reward margin, on the reward scale.

    Mapping to TRL 1.16: ``CPOConfig(loss_type="simpo", beta=beta, simpo_gamma=gamma,
    cpo_alpha=0.0)`` computes exactly this. TRL's code divides ``simpo_gamma`` by ``beta`` and then
    multiplies the whole logit by ``beta`` again, so ``simpo_gamma`` *is* the paper's gamma, not
    the ratio. The SimPO authors' own code and hyperparameter tables use ``gamma_beta_ratio``
    = gamma / beta instead (e.g. beta = 2.5, ratio 0.55 means gamma = 1.375): convert before
    passing either one here.

    Returns:
        ``(losses, chosen_rewards, rejected_rewards)``, each ``(B,)``; rewards ``beta * avg``,
        detached.

    Taught in 05_variants.
    """
    check_positive("beta", beta)
    check_finite("gamma", gamma)
    check_same_shape(
        policy_chosen_avg_logps=policy_chosen_avg_logps, policy_rejected_avg_logps=policy_rejected_avg_logps
    )
    check_log_probs(
        policy_chosen_avg_logps=policy_chosen_avg_logps, policy_rejected_avg_logps=policy_rejected_avg_logps
    )
    logits = beta * (policy_chosen_avg_logps - policy_rejected_avg_logps) - gamma  # (B,)
    losses = -F.logsigmoid(logits)
    return losses, beta * policy_chosen_avg_logps.detach(), beta * policy_rejected_avg_logps.detach()


def _orpo_rewards(tensors, kwargs, out) -> tuple[Tensor, Tensor]:
    # TRL's ORPOTrainer logs beta * average log-prob as the "reward"; lambda sits in beta's place.
    lam = kwargs["lam"]
    return lam * tensors["policy_chosen_logps"].detach(), lam * tensors["policy_rejected_logps"].detach()


@register_loss(
    "orpo",
    inputs=PAIRED_INPUTS,
    average_logps=True,
    config_fields={"lam": "orpo_lambda"},
    rewards=_orpo_rewards,
)
def orpo_loss(
    policy_chosen_avg_logps: Tensor,
    policy_rejected_avg_logps: Tensor,
    lam: float = 0.1,
) -> tuple[Tensor, Tensor]:
    """The ORPO loss (Hong et al. 2024, Eqs. 6-7): SFT plus an odds-ratio penalty, no reference.

    With ``avg`` the per-token averaged log-prob (shape ``(B,)``, so ``P = exp(avg)`` is the
    geometric-mean token probability) and ``log odds(P) = avg - log(1 - exp(avg))``::

        log_odds_ratio = log odds(P_w) - log odds(P_l)
        loss = -avg_w - lam * log sigmoid(log_odds_ratio)

    The first term is the SFT negative log-likelihood of the chosen completion, the second is
    ``lam * L_OR``. Pitfall: the ``log sigmoid`` term is *subtracted* (``L_OR = -log sigmoid(.)``
    is added). Lessons that write ``L_SFT + lam * log sigmoid(...)`` reward the model for
    preferring the rejected answer. TRL writes it as ``nll - (beta * logsigmoid).mean()``.

    ``log(1 - exp(avg))`` uses a stable ``log1mexp``. An average of exactly 0 (probability 1) is
    moved just below 0, so it gives a large finite log-odds instead of ``inf``; an average above 0
    is not a log-probability and raises naming the argument.

    TRL 1.16 mapping: ``ORPOConfig(beta=lam)``. TRL's SFT term is one token-mean NLL over the
    whole chosen batch (prompt tokens included), ours the mean of ``-avg_w``: equal when the
    averages are over the same tokens and the completions have equal length. TRL's logged
    ``log_odds_chosen`` is ``log_odds_ratio.mean()``; its ``log_odds_ratio`` is the mean of
    ``log sigmoid(log_odds_ratio)``.

    Returns:
        ``(losses, log_odds_ratio)``, each ``(B,)``; ``log_odds_ratio`` is detached, for logging.

    Taught in 05_variants.
    """
    check_non_negative("lam", lam)
    check_same_shape(
        policy_chosen_avg_logps=policy_chosen_avg_logps, policy_rejected_avg_logps=policy_rejected_avg_logps
    )
    check_log_probs(
        policy_chosen_avg_logps=policy_chosen_avg_logps, policy_rejected_avg_logps=policy_rejected_avg_logps
    )
    tiny = torch.finfo(policy_chosen_avg_logps.dtype).tiny
    avg_w = policy_chosen_avg_logps.clamp(max=-tiny)  # (B,) 0 -> just below 0, see above
    avg_l = policy_rejected_avg_logps.clamp(max=-tiny)  # (B,)
    log_odds_ratio = (avg_w - log1mexp(avg_w)) - (avg_l - log1mexp(avg_l))  # (B,)
    losses = -policy_chosen_avg_logps - lam * F.logsigmoid(log_odds_ratio)
    return losses, log_odds_ratio.detach()

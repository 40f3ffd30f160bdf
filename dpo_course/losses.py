"""Preference-optimization losses as pure functions of per-sequence log-probs.

Every function takes tensors of shape ``(B,)`` (one number per sequence: the log-probability of a
completion, summed or averaged over its tokens, as the docstring says) and returns *per-example*
losses of shape ``(B,)``; the caller takes the mean. Nothing here knows about models, tokenizers or
devices: the math runs on whatever device and float dtype the inputs have.

Rewards returned next to a loss are detached, as in the DPO reference code and TRL 1.16: they are
for logging. Use `implicit_reward` when you need a reward that carries gradients.

Taught in 02_dpo_loss_from_scratch (DPO, cDPO, implicit rewards) and 05_variants (the rest).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "LOSSES",
    "dpo_loss",
    "hinge_loss",
    "implicit_reward",
    "ipo_loss",
    "kto_loss",
    "orpo_loss",
    "simpo_loss",
]


# --------------------------------------------------------------------------------------------
# Argument checks shared by every loss. They raise early with the argument's name, because a
# silently broadcast (B,) against (B, 1) or a negative beta trains a wrong model without erroring.
# --------------------------------------------------------------------------------------------
def _check_positive(name: str, value: float) -> None:
    if not value > 0:  # also rejects NaN
        raise ValueError(f"{name} must be > 0, got {value!r}")


def _check_non_negative(name: str, value: float) -> None:
    if not value >= 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")


def _check_same_shape(**tensors: Tensor) -> None:
    names = list(tensors)
    first = tensors[names[0]]
    for name in names[1:]:
        if tensors[name].shape != first.shape:
            raise ValueError(
                f"{name} has shape {tuple(tensors[name].shape)} but {names[0]} has shape "
                f"{tuple(first.shape)}; all log-prob tensors must have the same shape (B,)"
            )


def _log1mexp(x: Tensor) -> Tensor:
    """log(1 - exp(x)) for x < 0, without cancellation (Maechler 2012, "Accurately computing log(1-exp(-|a|))").

    Near 0, ``exp(x)`` rounds to 1 and ``log1p(-exp(x))`` loses every digit, so there we use
    ``log(-expm1(x))``; far below 0, ``expm1`` loses digits instead, so there we use ``log1p``.
    The switch point -log 2 is where the two are equally good.
    """
    return torch.where(x < -0.6931471805599453, torch.log1p(-torch.exp(x)), torch.log(-torch.expm1(x)))


def implicit_reward(policy_logps: Tensor, reference_logps: Tensor, beta: float) -> Tensor:
    """DPO's implicit reward ``r = beta * (log pi(y|x) - log pi_ref(y|x))``, shape ``(B,)``.

    The DPO paper (Rafailov et al. 2023, Eq. 5) shows the optimal policy of the KL-regularised
    objective satisfies ``r(x, y) = beta log pi(y|x)/pi_ref(y|x) + beta log Z(x)``; ``log Z(x)``
    cancels in every pairwise comparison, so this is the reward a DPO policy implicitly defines.
    Not detached: it carries gradients to ``policy_logps``.

    Taught in 02_dpo_loss_from_scratch.
    """
    _check_positive("beta", beta)
    _check_same_shape(policy_logps=policy_logps, reference_logps=reference_logps)
    return beta * (policy_logps - reference_logps)


def _paired_logratios(
    policy_chosen_logps: Tensor,
    policy_rejected_logps: Tensor,
    reference_chosen_logps: Tensor,
    reference_rejected_logps: Tensor,
    beta: float,
) -> tuple[Tensor, Tensor, Tensor]:
    """Validate, then return ``(h, chosen_rewards, rejected_rewards)`` shared by the paired losses."""
    _check_positive("beta", beta)
    _check_same_shape(
        policy_chosen_logps=policy_chosen_logps,
        policy_rejected_logps=policy_rejected_logps,
        reference_chosen_logps=reference_chosen_logps,
        reference_rejected_logps=reference_rejected_logps,
    )
    chosen_logratios = policy_chosen_logps - reference_chosen_logps  # (B,)
    rejected_logratios = policy_rejected_logps - reference_rejected_logps  # (B,)
    h = chosen_logratios - rejected_logratios  # (B,) the log-ratio margin
    chosen_rewards = beta * chosen_logratios.detach()
    rejected_rewards = beta * rejected_logratios.detach()
    return h, chosen_rewards, rejected_rewards


def dpo_loss(
    policy_chosen_logps: Tensor,
    policy_rejected_logps: Tensor,
    reference_chosen_logps: Tensor,
    reference_rejected_logps: Tensor,
    beta: float = 0.1,
    label_smoothing: float = 0.0,
) -> tuple[Tensor, Tensor, Tensor]:
    """The DPO loss (Rafailov et al. 2023, Eq. 7), optionally conservative (cDPO).

    With the log-ratio margin ``h = (pc - rc) - (pr - rr)``, where ``pc, pr`` are the policy's
    chosen / rejected log-probs and ``rc, rr`` the reference's (all summed, shape ``(B,)``)::

        loss = -(1 - e) log sigmoid(beta h) - e log sigmoid(-beta h)

    ``e = label_smoothing = 0`` is plain DPO, ``-log sigmoid(beta h)``. ``e > 0`` is conservative
    DPO (Mitchell 2023, "A note on DPO with noisy preferences"): the label is assumed flipped with
    probability ``e``, so the loss has its minimum at ``beta h = log((1-e)/e)`` instead of
    rewarding an ever larger margin.
    Its gradient w.r.t. ``h`` (e = 0) is ``-beta sigmoid(-beta h) = -beta sigmoid(r_l - r_w)``:
    pairs the implicit reward already orders correctly get little weight (DPO paper, Sec. 4).

    Pitfall: TRL 1.16's ``DPOTrainer(loss_type="sigmoid")`` ignores ``label_smoothing``; there it
    feeds ``"robust"`` (rDPO: a different, unbiased loss divided by ``1 - 2e``) and ``"exo_pair"``.
    The cDPO formula above is what TRL's ``"aot"`` loss computes for a batch of one, and what
    ``CPOTrainer``'s ``"sigmoid"`` computes on log-ratios.

    Args:
        policy_chosen_logps, policy_rejected_logps: ``(B,)`` policy log-probs of y_w and y_l.
        reference_chosen_logps, reference_rejected_logps: ``(B,)`` the frozen reference's.
        beta: KL-penalty strength, > 0.
        label_smoothing: cDPO's flip probability ``e``, in ``[0, 0.5)``.

    Returns:
        ``(losses, chosen_rewards, rejected_rewards)``, each ``(B,)``; rewards are
        ``beta * (policy - reference)``, detached (as in TRL), for logging.

    Taught in 02_dpo_loss_from_scratch.
    """
    if not 0.0 <= label_smoothing < 0.5:
        raise ValueError(f"label_smoothing must lie in [0, 0.5), got {label_smoothing!r}")
    h, chosen_rewards, rejected_rewards = _paired_logratios(
        policy_chosen_logps, policy_rejected_logps, reference_chosen_logps, reference_rejected_logps, beta
    )
    logits = beta * h  # (B,)
    # logsigmoid, not log(sigmoid(.)): sigmoid(-40) underflows in float32 and the log becomes -inf.
    losses = -F.logsigmoid(logits)
    if label_smoothing > 0:
        losses = (1 - label_smoothing) * losses - label_smoothing * F.logsigmoid(-logits)
    return losses, chosen_rewards, rejected_rewards


def ipo_loss(
    policy_chosen_logps: Tensor,
    policy_rejected_logps: Tensor,
    reference_chosen_logps: Tensor,
    reference_rejected_logps: Tensor,
    beta: float = 0.1,
) -> tuple[Tensor, Tensor, Tensor]:
    """The IPO loss (Azar et al. 2023, "A General Theoretical Paradigm...", Eq. 17).

    ``loss = (h - 1/(2 beta))^2`` with ``h = (pc - rc) - (pr - rr)``, shapes ``(B,)``; ``beta`` is
    the paper's regulariser tau. Unlike DPO's loss, which keeps pushing ``h`` up, this one has its
    minimum at the finite margin ``h = 1/(2 beta)``, so it cannot drive the policy off to infinity.

    Which log-probs? The paper writes ``h`` with sequence (summed) log-probs. TRL 1.16's
    ``DPOTrainer(loss_type="ipo")`` instead divides each log-ratio by its completion's token
    count, i.e. it feeds this formula per-token *averaged* log-probs (its comment says the IPO
    authors confirm their reported results used this form). This function uses whatever you
    give it: pass averaged log-probs to match TRL, summed ones to match the equation as printed.
    The same ``beta`` means very different things in the two cases.

    Returns:
        ``(losses, chosen_rewards, rejected_rewards)``, each ``(B,)``; rewards are
        ``beta * (policy - reference)`` of the inputs, detached.

    Taught in 05_variants.
    """
    h, chosen_rewards, rejected_rewards = _paired_logratios(
        policy_chosen_logps, policy_rejected_logps, reference_chosen_logps, reference_rejected_logps, beta
    )
    losses = (h - 1 / (2 * beta)) ** 2
    return losses, chosen_rewards, rejected_rewards


def hinge_loss(
    policy_chosen_logps: Tensor,
    policy_rejected_logps: Tensor,
    reference_chosen_logps: Tensor,
    reference_rejected_logps: Tensor,
    beta: float = 0.1,
) -> tuple[Tensor, Tensor, Tensor]:
    """The hinge (SLiC) loss: ``loss = relu(1 - beta h)``, ``h = (pc - rc) - (pr - rr)``, shapes ``(B,)``.

    SLiC-HF (Zhao et al. 2023) calibrates with a rank hinge ``max(0, delta - log pi(y_w) + log pi(y_l))``;
    RSO (Liu et al. 2024) writes it against the reference as here, with margin ``1/beta``. A pair
    stops contributing (zero loss, zero gradient) once ``h >= 1/beta``, where DPO would keep
    pushing with a sigmoid-shaped weight. This is TRL's ``loss_type="hinge"``.

    Returns:
        ``(losses, chosen_rewards, rejected_rewards)``, each ``(B,)``; rewards detached.

    Taught in 05_variants.
    """
    h, chosen_rewards, rejected_rewards = _paired_logratios(
        policy_chosen_logps, policy_rejected_logps, reference_chosen_logps, reference_rejected_logps, beta
    )
    losses = torch.relu(1 - beta * h)
    return losses, chosen_rewards, rejected_rewards


def simpo_loss(
    policy_chosen_avg_logps: Tensor,
    policy_rejected_avg_logps: Tensor,
    beta: float = 2.0,
    gamma: float = 1.0,
) -> tuple[Tensor, Tensor, Tensor]:
    """The SimPO loss (Meng et al. 2024, Eq. 6): no reference model, length-normalised rewards.

    ``loss = -log sigmoid(beta (avg_w - avg_l) - gamma)``, where ``avg`` is the policy's log-prob
    of a completion *averaged* over its tokens, shape ``(B,)``. The reward is ``beta * avg``
    (Eq. 4) and ``gamma`` is the target reward margin, on the reward scale.

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
    _check_positive("beta", beta)
    _check_same_shape(
        policy_chosen_avg_logps=policy_chosen_avg_logps, policy_rejected_avg_logps=policy_rejected_avg_logps
    )
    logits = beta * (policy_chosen_avg_logps - policy_rejected_avg_logps) - gamma  # (B,)
    losses = -F.logsigmoid(logits)
    chosen_rewards = beta * policy_chosen_avg_logps.detach()
    rejected_rewards = beta * policy_rejected_avg_logps.detach()
    return losses, chosen_rewards, rejected_rewards


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

    ``log(1 - exp(avg))`` uses a stable ``log1mexp``; ``avg`` is clamped just below 0 so that a
    completion with probability 1 gives a large finite log-odds instead of ``inf``.

    TRL 1.16 mapping: ``ORPOConfig(beta=lam)``. TRL's SFT term is one token-mean NLL over the
    whole chosen batch (prompt tokens included), ours the mean of ``-avg_w``: equal when the
    averages are over the same tokens and the completions have equal length. TRL's logged
    ``log_odds_chosen`` is ``log_odds_ratio.mean()``; its ``log_odds_ratio`` is the mean of
    ``log sigmoid(log_odds_ratio)``.

    Returns:
        ``(losses, log_odds_ratio)``, each ``(B,)``; ``log_odds_ratio`` is detached, for logging.

    Taught in 05_variants.
    """
    _check_non_negative("lam", lam)
    _check_same_shape(
        policy_chosen_avg_logps=policy_chosen_avg_logps, policy_rejected_avg_logps=policy_rejected_avg_logps
    )
    tiny = torch.finfo(policy_chosen_avg_logps.dtype).tiny
    avg_w = policy_chosen_avg_logps.clamp(max=-tiny)  # (B,)
    avg_l = policy_rejected_avg_logps.clamp(max=-tiny)  # (B,)
    log_odds_ratio = (avg_w - _log1mexp(avg_w)) - (avg_l - _log1mexp(avg_l))  # (B,)
    losses = -policy_chosen_avg_logps - lam * F.logsigmoid(log_odds_ratio)
    return losses, log_odds_ratio.detach()


def kto_loss(
    policy_logps: Tensor,
    reference_logps: Tensor,
    desirable: Tensor,
    kl: Tensor | float,
    beta: float = 0.1,
    desirable_weight: float = 1.0,
    undesirable_weight: float = 1.0,
) -> tuple[Tensor, Tensor]:
    """The KTO loss (Ethayarajh et al. 2024, Sec. 4; TRL's code cites it as Eqn 7), unpaired data.

    Each example is one completion with a thumbs-up (``desirable[i] = True``) or thumbs-down.
    With ``r = policy_logps - reference_logps`` (summed log-probs, shape ``(B,)``) and the
    reference point ``z0 = max(kl, 0)``, treated as a constant::

        desirable:    loss = desirable_weight   * (1 - sigmoid(beta (r - z0)))
        undesirable:  loss = undesirable_weight * (1 - sigmoid(beta (z0 - r)))

    i.e. ``lambda_y - v(x, y)`` for the paper's value function ``v``. ``kl`` is the batch estimate
    of KL(pi || pi_ref): TRL uses the mean of ``policy - reference`` log-probs of *mismatched*
    (prompt, completion) pairs from the same batch. It is a scalar (a float or a one-element
    tensor); it is clamped at 0 and detached here, as in TRL 1.16's ``KTOTrainer``.
    TRL returns the losses ordered ``[desirable; undesirable]``; ours keep the input order.

    Args:
        desirable: ``(B,)`` bool tensor, True for desirable completions.
        desirable_weight, undesirable_weight: lambda_D and lambda_U, >= 0. The paper suggests
            ``lambda_D n_D / (lambda_U n_U)`` in ``[1, 4/3]``.

    Returns:
        ``(losses, rewards)``, each ``(B,)``; ``rewards = beta * r``, detached.

    Taught in 05_variants.
    """
    _check_positive("beta", beta)
    _check_non_negative("desirable_weight", desirable_weight)
    _check_non_negative("undesirable_weight", undesirable_weight)
    _check_same_shape(policy_logps=policy_logps, reference_logps=reference_logps, desirable=desirable)
    if desirable.dtype != torch.bool:
        raise TypeError(f"desirable must be a bool tensor, got dtype {desirable.dtype}")
    kl = torch.as_tensor(kl, dtype=policy_logps.dtype, device=policy_logps.device)
    if kl.numel() != 1:
        raise ValueError(f"kl must be a scalar (one batch-level estimate), got shape {tuple(kl.shape)}")
    z0 = kl.detach().reshape(()).clamp(min=0)  # () the reference point; no gradient flows into it
    logratios = policy_logps - reference_logps  # (B,)
    desirable_losses = desirable_weight * (1 - torch.sigmoid(beta * (logratios - z0)))
    undesirable_losses = undesirable_weight * (1 - torch.sigmoid(beta * (z0 - logratios)))
    losses = torch.where(desirable, desirable_losses, undesirable_losses)
    return losses, beta * logratios.detach()


# A trainer looks a loss up by name (TRL's ``loss_type`` names where TRL has one) instead of an
# ``if loss_type == ...`` chain. The first three share one signature (four log-prob tensors,
# beta); "simpo" and "orpo" take per-token averaged policy log-probs only; "kto" is unpaired.
LOSSES: dict[str, Callable[..., tuple[Tensor, ...]]] = {
    "sigmoid": dpo_loss,
    "ipo": ipo_loss,
    "hinge": hinge_loss,
    "simpo": simpo_loss,
    "orpo": orpo_loss,
    "kto": kto_loss,
}

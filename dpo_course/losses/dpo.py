"""DPO and the variants that keep its reference model: cDPO, IPO, hinge, length-normalised DPO, R-DPO.

Every function takes per-sequence log-probs of shape ``(B,)`` and returns ``(losses,
chosen_rewards, rejected_rewards)``, each ``(B,)``; rewards are ``beta * (policy - reference)``,
detached (as in the DPO reference code and TRL 1.16), for logging.
Taught in 02_dpo_loss_from_scratch (DPO, cDPO, implicit rewards) and 05_variants (the rest).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from dpo_course.losses._checks import check_finite, check_log_probs, check_positive, check_same_shape
from dpo_course.losses.registry import LENGTH_INPUTS, PAIRED_INPUTS, REFERENCE_INPUTS, register_loss

WITH_REFERENCE = PAIRED_INPUTS + REFERENCE_INPUTS


def implicit_reward(policy_logps: Tensor, reference_logps: Tensor, beta: float) -> Tensor:
    """DPO's implicit reward ``r = beta * (log pi(y|x) - log pi_ref(y|x))``, shape ``(B,)``.

    The DPO paper (Rafailov et al. 2023, Eq. 5) shows the optimal policy of the KL-regularised
    objective satisfies ``r(x, y) = beta log pi(y|x)/pi_ref(y|x) + beta log Z(x)``; ``log Z(x)``
    cancels in every pairwise comparison, so this is the reward a DPO policy implicitly defines.
    Not detached: it carries gradients to ``policy_logps``.

    Taught in 02_dpo_loss_from_scratch.
    """
    check_positive("beta", beta)
    check_same_shape(policy_logps=policy_logps, reference_logps=reference_logps)
    return beta * (policy_logps - reference_logps)


def paired_logratios(
    policy_chosen_logps: Tensor,
    policy_rejected_logps: Tensor,
    reference_chosen_logps: Tensor,
    reference_rejected_logps: Tensor,
    beta: float,
) -> tuple[Tensor, Tensor, Tensor]:
    """Validate, then return ``(h, chosen_rewards, rejected_rewards)`` shared by the paired losses."""
    check_positive("beta", beta)
    check_same_shape(
        policy_chosen_logps=policy_chosen_logps,
        policy_rejected_logps=policy_rejected_logps,
        reference_chosen_logps=reference_chosen_logps,
        reference_rejected_logps=reference_rejected_logps,
    )
    chosen_logratios = policy_chosen_logps - reference_chosen_logps  # (B,)
    rejected_logratios = policy_rejected_logps - reference_rejected_logps  # (B,)
    h = chosen_logratios - rejected_logratios  # (B,) the log-ratio margin
    return h, beta * chosen_logratios.detach(), beta * rejected_logratios.detach()


@register_loss(
    "sigmoid", inputs=WITH_REFERENCE, config_fields={"beta": "beta", "label_smoothing": "label_smoothing"}
)
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

    Reference-free DPO: the DPO paper's reference code (``preference_loss(..., reference_free=True)``)
    takes the reference log-ratio as 0, which is this function with ``rc = rr = 0``; the trainer does
    that for ``DPOTrainConfig(reference_free=True)``. TRL 1.16's ``DPOConfig`` has no such option.

    Pitfall: TRL 1.16's ``DPOTrainer(loss_type="sigmoid")`` ignores ``label_smoothing``; there it
    feeds ``"robust"`` (rDPO: a different, unbiased loss divided by ``1 - 2e``) and ``"exo_pair"``.
    The cDPO formula above is what TRL's ``"aot"`` loss computes for a batch of one, and what
    ``CPOTrainer``'s ``"sigmoid"`` computes on log-ratios.

    Args:
        policy_chosen_logps, policy_rejected_logps: ``(B,)`` policy log-probs of y_w and y_l.
        reference_chosen_logps, reference_rejected_logps: ``(B,)`` the frozen reference's.
        beta: KL-penalty strength, finite and > 0.
        label_smoothing: cDPO's flip probability ``e``, in ``[0, 0.5)``.

    Returns:
        ``(losses, chosen_rewards, rejected_rewards)``, each ``(B,)``; rewards are
        ``beta * (policy - reference)``, detached (as in TRL), for logging.

    Taught in 02_dpo_loss_from_scratch.
    """
    if not 0.0 <= label_smoothing < 0.5:
        raise ValueError(f"label_smoothing must lie in [0, 0.5), got {label_smoothing!r}")
    h, chosen_rewards, rejected_rewards = paired_logratios(
        policy_chosen_logps, policy_rejected_logps, reference_chosen_logps, reference_rejected_logps, beta
    )
    logits = beta * h  # (B,)
    # logsigmoid, not log(sigmoid(.)): sigmoid(-40) underflows in float32 and the log becomes -inf.
    losses = -F.logsigmoid(logits)
    if label_smoothing > 0:
        losses = (1 - label_smoothing) * losses - label_smoothing * F.logsigmoid(-logits)
    return losses, chosen_rewards, rejected_rewards


@register_loss("ipo", inputs=WITH_REFERENCE, average_logps=True, config_fields={"beta": "beta"})
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
    authors confirm their reported results used this form); so does `train_dpo`. This function uses
    whatever you give it: pass averaged log-probs to match TRL, summed ones to match the equation as
    printed. The same ``beta`` means very different things in the two cases.

    Returns:
        ``(losses, chosen_rewards, rejected_rewards)``, each ``(B,)``; rewards are
        ``beta * (policy - reference)`` of the inputs, detached.

    Taught in 05_variants.
    """
    h, chosen_rewards, rejected_rewards = paired_logratios(
        policy_chosen_logps, policy_rejected_logps, reference_chosen_logps, reference_rejected_logps, beta
    )
    return (h - 1 / (2 * beta)) ** 2, chosen_rewards, rejected_rewards


@register_loss("hinge", inputs=WITH_REFERENCE, config_fields={"beta": "beta"})
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
    h, chosen_rewards, rejected_rewards = paired_logratios(
        policy_chosen_logps, policy_rejected_logps, reference_chosen_logps, reference_rejected_logps, beta
    )
    return torch.relu(1 - beta * h), chosen_rewards, rejected_rewards


@register_loss("sigmoid_norm", inputs=WITH_REFERENCE, average_logps=True, config_fields={"beta": "beta"})
def sigmoid_norm_loss(
    policy_chosen_avg_logps: Tensor,
    policy_rejected_avg_logps: Tensor,
    reference_chosen_avg_logps: Tensor,
    reference_rejected_avg_logps: Tensor,
    beta: float = 0.1,
) -> tuple[Tensor, Tensor, Tensor]:
    """Length-normalised DPO, TRL 1.16's ``loss_type="sigmoid_norm"``: DPO on per-token averaged log-probs.

    ``loss = -log sigmoid(beta ((avg_pc - avg_rc) - (avg_pr - avg_rr)))``, all ``(B,)``, each log-ratio
    divided by its completion's token count: TRL's code (``trainer/dpo_trainer.py``, branch
    ``"sigmoid_norm"``) divides the summed chosen and rejected scores by ``completion_mask.sum(dim=1)``.
    A long completion then no longer moves the margin more than a short one. The inputs must be
    log-probabilities (<= 0); a positive one raises naming the argument.

    Returns:
        ``(losses, chosen_rewards, rejected_rewards)``, each ``(B,)``; rewards are ``beta`` times the
        *averaged* log-ratios, detached. (TRL logs ``beta`` times the summed ones.)

    Not yet taught in a notebook; tests/losses/test_losses.py checks it against TRL 1.16's code.
    """
    check_log_probs(
        policy_chosen_avg_logps=policy_chosen_avg_logps,
        policy_rejected_avg_logps=policy_rejected_avg_logps,
        reference_chosen_avg_logps=reference_chosen_avg_logps,
        reference_rejected_avg_logps=reference_rejected_avg_logps,
    )
    return dpo_loss(
        policy_chosen_avg_logps, policy_rejected_avg_logps, reference_chosen_avg_logps,
        reference_rejected_avg_logps, beta=beta,
    )  # fmt: skip


@register_loss(
    "rdpo", inputs=WITH_REFERENCE + LENGTH_INPUTS, config_fields={"beta": "beta", "alpha": "rdpo_alpha"}
)
def rdpo_loss(
    policy_chosen_logps: Tensor,
    policy_rejected_logps: Tensor,
    reference_chosen_logps: Tensor,
    reference_rejected_logps: Tensor,
    chosen_lengths: Tensor,
    rejected_lengths: Tensor,
    beta: float = 0.1,
    alpha: float = 0.0,
) -> tuple[Tensor, Tensor, Tensor]:
    """R-DPO, length-regularised DPO (Park et al. 2024, "Disentangling Length from Quality in DPO").

    ``loss = -log sigmoid(beta h - alpha (|y_w| - |y_l|))`` with ``h`` as in `dpo_loss` and ``|y|``
    the completion's length in tokens (``chosen_lengths``, ``rejected_lengths``: ``(B,)``). The
    penalty takes margin away from pairs whose chosen answer is the longer one, so the policy cannot
    buy reward with length; ``alpha = 0`` is DPO. ``alpha`` is in nats per token, outside the
    ``beta``: the paper adds ``alpha |y|`` to the reward inside the Bradley-Terry model.
    Not in TRL 1.16: ``DPOConfig`` has no length-penalty field and no ``loss_type`` for it (its
    ``ld_alpha`` is LD-DPO, a different idea: it down-weights the log-probs of the longer answer's
    extra tokens; see `concatenated_forward`).

    Returns:
        ``(losses, chosen_rewards, rejected_rewards)``, each ``(B,)``; rewards as in `dpo_loss`
        (the length penalty is not part of them).

    Not yet taught in a notebook; tests/losses/test_losses.py checks it against TRL 1.16's code.
    """
    check_finite("alpha", alpha)
    check_same_shape(
        policy_chosen_logps=policy_chosen_logps,
        chosen_lengths=chosen_lengths,
        rejected_lengths=rejected_lengths,
    )
    h, chosen_rewards, rejected_rewards = paired_logratios(
        policy_chosen_logps, policy_rejected_logps, reference_chosen_logps, reference_rejected_logps, beta
    )
    length_gap = (chosen_lengths - rejected_lengths).to(h.dtype)  # (B,) tokens
    return -F.logsigmoid(beta * h - alpha * length_gap), chosen_rewards, rejected_rewards

"""Tests for dpo_course.losses: hand-checked values, invariants, and equality with TRL 1.16's code.

Which TRL 1.16.0 code each equality test runs (paths under site-packages/trl/):
- test_dpo_family_matches_trl_dpotrainer: trainer/dpo_trainer.py, DPOTrainer._compute_loss, run
  end to end on a stand-in model (_ScriptedLM) that returns preset per-token log-probs and with
  precomputed reference log-probs; exercises the loss_type branches "sigmoid" (`-F.logsigmoid(
  self.beta * delta_score)`), "hinge" (`torch.relu(1 - self.beta * delta_score)`) and "ipo" (the
  per-token averaging by `completion_mask.sum(dim=1)` and `(ipo_delta - 1 / (2 * self.beta)) ** 2`),
  plus the logged `rewards/chosen`, `rewards/rejected` metrics. Run one example at a time, since
  _compute_loss returns the batch mean.
- test_cdpo_matches_trl: TRL 1.16's "sigmoid" ignores label_smoothing (asserted too), so cDPO is
  checked against two TRL paths that do compute it: DPOTrainer._compute_loss with loss_type "aot"
  on a batch of one (its sort is then the identity, so `delta` is our h) and
  experimental/cpo/cpo_trainer.py CPOTrainer.cpo_loss with loss_type "sigmoid" fed log-ratios.
- test_simpo_matches_trl_cpo: CPOTrainer.cpo_loss (loss_type "simpo", the `gamma_logratios =
  self.simpo_gamma / self.beta` lines) and CPOTrainer.get_batch_loss_metrics (the real
  `losses.mean() + self.cpo_alpha * policy_nll_loss`, with cpo_alpha = 0) with its
  concatenated_forward replaced by one returning our log-probs.
- test_orpo_matches_trl: experimental/orpo/orpo_trainer.py ORPOTrainer.odds_ratio_loss (with TRL's
  log1mexp) and ORPOTrainer.get_batch_loss_metrics (the real `loss = policy_nll_loss -
  losses.mean()`), concatenated_forward replaced as above.
- test_kto_matches_trl_ktotrainer: trainer/kto_trainer.py KTOTrainer._compute_loss end to end with
  _ScriptedLM, calculate_KL=True and precomputed reference log-probs, so it runs TRL's own KL
  estimate `(KL_logps - ref_KL_logps).mean()...clamp(min=0)` and the "kto" branches
  `1 - F.sigmoid(self.beta * (chosen_logratios - kl))` / `... (kl - rejected_logratios)`.
Trainers are built with object.__new__ and only the attributes those methods read.
"""

from __future__ import annotations

import math
from collections import defaultdict
from types import SimpleNamespace

import pytest
import torch
from torch import nn
from trl import DPOTrainer, KTOTrainer
from trl.experimental.cpo import CPOTrainer
from trl.experimental.orpo import ORPOTrainer

from dpo_course.losses import (
    LOSSES,
    dpo_loss,
    hinge_loss,
    implicit_reward,
    ipo_loss,
    kto_loss,
    orpo_loss,
    rdpo_loss,
    sigmoid_norm_loss,
    simpo_loss,
)

LOG2 = 0.6931471805599453
SOFTPLUS_NEG1 = 0.31326168751822286  # -log sigmoid(1) = log(1 + e^-1)
SOFTPLUS_POS1 = 1.3132616875182228  # -log sigmoid(-1) = log(1 + e)
ONE_MINUS_SIGMOID1 = 0.2689414213699951  # 1 - sigmoid(1) = sigmoid(-1)


def t(*values: float, dtype: torch.dtype = torch.float64, device: str = "cpu") -> torch.Tensor:
    return torch.tensor(values, dtype=dtype, device=device)


# ------------------------------------------------------------------------------------------
# Hand-checkable values
# ------------------------------------------------------------------------------------------
def test_dpo_policy_equals_reference_gives_log2_and_zero_rewards():
    logps = t(-3.0, -12.5, -40.0)
    losses, chosen_rewards, rejected_rewards = dpo_loss(logps, logps - 1, logps, logps - 1, beta=0.1)
    torch.testing.assert_close(losses, t(LOG2, LOG2, LOG2))
    assert torch.all(chosen_rewards == 0) and torch.all(rejected_rewards == 0)


def test_dpo_hand_value():
    # pc - rc = -5 - (-10) = 5, pr - rr = -15 - (-10) = -5, so h = 10 and beta h = 1.
    losses, chosen_rewards, rejected_rewards = dpo_loss(t(-5.0), t(-15.0), t(-10.0), t(-10.0), beta=0.1)
    torch.testing.assert_close(losses, t(SOFTPLUS_NEG1))
    torch.testing.assert_close(chosen_rewards, t(0.5))
    torch.testing.assert_close(rejected_rewards, t(-0.5))
    # The wrong way round: h = -10 gives -log sigmoid(-1).
    losses, _, _ = dpo_loss(t(-15.0), t(-5.0), t(-10.0), t(-10.0), beta=0.1)
    torch.testing.assert_close(losses, t(SOFTPLUS_POS1))


def test_cdpo_hand_value():
    # -(1-e) log s(x) - e log s(-x) = softplus(-x) + e x; at x = beta h = 1, e = 0.1: 0.31326... + 0.1.
    losses, _, _ = dpo_loss(t(-5.0), t(-15.0), t(-10.0), t(-10.0), beta=0.1, label_smoothing=0.1)
    torch.testing.assert_close(losses, t(0.41326168751822286))


def test_ipo_hinge_hand_values():
    # beta = 0.1: the IPO target margin is 1/(2 beta) = 5; the hinge is flat from h = 1/beta = 10.
    zero = t(0.0, 0.0, 0.0, 0.0)
    pc = t(10.0, 5.0, 0.0, 4.0)  # h = pc, since every other input is 0
    ipo, _, _ = ipo_loss(pc, zero, zero, zero, beta=0.1)
    hinge, _, _ = hinge_loss(pc, zero, zero, zero, beta=0.1)
    torch.testing.assert_close(ipo, t(25.0, 0.0, 25.0, 1.0))
    torch.testing.assert_close(hinge, t(0.0, 0.5, 1.0, 0.6))


def test_simpo_hand_value():
    # beta (avg_w - avg_l) - gamma = 2 * 1 - 1 = 1; equal averages give 2 * 0 - 1 = -1.
    losses, chosen_rewards, rejected_rewards = simpo_loss(t(-1.0, -3.0), t(-2.0, -3.0), beta=2.0, gamma=1.0)
    torch.testing.assert_close(losses, t(SOFTPLUS_NEG1, SOFTPLUS_POS1))
    torch.testing.assert_close(chosen_rewards, t(-2.0, -6.0))
    torch.testing.assert_close(rejected_rewards, t(-4.0, -6.0))


def test_orpo_hand_value():
    # P_w = 0.5 (odds 1), P_l = 0.2 (odds 1/4): log odds ratio = log 4, log sigmoid(log 4) = log 0.8.
    # loss = -log 0.5 - 0.1 * log 0.8 = 0.693147... + 0.022314...
    losses, log_odds_ratio = orpo_loss(t(math.log(0.5)), t(math.log(0.2)), lam=0.1)
    torch.testing.assert_close(log_odds_ratio, t(1.3862943611198906))
    torch.testing.assert_close(losses, t(0.7154615356913663))


def test_kto_hand_values():
    # beta r = 0.1 * 10 = 1. kl = -3 is clamped to 0.
    policy, reference = t(-10.0, -10.0, -20.0), t(-20.0, -20.0, -20.0)  # r = 10, 10, 0
    desirable = torch.tensor([True, False, True])
    losses, rewards = kto_loss(policy, reference, desirable, kl=-3.0, beta=0.1)
    torch.testing.assert_close(losses, t(ONE_MINUS_SIGMOID1, 1 - ONE_MINUS_SIGMOID1, 0.5))
    torch.testing.assert_close(rewards, t(1.0, 1.0, 0.0))
    # With z0 = 10 the first example sits at the reference point: 1 - sigmoid(0) = 0.5, times w_d = 2.
    losses, _ = kto_loss(policy, reference, desirable, kl=10.0, beta=0.1, desirable_weight=2.0)
    torch.testing.assert_close(losses, t(1.0, 0.5, 2 * (1 - ONE_MINUS_SIGMOID1)))


def test_implicit_reward_and_registry():
    reward = implicit_reward(t(-5.0, -1.0), t(-10.0, -1.0), beta=0.1)
    torch.testing.assert_close(reward, t(0.5, 0.0))
    assert (
        LOSSES["sigmoid"].fn is dpo_loss and LOSSES["ipo"].fn is ipo_loss and LOSSES["hinge"].fn is hinge_loss
    )
    assert {"simpo", "orpo", "kto", "sigmoid_norm", "rdpo"} <= set(LOSSES)
    # What the trainer reads from each entry, declared once beside the function.
    table = {n: (s.needs_reference, s.average_logps, s.paired) for n, s in LOSSES.items()}
    assert table["sigmoid"] == (True, False, True) and table["ipo"] == (True, True, True)
    assert table["simpo"] == (False, True, True) and table["orpo"] == (False, True, True)
    assert table["sigmoid_norm"] == (True, True, True) and table["kto"] == (True, False, False)
    assert dict(LOSSES["simpo"].config_fields) == {"beta": "beta", "gamma": "simpo_gamma"}
    assert LOSSES["rdpo"].needs_lengths and not LOSSES["sigmoid"].needs_lengths


# ------------------------------------------------------------------------------------------
# Invariants
# ------------------------------------------------------------------------------------------
def _random_logps(b: int = 6, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [-30 * torch.rand(b, generator=g, dtype=torch.float64) for _ in range(4)]


@pytest.mark.parametrize("loss_fn", [dpo_loss, ipo_loss, hinge_loss])
def test_swapping_chosen_and_rejected_flips_the_margin(loss_fn):
    pc, pr, rc, rr = _random_logps()
    _, cw, rw = loss_fn(pc, pr, rc, rr)
    _, cw_swapped, rw_swapped = loss_fn(pr, pc, rr, rc)
    torch.testing.assert_close(cw_swapped - rw_swapped, -(cw - rw))
    if loss_fn is dpo_loss:  # -log s(-x) = -log s(x) + x, so the swapped loss is higher by beta h
        losses, _, _ = dpo_loss(pc, pr, rc, rr)
        swapped, _, _ = dpo_loss(pr, pc, rr, rc)
        torch.testing.assert_close(swapped - losses, 0.1 * ((pc - rc) - (pr - rr)))


def test_dpo_gradient_is_sigmoid_weighted():
    pc, pr, rc, rr = _random_logps()
    pc, pr = pc.requires_grad_(), pr.requires_grad_()
    beta = 0.1
    losses, chosen_rewards, rejected_rewards = dpo_loss(pc, pr, rc, rr, beta=beta)
    losses.sum().backward()
    weight = torch.sigmoid(rejected_rewards - chosen_rewards)  # sigmoid(r_l - r_w) = sigmoid(-beta h)
    torch.testing.assert_close(pc.grad, -beta * weight)  # dh/d pc = 1
    torch.testing.assert_close(pr.grad, beta * weight)  # dh/d pr = -1
    assert not chosen_rewards.requires_grad and implicit_reward(pc, rc, beta).requires_grad


def test_ipo_minimum_at_half_inverse_beta():
    beta = 0.25
    h = torch.tensor([1 / (2 * beta)], dtype=torch.float64, requires_grad=True)
    zero = t(0.0)
    losses, _, _ = ipo_loss(h, zero, zero, zero, beta=beta)
    losses.sum().backward()
    assert losses.item() == 0.0 and h.grad.item() == 0.0
    around, _, _ = ipo_loss(t(1.9, 2.1), t(0.0, 0.0), t(0.0, 0.0), t(0.0, 0.0), beta=beta)
    torch.testing.assert_close(around, t(0.01, 0.01))


def test_cdpo_with_zero_smoothing_is_dpo_and_minimum_is_finite():
    pc, pr, rc, rr = _random_logps()
    torch.testing.assert_close(dpo_loss(pc, pr, rc, rr, 0.1, 0.0)[0], dpo_loss(pc, pr, rc, rr, 0.1)[0])
    # cDPO's minimum sits at beta h = log((1-e)/e) = log 9 for e = 0.1.
    h = torch.tensor([math.log(9) / 0.1], dtype=torch.float64, requires_grad=True)
    zero = t(0.0)
    dpo_loss(h, zero, zero, zero, beta=0.1, label_smoothing=0.1)[0].sum().backward()
    assert abs(h.grad.item()) < 1e-12


def test_orpo_odds_ratio_term_is_subtracted():
    # Raising P_w with P_l fixed must lower the loss's preference part; with "+" it would rise.
    avg_l = t(-2.0, -2.0)
    avg_w = t(-1.0, -0.5)
    losses, log_odds_ratio = orpo_loss(avg_w, avg_l, lam=1.0)
    preference_part = losses + avg_w  # strip the SFT term -avg_w
    assert log_odds_ratio[1] > log_odds_ratio[0] and preference_part[1] < preference_part[0]
    assert torch.all(preference_part > 0)  # -lam log sigmoid(.) is positive


def test_extreme_inputs_stay_finite():
    big = t(1e4, -1e4)
    zero = t(0.0, 0.0)
    losses, _, _ = dpo_loss(big, zero, zero, zero, beta=0.1, label_smoothing=0.2)
    assert torch.isfinite(losses).all() and losses[0] > 0
    # Averaged log-probs of 0 (probability 1), a hair below 0, and very negative.
    losses, log_odds_ratio = orpo_loss(t(0.0, -1e-12, -60.0), t(-60.0, -1e-12, 0.0), lam=0.1)
    assert torch.isfinite(losses).all() and torch.isfinite(log_odds_ratio).all()
    assert log_odds_ratio[0] > 0 and log_odds_ratio[1] == 0 and log_odds_ratio[2] < 0


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda x: dpo_loss(x, x, x, x, beta=0.0), "beta"),
        (lambda x: dpo_loss(x, x, x, x, label_smoothing=0.5), "label_smoothing"),
        (lambda x: dpo_loss(x, x, x, x, label_smoothing=-0.1), "label_smoothing"),
        (lambda x: dpo_loss(x, x, x, x[:1]), "reference_rejected_logps"),
        (lambda x: dpo_loss(x, x.unsqueeze(1), x, x), "policy_rejected_logps"),
        (lambda x: ipo_loss(x, x, x, x, beta=-1.0), "beta"),
        (lambda x: simpo_loss(x, x, beta=float("nan")), "beta"),
        (lambda x: orpo_loss(x, x[:1]), "policy_rejected_avg_logps"),
        (lambda x: orpo_loss(x, x, lam=-1.0), "lam"),
        (lambda x: kto_loss(x, x, x > -1, kl=x), "kl"),
        (lambda x: kto_loss(x, x, x > -1, kl=0.0, undesirable_weight=-1.0), "undesirable_weight"),
    ],
)
def test_bad_arguments_raise_and_name_the_argument(call, message):
    with pytest.raises(ValueError, match=message):
        call(t(-1.0, -2.0))


def test_kto_rejects_non_bool_labels():
    with pytest.raises(TypeError, match="desirable"):
        kto_loss(t(-1.0), t(-1.0), torch.tensor([1]), kl=0.0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_every_loss_keeps_device_dtype_and_shape(device, dtype):
    pc, pr, rc, rr = (x.to(device=device, dtype=dtype) / 10 for x in _random_logps(b=5))
    desirable = torch.tensor([True, False, True, False, True], device=device)
    kl = torch.tensor(0.05, device=device)
    outputs = [
        *dpo_loss(pc, pr, rc, rr, label_smoothing=0.1),
        *ipo_loss(pc, pr, rc, rr),
        *hinge_loss(pc, pr, rc, rr),
        *simpo_loss(pc, pr),
        *orpo_loss(pc, pr),
        *kto_loss(pc, rc, desirable, kl),
        *sigmoid_norm_loss(pc, pr, rc, rr),
        *rdpo_loss(pc, pr, rc, rr, torch.arange(5, device=device), torch.ones(5, device=device), alpha=0.1),
        implicit_reward(pc, rc, 0.1),
    ]
    for out in outputs:
        assert out.shape == (5,) and out.dtype == dtype and out.device.type == device
        assert torch.isfinite(out).all()
    # Same numbers as float64 on the CPU, to the dtype's precision.
    reference = orpo_loss(pc.double().cpu(), pr.double().cpu())[0]
    tol = {torch.float32: 1e-5, torch.float64: 1e-12, torch.bfloat16: 3e-2}[dtype]
    torch.testing.assert_close(orpo_loss(pc, pr)[0].double().cpu(), reference, rtol=tol, atol=tol)


# ------------------------------------------------------------------------------------------
# Equality with TRL 1.16's own code
# ------------------------------------------------------------------------------------------
class _Accel:
    """The only Accelerator members the exercised TRL methods touch (single process)."""

    device = torch.device("cpu")

    @staticmethod
    def gather(x):
        return x

    gather_for_metrics = gather


class _ScriptedLM(nn.Module):
    """Stands in for a model called with ``fused_lm_head=True``: returns preset per-token log-probs.

    ``input_ids[0, 0]`` picks which preset to return, so the main batch and KTO's KL batch differ.
    """

    def __init__(self, per_token_logps: dict[int, torch.Tensor]):
        super().__init__()
        self.per_token_logps = per_token_logps
        self.eval()  # "eval" mode: TRL skips its train-only token counting

    def forward(self, input_ids, **kwargs):
        log_probs = self.per_token_logps[int(input_ids[0, 0])]
        zeros = torch.zeros_like(log_probs)
        return SimpleNamespace(log_probs=log_probs, entropy=zeros, mean_logits=zeros, is_top1=zeros.bool())


def _trl_dpo(
    loss_type, pc, pr, rc, rr, beta, label_smoothing=0.0, chosen_len=None, rejected_len=None, *,
    ld_alpha=None, per_token=None, completion_mask=None,
):  # fmt: skip
    """Run DPOTrainer._compute_loss on one batch; return (mean loss, metrics).

    By default each sequence log-prob is spread evenly over its completion tokens (TRL sums them back);
    `per_token` (2B, T-1) and `completion_mask` (2B, T) give TRL the token log-probs themselves.
    """
    b = rc.numel()
    if per_token is None:
        one = torch.ones(b, dtype=torch.long)
        lengths = torch.cat(
            [one if chosen_len is None else chosen_len, one if rejected_len is None else rejected_len]
        )
        width = int(lengths.max()) + 1  # prompt token + completion
        positions = torch.arange(width).expand(2 * b, width)
        completion_mask = (positions >= width - lengths[:, None]).long()  # (2B, T) last n positions
        per_token = completion_mask[:, 1:] * (torch.cat([pc, pr]) / lengths)[:, None]  # (2B, T-1)
    width = completion_mask.shape[1]
    trainer = object.__new__(DPOTrainer)
    model = _ScriptedLM({0: per_token})
    vars(trainer).update(
        model=model, accelerator=_Accel(), aux_loss_enabled=False, ld_alpha=ld_alpha, precompute_ref_logps=True,
        f_divergence_type="reverse_kl", loss_types=[loss_type], loss_weights=[1.0], beta=beta,
        label_smoothing=label_smoothing, use_weighting=False, _total_train_tokens=0, _tp_size=1,
        _metrics={"train": defaultdict(list), "eval": defaultdict(list)},
    )  # fmt: skip
    inputs = {
        "input_ids": torch.zeros(2 * b, width, dtype=torch.long),
        "attention_mask": torch.ones(2 * b, width, dtype=torch.long),
        "completion_mask": completion_mask,
        "ref_chosen_logps": rc,
        "ref_rejected_logps": rr,
    }
    loss = trainer._compute_loss(model, inputs, return_outputs=False)
    return loss, trainer._metrics["eval"]


def _trl_dpo_per_example(loss_type, pc, pr, rc, rr, beta, **kwargs):
    """TRL returns a batch mean, so run it once per example: (losses, chosen_rewards, rejected_rewards)."""
    rows = []
    for i in range(pc.numel()):
        extra = {k: v[i : i + 1] for k, v in kwargs.items() if isinstance(v, torch.Tensor)}
        scalars = {k: v for k, v in kwargs.items() if not isinstance(v, torch.Tensor)}
        s = slice(i, i + 1)
        loss, metrics = _trl_dpo(loss_type, pc[s], pr[s], rc[s], rr[s], beta, **scalars, **extra)
        rows.append((loss.item(), metrics["rewards/chosen"][-1], metrics["rewards/rejected"][-1]))
    return tuple(torch.tensor(col, dtype=torch.float64) for col in zip(*rows, strict=True))


@pytest.mark.parametrize("beta", [0.1, 0.5])
def test_dpo_family_matches_trl_dpotrainer(beta):
    pc, pr, rc, rr = _random_logps(b=4, seed=1)
    for name in ["sigmoid", "hinge"]:
        ours = LOSSES[name](pc, pr, rc, rr, beta=beta)
        for mine, theirs in zip(ours, _trl_dpo_per_example(name, pc, pr, rc, rr, beta), strict=True):
            torch.testing.assert_close(mine, theirs, rtol=1e-12, atol=1e-12)
        batch_loss, _ = _trl_dpo(name, pc, pr, rc, rr, beta)
        torch.testing.assert_close(ours[0].mean(), batch_loss)
    # TRL's IPO divides each summed log-ratio by its completion length: our ipo_loss on averages.
    chosen_len, rejected_len = torch.tensor([3, 7, 1, 12]), torch.tensor([5, 2, 9, 12])
    theirs, _, _ = _trl_dpo_per_example(
        "ipo", pc, pr, rc, rr, beta, chosen_len=chosen_len, rejected_len=rejected_len
    )
    ours, _, _ = ipo_loss(pc / chosen_len, pr / rejected_len, rc / chosen_len, rr / rejected_len, beta=beta)
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-10)
    summed, _, _ = ipo_loss(pc, pr, rc, rr, beta=beta)  # the equation as printed differs
    assert not torch.allclose(summed, theirs)


def test_cdpo_matches_trl():
    pc, pr, rc, rr = _random_logps(b=4, seed=2)
    e, beta = 0.2, 0.1
    ours, _, _ = dpo_loss(pc, pr, rc, rr, beta=beta, label_smoothing=e)
    aot, _, _ = _trl_dpo_per_example("aot", pc, pr, rc, rr, beta, label_smoothing=e)
    torch.testing.assert_close(ours, aot, rtol=1e-12, atol=1e-12)
    cpo = object.__new__(CPOTrainer)
    vars(cpo).update(beta=beta, label_smoothing=e, loss_type="sigmoid", alpha=0.0, accelerator=_Accel())
    cpo_losses, _, _ = cpo.cpo_loss(pc - rc, pr - rr)
    torch.testing.assert_close(ours, cpo_losses)
    # Pitfall worth a test: TRL 1.16's "sigmoid" gives plain DPO whatever label_smoothing says.
    sigmoid_smoothed, _, _ = _trl_dpo_per_example("sigmoid", pc, pr, rc, rr, beta, label_smoothing=e)
    torch.testing.assert_close(sigmoid_smoothed, dpo_loss(pc, pr, rc, rr, beta=beta)[0])


def _with_forward(trainer, chosen, rejected, nll):
    """Replace concatenated_forward with one that returns our log-probs (no model needed)."""
    logits = torch.zeros(chosen.numel(), 2, 3, dtype=chosen.dtype)
    trainer.concatenated_forward = lambda model, batch: (chosen, rejected, logits, logits, nll)
    return trainer


def test_simpo_matches_trl_cpo():
    avg_w, avg_l = (x / 20 for x in _random_logps(b=5, seed=3)[:2])  # per-token averages
    beta, gamma = 2.0, 1.0
    ours = simpo_loss(avg_w, avg_l, beta=beta, gamma=gamma)
    cpo = object.__new__(CPOTrainer)
    vars(cpo).update(
        beta=beta, label_smoothing=0.0, loss_type="simpo", simpo_gamma=gamma, alpha=0.0, cpo_alpha=0.0,
        aux_loss_enabled=False, accelerator=_Accel(),
    )  # fmt: skip
    for mine, theirs in zip(ours, cpo.cpo_loss(avg_w, avg_l), strict=True):
        torch.testing.assert_close(mine, theirs)
    loss, metrics = _with_forward(cpo, avg_w, avg_l, torch.tensor(0.0)).get_batch_loss_metrics(None, {})
    torch.testing.assert_close(loss, ours[0].mean())
    assert metrics["rewards/chosen"] == pytest.approx(ours[1].mean().item())
    # simpo_gamma is gamma itself, not gamma / beta: the ratio gives a different loss.
    cpo.simpo_gamma = gamma / beta
    assert not torch.allclose(cpo.cpo_loss(avg_w, avg_l)[0], ours[0])


def test_orpo_matches_trl():
    # float32 because TRL's odds_ratio_loss casts its inputs with .float().
    avg_w = t(-0.05, -0.9, -2.5, -1e-6, -30.0, dtype=torch.float32)
    avg_l = t(-1.2, -0.3, -2.5, -4.0, -1e-6, dtype=torch.float32)
    lam = 0.25
    losses, log_odds_ratio = orpo_loss(avg_w, avg_l, lam=lam)
    orpo = object.__new__(ORPOTrainer)
    vars(orpo).update(beta=lam, aux_loss_enabled=False, accelerator=_Accel())
    trl_or_losses, _, _, mean_logsigmoid, mean_log_odds = orpo.odds_ratio_loss(avg_w, avg_l)
    torch.testing.assert_close(losses, -avg_w - trl_or_losses)  # TRL: nll - beta * logsigmoid
    torch.testing.assert_close(log_odds_ratio.mean(), mean_log_odds)
    torch.testing.assert_close(torch.nn.functional.logsigmoid(log_odds_ratio).mean(), mean_logsigmoid)
    # The full TRL loss with its SFT term set to our mean -avg_w.
    nll = -avg_w.mean()
    loss, metrics = _with_forward(orpo, avg_w, avg_l, nll).get_batch_loss_metrics(None, {})
    torch.testing.assert_close(loss, losses.mean())
    assert metrics["log_odds_chosen"] == pytest.approx(log_odds_ratio.mean().item())


def _trl_kto(policy, reference, desirable, kl_policy, kl_reference, beta, wd, wu):
    """Run KTOTrainer._compute_loss on one batch; return (mean loss, metrics)."""
    b, k = policy.numel(), kl_policy.numel()
    model = _ScriptedLM({0: policy[:, None], 1: kl_policy[:, None]})  # (B, 1), (K, 1): one token each
    trainer = object.__new__(KTOTrainer)
    vars(trainer).update(
        model=model, accelerator=_Accel(), calculate_KL=True, aux_loss_enabled=False,
        precompute_ref_logps=True, loss_type="kto", beta=beta, desirable_weight=wd,
        undesirable_weight=wu, _total_train_tokens=0, _tp_size=1,
        _metrics={"train": defaultdict(list), "eval": defaultdict(list)},
    )  # fmt: skip
    ones = lambda n: torch.ones(n, 2, dtype=torch.long)
    batch = {
        "label": desirable,
        "input_ids": 0 * ones(b), "attention_mask": ones(b), "completion_mask": ones(b),
        "KL_input_ids": ones(k), "KL_attention_mask": ones(k), "KL_completion_mask": ones(k),
        "ref_logps": reference, "ref_KL_logps": kl_reference,
    }  # fmt: skip
    loss = trainer._compute_loss(model, batch, return_outputs=False)
    return loss, trainer._metrics["eval"]


@pytest.mark.parametrize("kl_shift", [1.5, -4.0])  # a positive KL estimate, and one TRL clamps to 0
def test_kto_matches_trl_ktotrainer(kl_shift):
    policy, reference, kl_policy, kl_reference = _random_logps(b=6, seed=4)
    kl_policy = kl_reference + kl_shift + (kl_policy - kl_policy.mean()) / 10  # mean difference = kl_shift
    desirable = torch.tensor([True, False, False, True, True, False])
    beta, wd, wu = 0.1, 1.33, 1.0
    kl = (kl_policy - kl_reference).mean()
    losses, rewards = kto_loss(
        policy, reference, desirable, kl, beta=beta, desirable_weight=wd, undesirable_weight=wu
    )
    theirs = []
    for i in range(policy.numel()):
        s = slice(i, i + 1)
        loss, metrics = _trl_kto(policy[s], reference[s], desirable[s], kl_policy, kl_reference, beta, wd, wu)
        theirs.append(loss.item())
        side = "chosen" if desirable[i] else "rejected"
        assert metrics[f"rewards/{side}"][-1] == pytest.approx(rewards[i].item(), abs=1e-12)
    torch.testing.assert_close(losses, torch.tensor(theirs, dtype=torch.float64), rtol=1e-12, atol=1e-12)
    batch_loss, metrics = _trl_kto(policy, reference, desirable, kl_policy, kl_reference, beta, wd, wu)
    torch.testing.assert_close(losses.mean(), batch_loss)
    assert metrics["kl"][-1] == pytest.approx(max(kl_shift, 0.0))


# ------------------------------------------------------------------------------------------
# sigmoid_norm, LD-DPO, R-DPO: checked against TRL 1.16 where TRL has them
# ------------------------------------------------------------------------------------------
def test_sigmoid_norm_matches_trl_dpotrainer():
    # TRL's "sigmoid_norm" divides each summed log-ratio by its completion length; ours takes averages.
    pc, pr, rc, rr = _random_logps(b=4, seed=5)
    chosen_len, rejected_len = torch.tensor([3, 7, 1, 12]), torch.tensor([5, 2, 9, 12])
    theirs, _, _ = _trl_dpo_per_example(
        "sigmoid_norm", pc, pr, rc, rr, 0.5, chosen_len=chosen_len, rejected_len=rejected_len
    )
    ours, _, _ = sigmoid_norm_loss(
        pc / chosen_len, pr / rejected_len, rc / chosen_len, rr / rejected_len, beta=0.5
    )
    torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12)
    assert not torch.allclose(ours, dpo_loss(pc, pr, rc, rr, beta=0.5)[0])  # summed DPO differs


@pytest.mark.parametrize("ld_alpha", [0.0, 0.3, 1.0])
def test_ld_alpha_matches_trl_dpotrainer(ld_alpha):
    from dpo_course.logprobs import ld_weights, sequence_logps

    # Two pairs, right-padded: completions of 3 vs 5 tokens and 4 vs 2 tokens after a 2-token prompt.
    g = torch.Generator().manual_seed(6)
    logits = torch.randn(4, 8, 11, generator=g, dtype=torch.float64)  # (2B, T, V)
    ids = torch.randint(0, 11, (4, 8), generator=g)
    lengths = [3, 4, 5, 2]  # rows [chosen; rejected]
    mask = torch.tensor([[0, 0] + [1] * n + [0] * (6 - n) for n in lengths])  # (2B, T)
    token = torch.log_softmax(logits, -1)[:, :-1].gather(-1, ids[:, 1:, None]).squeeze(-1)  # (2B, T-1)
    per_token = token * mask[:, 1:]  # what TRL's model returns (0 off the completion)
    rc, rr = t(-4.0, -6.0), t(-7.0, -1.5)
    trl_loss, _ = _trl_dpo(
        "sigmoid", None, None, rc, rr, 0.1, ld_alpha=ld_alpha, per_token=per_token, completion_mask=mask
    )
    weights = ld_weights(mask, ld_alpha, torch.float64)
    logps = sequence_logps(logits, ids, mask, token_weights=weights)  # (2B,)
    ours, _, _ = dpo_loss(logps[:2], logps[2:], rc, rr, beta=0.1)
    torch.testing.assert_close(ours.mean(), trl_loss, rtol=1e-12, atol=1e-12)
    if ld_alpha == 1.0:  # no down-weighting: plain summed log-probs
        torch.testing.assert_close(logps, sequence_logps(logits, ids, mask))
    # The shorter answer of each pair keeps all its tokens; the longer one's extra tokens weigh ld_alpha.
    assert weights[:, 2:].tolist()[2] == [1, 1, 1, ld_alpha, ld_alpha, ld_alpha]


def test_rdpo_hand_values_and_trl_has_no_length_penalty():
    from trl import DPOConfig

    # h = 10, beta h = 1; |y_w| - |y_l| = 5 tokens, alpha 0.2: logit 1 - 1 = 0 -> log 2.
    args = (t(-5.0, -5.0), t(-15.0, -15.0), t(-10.0, -10.0), t(-10.0, -10.0))
    losses, chosen_rewards, _ = rdpo_loss(*args, t(8.0, 3.0), t(3.0, 3.0), beta=0.1, alpha=0.2)
    torch.testing.assert_close(losses, t(LOG2, SOFTPLUS_NEG1))  # equal lengths: plain DPO
    torch.testing.assert_close(chosen_rewards, t(0.5, 0.5))  # the penalty is not a reward
    torch.testing.assert_close(
        rdpo_loss(*args, t(8.0, 3.0), t(3.0, 3.0), beta=0.1, alpha=0.0)[0], dpo_loss(*args, beta=0.1)[0]
    )
    # The docstring's claim: TRL 1.16's DPOConfig has LD-DPO's ld_alpha but no R-DPO length penalty.
    fields = {f.name for f in __import__("dataclasses").fields(DPOConfig)}
    assert "ld_alpha" in fields and not any("length_penalty" in f or "rdpo" in f for f in fields)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda x: dpo_loss(x, x, x, x, beta=float("inf")), "beta"),
        (lambda x: hinge_loss(x, x, x, x, beta=float("nan")), "beta"),
        (lambda x: simpo_loss(x, x, gamma=float("nan")), "gamma"),
        (lambda x: simpo_loss(x, x, gamma=float("inf")), "gamma"),
        (lambda x: orpo_loss(x, x, lam=float("inf")), "lam"),
        (lambda x: kto_loss(x, x, x > -1, kl=0.0, desirable_weight=float("nan")), "desirable_weight"),
        (lambda x: rdpo_loss(x, x, x, x, x, x, alpha=float("nan")), "alpha"),
        # a log-prob above 0 handed to a length-normalised loss: an error naming it, not a clamp
        (lambda x: simpo_loss(x, -x), "policy_rejected_avg_logps"),
        (lambda x: orpo_loss(-x, x), "policy_chosen_avg_logps"),
        (lambda x: sigmoid_norm_loss(x, x, x, x.abs()), "reference_rejected_avg_logps"),
    ],
)
def test_non_finite_hyperparameters_and_positive_log_probs_raise_by_name(call, message):
    with pytest.raises(ValueError, match=message):
        call(t(-1.0, -2.0))

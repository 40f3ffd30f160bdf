"""Exercises of 02_dpo_loss_from_scratch: sequence log-probs, the DPO loss, the implicit reward.

Vocabulary as in `dpo_course.logprobs` and `dpo_course.losses`: ``policy_chosen_logps`` etc. are
summed log-probabilities of whole responses, shape (B,).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from dpo_course.exercises._ex02_step import _step, _step_inputs, _step_outcome
from dpo_course.exercises.framework import Case, Exercise, Mistake

# ------------------------------------------------------------------ q1: sequence log-probs


def _sequence_logps(
    logits: torch.Tensor, input_ids: torch.Tensor, completion_mask: torch.Tensor
) -> torch.Tensor:
    logps = torch.log_softmax(logits[:, :-1].float(), dim=-1)  # (B, T-1, V): position t-1 predicts token t
    token_logps = logps.gather(-1, input_ids[:, 1:].unsqueeze(-1)).squeeze(-1)  # (B, T-1)
    return (token_logps * completion_mask[:, 1:]).sum(-1)  # (B,)


def _token_logps_shifted(logits, input_ids):
    logps = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    return logps.gather(-1, input_ids[:, 1:].unsqueeze(-1)).squeeze(-1)  # (B, T-1)


def _mean(logits, input_ids, completion_mask):
    m = completion_mask[:, 1:]
    return (_token_logps_shifted(logits, input_ids) * m).sum(-1) / m.sum(-1).clamp(min=1)


def _no_shift(logits, input_ids, completion_mask):
    logps = torch.log_softmax(logits.float(), dim=-1)  # position t "predicts" token t: the model saw it
    return (logps.gather(-1, input_ids.unsqueeze(-1)).squeeze(-1) * completion_mask).sum(-1)


def _all_tokens(logits, input_ids, completion_mask):
    return _token_logps_shifted(logits, input_ids).sum(-1)


def _mask_not_shifted(logits, input_ids, completion_mask):
    return (_token_logps_shifted(logits, input_ids) * completion_mask[:, :-1]).sum(-1)


def _raw_logits(logits, input_ids, completion_mask):
    z = logits[:, :-1].float().gather(-1, input_ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    return (z * completion_mask[:, 1:]).sum(-1)


_G = torch.Generator().manual_seed(2)
_LOGITS = torch.randn(3, 7, 6, generator=_G) * 2  # (B, T, V)
_IDS = torch.randint(0, 6, (3, 7), generator=_G)
# row 0: prompt of 3, response of 4; row 1: prompt 2, response 3, 2 pads; row 2: prompt 4, response 2, 1 pad
_MASK = torch.tensor([[0, 0, 0, 1, 1, 1, 1], [0, 0, 1, 1, 1, 0, 0], [0, 0, 0, 0, 1, 1, 0]])
_LOGITS2 = torch.randn(2, 5, 4, generator=_G)
_IDS2 = torch.randint(0, 4, (2, 5), generator=_G)
_MASK2 = torch.tensor([[0, 1, 1, 1, 1], [0, 0, 0, 0, 1]])

q1 = Exercise(
    name="Exercise 2.1 (sequence log-probs)",
    prompt=(
        "Write sequence_logps(logits, input_ids, completion_mask): (B, T, V), (B, T), (B, T) -> (B,), the "
        "summed log-probability of each row's response tokens (completion_mask == 1)."
    ),
    reference=_sequence_logps,
    cases=[
        Case(
            (_LOGITS, _IDS, _MASK), label="three rows of different prompt and response lengths, with padding"
        ),
        Case((_LOGITS2, _IDS2, _MASK2), label="a one-token prompt; a one-token response"),
    ],
    hints=[
        "A causal LM's logits at position t-1 are its prediction of token t. Four steps: log-probabilities over "
        "the vocabulary, the one of the token that actually came next, response tokens only, a sum per row.",
        "Shift by one: logits[:, :-1] (all but the last position) line up with input_ids[:, 1:] and with "
        "completion_mask[:, 1:]. torch.log_softmax(..., dim=-1) gives log-probabilities; .gather(-1, ...) "
        "picks one entry per position (the index needs a trailing dimension of size 1).",
        "token_logps = log_softmax(logits[:, :-1]).gather(-1, input_ids[:, 1:].unsqueeze(-1)).squeeze(-1), "
        "shape (B, T-1); multiply by the shifted mask and sum over dim -1. Keep the gradient (no .detach()).",
    ],
    solution_code="""
import torch

def sequence_logps(logits, input_ids, completion_mask):
    logps = torch.log_softmax(logits[:, :-1].float(), dim=-1)            # (B, T-1, V): t-1 predicts t
    targets = input_ids[:, 1:].unsqueeze(-1)                             # (B, T-1, 1)
    token_logps = logps.gather(-1, targets).squeeze(-1)                  # (B, T-1)
    return (token_logps * completion_mask[:, 1:]).sum(-1)                # (B,)
""",
    answer_name="sequence_logps",
    needs_grad=True,
    mistakes=[
        Mistake(
            "mean",
            _mean,
            "You averaged over the response tokens. DPO (the paper, TRL's 'sigmoid' loss) SUMS them: "
            "log pi(y|x) is the sum of the token log-probs. The mean is a different objective (SimPO, ORPO).",
        ),
        Mistake(
            "no shift",
            _no_shift,
            "You scored token t with the logits at position t, which already saw token t. Shift by one: "
            "logits[:, :-1] predict input_ids[:, 1:], and the mask is completion_mask[:, 1:].",
        ),
        Mistake(
            "prompt counted",
            _all_tokens,
            "You summed over every token, prompt and padding included. Multiply the token log-probs by the "
            "shifted completion mask, completion_mask[:, 1:], so only response tokens count.",
        ),
        Mistake(
            "mask not shifted",
            _mask_not_shifted,
            "You shifted the ids but not the mask: with completion_mask[:, :-1] you score the last prompt token "
            "and drop the last response token. The mask must line up with input_ids[:, 1:]: completion_mask[:, 1:].",
        ),
        Mistake(
            "detached",
            lambda logits, ids, mask: _sequence_logps(logits, ids, mask).detach(),
            "Right numbers, but no gradient: section 6 trains the model through these log-probs. Drop .detach() "
            "(and torch.no_grad(), .item(), torch.tensor(...) of results).",
        ),
        Mistake(
            "raw logits",
            _raw_logits,
            "You summed raw logits. A log-probability needs the log-softmax over the vocabulary first "
            "(logit minus logsumexp of the row).",
        ),
    ],
)

# ------------------------------------------------------------------ q2: the DPO loss


def _margin(pc, pr, rc, rr):
    return (pc - rc) - (pr - rr)  # (B,) log-ratio margin h


def _dpo_loss(
    policy_chosen_logps, policy_rejected_logps, reference_chosen_logps, reference_rejected_logps, beta
):
    h = _margin(policy_chosen_logps, policy_rejected_logps, reference_chosen_logps, reference_rejected_logps)
    return -F.logsigmoid(beta * h)  # (B,)


_G2 = torch.Generator().manual_seed(3)
_PC, _PR, _RC, _RR = (-(torch.rand(4, generator=_G2, dtype=torch.float64) * 20 + 2) for _ in range(4))
# float32, as a model's summed log-probs are: pair 0 has h = (-450 + 40) - (-30 + 20) = -400, beta * h = -200
_FAR = tuple(
    torch.tensor(v, dtype=torch.float32)
    for v in ([-450.0, -12.0], [-30.0, -15.0], [-40.0, -13.0], [-20.0, -14.0])
)
_FAR = (*_FAR, 0.5)

q2 = Exercise(
    name="Exercise 2.2 (the DPO loss)",
    prompt=(
        "Write dpo_loss(policy_chosen_logps, policy_rejected_logps, reference_chosen_logps, "
        "reference_rejected_logps, beta): the per-example DPO losses, shape (B,) (the caller takes the mean)."
    ),
    reference=_dpo_loss,
    cases=[
        Case((_PC, _PR, _RC, _RR, 0.1), label="four pairs, beta = 0.1"),
        Case((_PC, _PR, _RC, _RR, 0.5), label="the same pairs, beta = 0.5"),
        Case((_RC, _RR, _RC, _RR, 0.1), label="policy == reference (every loss should be log 2)"),
        Case(_FAR, label="float32, pair 1 far on the wrong side: beta * h = -200 (the loss is 200, not inf)"),
    ],
    hints=[
        "Per pair, the log-ratio margin is h = (log pi(y_w) - log pi_ref(y_w)) - (log pi(y_l) - log pi_ref(y_l)). "
        "The loss is the negative log-likelihood of 'y_w wins' under Bradley-Terry, with rewards beta * log-ratio.",
        "So the loss is -log sigmoid(beta * h), one number per pair (no mean). Compute it with "
        "torch.nn.functional.logsigmoid: log(sigmoid(x)) underflows to log(0) = -inf in float32 once x < -104.",
        "Two log-ratios (policy minus reference, for chosen and for rejected), their difference times beta, "
        "then minus F.logsigmoid of that. Keep the gradient: the training step backpropagates through it.",
    ],
    solution_code="""
import torch.nn.functional as F

def dpo_loss(policy_chosen_logps, policy_rejected_logps, reference_chosen_logps, reference_rejected_logps, beta):
    chosen_logratios = policy_chosen_logps - reference_chosen_logps        # (B,)
    rejected_logratios = policy_rejected_logps - reference_rejected_logps  # (B,)
    return -F.logsigmoid(beta * (chosen_logratios - rejected_logratios))   # (B,)
""",
    answer_name="dpo_loss",
    needs_grad=True,
    mistakes=[
        Mistake(
            "margin flipped",
            lambda pc, pr, rc, rr, beta: -F.logsigmoid(-beta * _margin(pc, pr, rc, rr)),
            "The sign of the margin is flipped: this loss rewards the REJECTED response. The argument of the "
            "sigmoid is beta * (chosen log-ratio - rejected log-ratio).",
        ),
        Mistake(
            "beta twice",
            lambda pc, pr, rc, rr, beta: -F.logsigmoid(beta * beta * _margin(pc, pr, rc, rr)),
            "beta is applied twice (beta**2). If you built the implicit rewards beta * log-ratio, their "
            "difference already carries beta: do not multiply by beta again.",
        ),
        Mistake(
            "no reference",
            lambda pc, pr, rc, rr, beta: -F.logsigmoid(beta * (pc - pr)),
            "You left out the reference model: the margin is between log-RATIOS, "
            "(pc - rc) - (pr - rr), not between the policy's log-probs. Without the reference a policy that "
            "already prefers y_w gets no credit for it, and nothing holds it near pi_ref.",
        ),
        Mistake(
            "batch mean",
            lambda pc, pr, rc, rr, beta: -F.logsigmoid(beta * _margin(pc, pr, rc, rr)).mean(),
            "You returned the batch mean, a scalar. This exercise asks for the per-example losses, shape (B,); "
            "the training loop takes the mean.",
        ),
        Mistake(
            "log of sigmoid",
            lambda pc, pr, rc, rr, beta: -torch.log(torch.sigmoid(beta * _margin(pc, pr, rc, rr))),
            "torch.log(torch.sigmoid(x)) is the right formula but not the right computation: in float32 "
            "sigmoid(-200) rounds to 0 and log(0) = -inf, so one badly wrong pair makes the loss inf and the "
            "gradient NaN. F.logsigmoid(x) computes the same value stably (and so does -F.softplus(-x)).",
        ),
        Mistake(
            "detached",
            lambda pc, pr, rc, rr, beta: _dpo_loss(pc, pr, rc, rr, beta).detach(),
            "Right numbers, but no gradient: the training step calls .backward() on this loss. Drop .detach() "
            "(and .item(), torch.tensor(...) of results, torch.no_grad()).",
        ),
        Mistake(
            "missing minus",
            lambda pc, pr, rc, rr, beta: F.logsigmoid(beta * _margin(pc, pr, rc, rr)),
            "That is the log-likelihood, which is <= 0. A loss to minimise is its negative: -logsigmoid(...).",
        ),
    ],
)

# ------------------------------------------------------------------ q3: the implicit reward


def _implicit_reward(policy_logps: torch.Tensor, reference_logps: torch.Tensor, beta: float) -> torch.Tensor:
    return beta * (policy_logps - reference_logps)


_G3 = torch.Generator().manual_seed(4)
_P3, _R3 = (-(torch.rand(5, generator=_G3, dtype=torch.float64) * 30 + 1) for _ in range(2))

q3 = Exercise(
    name="Exercise 2.3 (the implicit reward)",
    prompt=(
        "Write implicit_reward(policy_logps, reference_logps, beta): DPO's implicit reward of each response, "
        "shape (B,)."
    ),
    reference=_implicit_reward,
    cases=[
        Case((_P3, _R3, 0.1), label="five responses, beta = 0.1"),
        Case((_P3, _R3, 2.0), label="the same responses, beta = 2.0"),
    ],
    hints=[
        "Notebook 01, step 4: solve pi*(y|x) = pi_ref(y|x) exp(r(x,y)/beta) / Z(x) for r.",
        "Taking logs gives r = beta log(pi/pi_ref) + beta log Z(x). Drop beta log Z(x): it is the same for "
        "every response to x, so it cancels in any comparison of two answers to the same prompt.",
        "With summed log-probs, log(pi/pi_ref) is a difference of the two arguments; scale it by beta.",
    ],
    solution_code="""
def implicit_reward(policy_logps, reference_logps, beta):
    return beta * (policy_logps - reference_logps)
""",
    answer_name="implicit_reward",
    mistakes=[
        Mistake(
            "no beta",
            lambda p, r, beta: p - r,
            "That is the log-ratio alone. The implicit reward is beta times it: r = beta log(pi/pi_ref).",
        ),
        Mistake(
            "flipped",
            lambda p, r, beta: beta * (r - p),
            "The sign is flipped: a response the policy now makes MORE likely than the reference did must get a "
            "positive reward, so it is policy minus reference.",
        ),
        Mistake(
            "divided by beta",
            lambda p, r, beta: (p - r) / beta,
            "You divided by beta. From log(pi/pi_ref) = r/beta - log Z, the reward is beta * log(pi/pi_ref) "
            "(+ a per-prompt constant).",
        ),
    ],
)

# ------------------------------------------------------------------ q4: a whole DPO training step


def _dpo_train_step(policy, reference, batch, optimizer, beta):
    return _step(policy, reference, batch, optimizer, beta)


def _frozen(*values):
    return tuple(torch.tensor(v, dtype=torch.float64) for v in values)


q4 = Exercise(
    name="Exercise 2.4 (a whole DPO training step)",
    prompt=(
        "Write dpo_train_step(policy, reference, batch, optimizer, beta) -> the loss before the step (0-d tensor). "
        "batch holds input_ids, attention_mask, completion_mask, shape (2B, T), rows [chosen; rejected]. Score "
        "both models, take the mean DPO loss over the B pairs, and take one optimizer step on the policy. It is "
        "checked on a tiny fixed model with plain SGD against frozen log-probs after the step."
    ),
    reference=_dpo_train_step,
    cases=[
        Case(
            make=lambda: _step_inputs(0.5, 1.0),
            label="a tiny fixed model, 2 pairs, beta = 0.5, SGD lr = 1.0 (compared: your returned loss, then the "
            "policy's log pi(chosen) and log pi(rejected) after your step)",
            # frozen (loss, chosen log-probs after, rejected log-probs after); the step lifts chosen, sinks rejected
            expected=_frozen(1.0535679, [-5.9654627, -2.7104428], [-42.134956, -8.1092558]),
        ),
        Case(
            make=lambda: _step_inputs(0.1, 3.0),
            label="the same model, beta = 0.1, SGD lr = 3.0",
            expected=_frozen(0.7511161, [-7.6970944, -2.7570801], [-21.056641, -8.1510019]),
        ),
    ],
    outcome=_step_outcome,
    hints=[
        "Four parts, in this order: the reference's scores (no gradient: it is frozen), the policy's scores "
        "(with gradient), the loss, then the update (clear old gradients, backpropagate, step).",
        "Scores are summed log-probs of each row, sequence_logps(model(input_ids=..., attention_mask=...).logits, "
        "input_ids, completion_mask), shape (2B,): rows [:B] are chosen, [B:] rejected. The loss is the MEAN of "
        "dpo_loss over the B pairs, and optimizer.zero_grad() must come before loss.backward().",
        "with torch.no_grad(): ref = scores(reference); pol = scores(policy); loss = dpo_loss(pol[:B], pol[B:], "
        "ref[:B], ref[B:], beta).mean(); then zero_grad, backward, step; return loss.detach().",
    ],
    solution_code="""
import torch
from dpo_course.logprobs import sequence_logps
from dpo_course.losses import dpo_loss

def dpo_train_step(policy, reference, batch, optimizer, beta):
    ids, mask = batch["input_ids"], batch["completion_mask"]
    B = ids.shape[0] // 2                                           # rows [chosen; rejected]

    def scores(net):                                                # (2B,) summed log-probs
        return sequence_logps(net(input_ids=ids, attention_mask=batch["attention_mask"]).logits, ids, mask)

    with torch.no_grad():
        ref = scores(reference)                                     # frozen: no graph
    pol = scores(policy)
    losses, _, _ = dpo_loss(pol[:B], pol[B:], ref[:B], ref[B:], beta=beta)   # (B,)
    loss = losses.mean()
    optimizer.zero_grad()                                           # drop the previous step's gradient
    loss.backward()
    optimizer.step()
    return loss.detach()
""",
    answer_name="dpo_train_step",
    mistakes=[
        Mistake(
            "no zero_grad",
            lambda *a: _step(*a, zero=False),
            "The weights moved too far: gradients ACCUMULATE in .grad across backward() calls, and the policy "
            "still held the previous step's gradient. Call optimizer.zero_grad() before loss.backward().",
        ),
        Mistake(
            "summed over pairs",
            lambda *a: _step(*a, combine="sum"),
            "You summed the per-pair losses: the step is B times too big (the checker uses plain SGD, where that "
            "shows; Adam would hide most of it) and the learning rate would depend on the batch size. Take the mean.",
        ),
        Mistake(
            "no step",
            lambda *a: _step(*a, step=False),
            "The loss is right but the policy did not change: call optimizer.step() after loss.backward().",
        ),
        Mistake(
            "halves swapped",
            lambda *a: _step(*a, swap=True),
            "You treated rows [:B] as rejected and [B:] as chosen: the step pushed the wrong way. The collator "
            "stacks [chosen; rejected], so chosen is the first half.",
        ),
        Mistake(
            "policy as reference",
            lambda *a: _step(*a, ref_is_policy=True),
            "Your loss is log 2 = 0.6931: the reference log-probs came from the policy itself, so every margin h "
            "is 0. The reference is the frozen `reference` model, scored without gradient.",
        ),
        Mistake(
            "averaged log-probs",
            lambda *a: _step(*a, average=True),
            "You averaged token log-probs per response. DPO sums them (sequence_logps with the default "
            "average=False); the mean is another loss (see the sum-or-mean section).",
        ),
        Mistake(
            "loss after the step",
            lambda *a: _step(*a, loss_after=True),
            "The weights moved correctly, but you returned the loss recomputed after the step. Return the loss "
            "you backpropagated (before the step): it is what a training log records for this step.",
        ),
    ],
)

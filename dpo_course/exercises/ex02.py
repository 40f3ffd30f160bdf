"""Exercises of 02_dpo_loss_from_scratch: sequence log-probs, the DPO loss, the implicit reward.

Vocabulary as in `dpo_course.logprobs` and `dpo_course.losses`: ``policy_chosen_logps`` etc. are
summed log-probabilities of whole responses, shape (B,).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

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
        "A causal LM's logits at position t-1 are its prediction of token t. Take log_softmax over the "
        "vocabulary, pick the log-prob of the token that actually came next, keep response tokens only, sum.",
        "logps = logits[:, :-1].log_softmax(-1); token_logps = logps.gather(-1, input_ids[:, 1:, None])[..., 0]; "
        "return (token_logps * completion_mask[:, 1:]).sum(-1). Shift the ids AND the mask by one.",
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
    ],
    hints=[
        "Per pair: h = (log pi(y_w) - log pi_ref(y_w)) - (log pi(y_l) - log pi_ref(y_l)), and the loss is the "
        "negative log-likelihood of 'y_w wins' under Bradley-Terry with rewards beta * log-ratio.",
        "return -torch.nn.functional.logsigmoid(beta * ((policy_chosen_logps - reference_chosen_logps) - "
        "(policy_rejected_logps - reference_rejected_logps)))  # use logsigmoid, not log(sigmoid(...))",
    ],
    solution_code="""
import torch.nn.functional as F

def dpo_loss(policy_chosen_logps, policy_rejected_logps, reference_chosen_logps, reference_rejected_logps, beta):
    chosen_logratios = policy_chosen_logps - reference_chosen_logps        # (B,)
    rejected_logratios = policy_rejected_logps - reference_rejected_logps  # (B,)
    return -F.logsigmoid(beta * (chosen_logratios - rejected_logratios))   # (B,)
""",
    answer_name="dpo_loss",
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
        "Solve pi*(y|x) = pi_ref(y|x) exp(r(x,y)/beta) / Z(x) for r and drop beta log Z(x), which is the same "
        "for every response to x.",
        "return beta * (policy_logps - reference_logps)",
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

"""Exercises of 08_dpo_vs_online_rl: GRPO's group advantages (8.1), its loss normalisations (8.2), RLOO's
leave-one-out advantages (8.3).

8.1 and 8.2 are checked against TRL 1.16's `GRPOTrainer` (`_generate_and_score_completions` for the
advantages, `_compute_loss` for the normalisations), 8.3 against its `RLOOTrainer`
(`_generate_and_score_completions`, `normalize_advantages=False`), on one process, no gradient accumulation.
"""

from __future__ import annotations

import torch

from dpo_course.exercises.framework import WRONG, Case, Exercise, Mistake, Result

# ------------------------------------------------------------------ q1: group advantages


def _group_advantages(rewards: torch.Tensor, num_generations: int) -> torch.Tensor:
    grouped = rewards.view(-1, num_generations)  # (prompts, G): the answers to one prompt are adjacent
    mean = grouped.mean(dim=1, keepdim=True)
    std = grouped.std(dim=1, keepdim=True)  # Bessel-corrected, as TRL's nanstd
    return ((grouped - mean) / (std + 1e-4)).view(-1)


def _population_std(rewards, num_generations):
    grouped = rewards.view(-1, num_generations)
    mean, std = grouped.mean(1, keepdim=True), grouped.std(1, keepdim=True, unbiased=False)
    return ((grouped - mean) / (std + 1e-4)).view(-1)


def _batch_baseline(rewards, num_generations):
    std = (
        rewards.view(-1, num_generations).std(1, keepdim=True).repeat_interleave(num_generations, 0).view(-1)
    )
    return (rewards - rewards.mean()) / (std + 1e-4)


def _not_scaled(rewards, num_generations):
    grouped = rewards.view(-1, num_generations)
    return (grouped - grouped.mean(1, keepdim=True)).view(-1)


def _no_epsilon(rewards, num_generations):
    grouped = rewards.view(-1, num_generations)
    return ((grouped - grouped.mean(1, keepdim=True)) / grouped.std(1, keepdim=True)).view(-1)


def _interleaved(rewards, num_generations):
    grouped = rewards.view(num_generations, -1)  # groups read down the columns: the wrong answers grouped
    mean, std = grouped.mean(0, keepdim=True), grouped.std(0, keepdim=True)
    return ((grouped - mean) / (std + 1e-4)).reshape(-1)


_NO_EPSILON_HINT = (
    "A group whose rewards all tie has std 0, and 0 / 0 is NaN: one such group poisons the whole batch's "
    "loss. TRL divides by std + 1e-4, so a tied group gets advantage 0 for every answer: no signal, no NaN."
)


class _AdvantageExercise(Exercise):
    """A NaN anywhere is the tied group divided by a zero std: say so, whatever else is wrong."""

    def _compare(self, got, expected, case: Case, label: str) -> Result | None:
        if isinstance(got, torch.Tensor) and torch.isnan(got.detach().double()).any():
            return Result(WRONG, f"wrong on {label}: your advantages contain NaN.\n   💡 {_NO_EPSILON_HINT}")
        return super()._compare(got, expected, case, label)


q1 = _AdvantageExercise(
    name="Exercise 8.1 (GRPO's group advantages)",
    prompt=(
        "Write group_advantages(rewards, num_generations) -> tensor (N,). rewards (N,) holds the rewards of "
        "N = prompts x num_generations answers, the answers to one prompt adjacent. Each answer's advantage "
        "is its reward minus its group's mean, divided by the group's standard deviation (Bessel-corrected, "
        "as torch.std) plus 1e-4, as TRL 1.16's GRPOTrainer computes it by default (scale_rewards='group')."
    ),
    reference=_group_advantages,
    cases=[
        Case(
            (torch.tensor([1.0, 1.0, 1.0, 1.0, 0.0, 1.0, 0.0, -1.0]), 4),
            label="a group whose 4 rewards all tie, then a mixed one",
        ),
        Case((torch.tensor([1.0, 0.0, 0.0, 1.0, -1.0, -1.0, 0.0, 1.0]), 4), label="2 prompts x 4 answers"),
        Case(
            (torch.tensor([1.0, -1.0, 0.5, 0.5, 0.0, 1.0]), 2),
            label="3 prompts x 2 answers, the middle pair tied",
        ),
    ],
    hints=[
        "Reshape to (prompts, num_generations) with rewards.view(-1, num_generations): row i is prompt i's group. "
        "The baseline of an answer is the mean of its own row, not of the batch.",
        "Then (grouped - grouped.mean(1, keepdim=True)) / (grouped.std(1, keepdim=True) + 1e-4), flattened back with "
        ".view(-1). Check the tied group: every advantage there is exactly 0.",
    ],
    solution_code="""
def group_advantages(rewards, num_generations):
    grouped = rewards.view(-1, num_generations)            # (prompts, G)
    mean = grouped.mean(dim=1, keepdim=True)               # the group's own baseline: no value network
    std = grouped.std(dim=1, keepdim=True)                 # 0 for a group whose rewards all tie
    return ((grouped - mean) / (std + 1e-4)).view(-1)      # tied group -> 0 / 1e-4 = 0, not NaN
""",
    answer_name="group_advantages",
    mistakes=[
        Mistake(
            "no epsilon",
            _no_epsilon,
            _NO_EPSILON_HINT,
        ),
        Mistake(
            "population std",
            _population_std,
            "Close: you divided by the population std (unbiased=False). TRL's nanstd applies Bessel's correction "
            "(divides by G - 1), like torch.std's default.",
        ),
        Mistake(
            "batch baseline",
            _batch_baseline,
            "You subtracted the mean of the whole batch. GRPO's baseline is the mean of the answers to the SAME "
            "prompt: an easy prompt's answers should not all look good because the prompt was easy.",
        ),
        Mistake(
            "not scaled",
            _not_scaled,
            "You left out the division by the group's std. That is Dr. GRPO's choice (TRL's scale_rewards='none'), "
            "not TRL's default, which divides by std + 1e-4.",
        ),
        Mistake(
            "groups interleaved",
            _interleaved,
            "Your groups mix prompts: view(num_generations, -1) reads the answers down the columns. The answers "
            "to one prompt are adjacent, so use view(-1, num_generations) and reduce over dim 1.",
        ),
    ],
)

# ------------------------------------------------------------------ q2: the loss normalisations


def _aggregate(per_token_loss, mask, loss_type, max_completion_length):
    mask = mask.to(per_token_loss.dtype)
    if loss_type == "grpo":  # DeepSeekMath's 1/|o_i|: a mean per sequence, then over sequences
        return ((per_token_loss * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).mean()
    if loss_type == "dapo":  # every token of the batch weighs the same
        return (per_token_loss * mask).sum() / mask.sum().clamp(min=1.0)
    if loss_type == "dr_grpo":  # a constant: batch size x max_completion_length
        return (per_token_loss * mask).sum() / (per_token_loss.size(0) * max_completion_length)
    raise ValueError(f"loss_type must be 'grpo', 'dapo' or 'dr_grpo', got {loss_type!r}")


def _swapped(per_token_loss, mask, loss_type, max_completion_length):
    swap = {"grpo": "dapo", "dapo": "grpo"}.get(loss_type, loss_type)
    return _aggregate(per_token_loss, mask, swap, max_completion_length)


def _unmasked(per_token_loss, mask, loss_type, max_completion_length):
    return _aggregate(per_token_loss, torch.ones_like(mask), loss_type, max_completion_length)


def _dr_grpo_by_tokens(per_token_loss, mask, loss_type, max_completion_length):
    if loss_type == "dr_grpo":
        return (per_token_loss * mask).sum() / mask.sum()
    return _aggregate(per_token_loss, mask, loss_type, max_completion_length)


_LOSS = torch.tensor([[0.5, -1.0, 2.0, 0.0], [1.0, 1.0, 0.0, 0.0], [-2.0, 0.5, 0.5, 0.5]])
_MASK = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0], [1, 1, 1, 1]])

q2 = Exercise(
    name="Exercise 8.2 (GRPO's loss normalisations)",
    prompt=(
        "Write aggregate(per_token_loss, mask, loss_type, max_completion_length) -> scalar tensor. per_token_loss "
        "and mask are (B, T); mask is 1 on completion tokens. loss_type 'grpo': average each sequence over its "
        "own tokens, then average the sequences (DeepSeekMath's 1/|o_i|); 'dapo' (TRL 1.16's default): sum over "
        "every token of the batch, divided by the number of tokens; 'dr_grpo': the sum divided by the constant "
        "B * max_completion_length."
    ),
    reference=_aggregate,
    cases=[
        Case((_LOSS, _MASK, "grpo", 4), label="3 completions of 3, 2 and 4 tokens, loss_type='grpo'"),
        Case((_LOSS, _MASK, "dapo", 4), label="the same, loss_type='dapo'"),
        Case((_LOSS, _MASK, "dr_grpo", 4), label="the same, loss_type='dr_grpo', max_completion_length=4"),
    ],
    hints=[
        "Multiply by the mask first, so padding never counts. The three differ only in what they divide by: "
        "each sequence's own length, the batch's token count, or a constant.",
        "grpo: ((l * m).sum(-1) / m.sum(-1)).mean(); dapo: (l * m).sum() / m.sum(); "
        "dr_grpo: (l * m).sum() / (B * max_completion_length).",
    ],
    solution_code="""
def aggregate(per_token_loss, mask, loss_type, max_completion_length):
    mask = mask.to(per_token_loss.dtype)
    total = per_token_loss * mask                                   # padding never counts
    if loss_type == "grpo":                                         # a mean per sequence, then over sequences
        return (total.sum(-1) / mask.sum(-1).clamp(min=1.0)).mean()
    if loss_type == "dapo":                                         # every token of the batch weighs the same
        return total.sum() / mask.sum().clamp(min=1.0)
    if loss_type == "dr_grpo":                                      # a constant: no length in the denominator
        return total.sum() / (per_token_loss.size(0) * max_completion_length)
    raise ValueError(loss_type)
""",
    answer_name="aggregate",
    mistakes=[
        Mistake(
            "grpo and dapo swapped",
            _swapped,
            "'grpo' is the per-sequence mean (each completion weighs the same, so a long one's tokens weigh less); "
            "'dapo' is the token mean over the whole batch (each token weighs the same). You have them the other "
            "way round.",
        ),
        Mistake(
            "mask ignored",
            _unmasked,
            "Multiply by the mask before summing and count only masked tokens: padding is not part of any completion.",
        ),
        Mistake(
            "dr_grpo by tokens",
            _dr_grpo_by_tokens,
            "Dr. GRPO divides by a constant, B * max_completion_length, precisely so that the denominator does not "
            "depend on how long the completions are. Dividing by the token count is 'dapo'.",
        ),
    ],
)

# ------------------------------------------------------------------ q3: RLOO's leave-one-out advantages


def _rloo_advantages(rewards: torch.Tensor, num_generations: int) -> torch.Tensor:
    grouped = rewards.view(-1, num_generations)  # (prompts, k)
    others = (grouped.sum(dim=1, keepdim=True) - grouped) / (num_generations - 1)  # mean of the other k - 1
    return (grouped - others).view(-1)


def _self_included(rewards, num_generations):
    grouped = rewards.view(-1, num_generations)
    return (grouped - grouped.mean(1, keepdim=True)).view(-1)


def _rloo_divided_by_std(rewards, num_generations):
    grouped = rewards.view(-1, num_generations)
    return (
        _rloo_advantages(rewards, num_generations).view_as(grouped) / (grouped.std(1, keepdim=True) + 1e-4)
    ).view(-1)


def _rloo_divided_by_k(rewards, num_generations):
    grouped = rewards.view(-1, num_generations)
    return (grouped - (grouped.sum(1, keepdim=True) - grouped) / num_generations).view(-1)


def _rloo_interleaved(rewards, num_generations):
    grouped = rewards.view(num_generations, -1)  # groups read down the columns: prompts mixed
    return (grouped - (grouped.sum(0, keepdim=True) - grouped) / (num_generations - 1)).reshape(-1)


q3 = Exercise(
    name="Exercise 8.3 (RLOO's leave-one-out advantages)",
    prompt=(
        "Write rloo_advantages(rewards, num_generations) -> tensor (N,). rewards (N,) holds the rewards of "
        "N = prompts x k answers (k = num_generations), the answers to one prompt adjacent. Each answer's "
        "advantage is its reward minus the mean reward of the OTHER k - 1 answers to the same prompt, with no "
        "division by a standard deviation, as TRL 1.16's RLOOTrainer computes it by default "
        "(normalize_advantages=False)."
    ),
    reference=_rloo_advantages,
    cases=[
        Case(
            (torch.tensor([1.0, 1.0, 1.0, 1.0, 0.0, 1.0, 0.0, -1.0]), 4),
            label="a group whose 4 rewards all tie, then a mixed one",
        ),
        Case(
            (torch.tensor([0.1, 0.2, 0.0, 0.3, 1.0, -1.0, 0.0, 0.5]), 4),
            label="2 prompts x 4 answers, small rewards",
        ),
        Case(
            (torch.tensor([1.0, -1.0, 0.5, 0.5, 0.0, 1.0]), 2),
            label="3 prompts x 2 answers, the middle pair tied",
        ),
    ],
    hints=[
        "Reshape to (prompts, k) with rewards.view(-1, num_generations). The baseline of answer i is the mean of the "
        "other k - 1 answers in its row: its own reward must not be in it (that keeps the estimate unbiased).",
        "The row sum minus the answer's own reward is the sum of the others: "
        "(grouped.sum(1, keepdim=True) - grouped) / (k - 1). Subtract that from grouped and flatten with .view(-1); "
        "no std anywhere. Check: a tied group gets 0, and the result is k / (k - 1) times (r - group mean).",
    ],
    solution_code="""
def rloo_advantages(rewards, num_generations):
    grouped = rewards.view(-1, num_generations)                                        # (prompts, k)
    others = (grouped.sum(dim=1, keepdim=True) - grouped) / (num_generations - 1)      # the other k - 1 answers
    return (grouped - others).view(-1)                                                 # no std: the reward's own scale
""",
    answer_name="rloo_advantages",
    mistakes=[
        Mistake(
            "self in the baseline",
            _self_included,
            "Your baseline is the mean of the whole group, the answer itself included: that is GRPO's numerator, "
            "k / (k - 1) times too small, and the baseline then depends on the very sample it is scoring. Leave the "
            "answer out: (group sum - r_i) / (k - 1).",
        ),
        Mistake(
            "divided by std",
            _rloo_divided_by_std,
            "You divided by the group's standard deviation. That is GRPO's scaling; RLOO (and TRL's RLOOTrainer with "
            "its default normalize_advantages=False) keeps the reward's own scale.",
        ),
        Mistake(
            "divided by k",
            _rloo_divided_by_k,
            "The sum of the OTHER answers has k - 1 terms: divide it by num_generations - 1, not num_generations.",
        ),
        Mistake(
            "groups interleaved",
            _rloo_interleaved,
            "Your groups mix prompts: view(num_generations, -1) reads the answers down the columns. The answers to one "
            "prompt are adjacent, so use view(-1, num_generations) and sum over dim 1.",
        ),
    ],
)

"""Exercises of 00_welcome: a warm-up that shows how checks, hints and solutions work."""

from __future__ import annotations

from dpo_course.exercises.framework import Case, Exercise, Mistake
from dpo_course.toyworld import reward


def _mean_reward(prompts, responses):
    return sum(reward(p, r) for p, r in zip(prompts, responses)) / len(prompts)


_P = [
    "What is the capital of France?",
    "What is 7 plus 5?",
    "Name the capital of Peru.",
    "Compute 9 times 3.",
]
_R = [
    "The capital of France is Paris.",
    "7 plus 5 is 13.",
    "I don't know, look it up.",
    "Let me see. We start with 9 and multiply by 3. So 9 times 3 is 27.",
]

_P3 = ["What is the capital of France?", "Compute 9 times 3.", "Name the capital of Peru."]
_R3 = [
    "The capital of France is Paris.",
    "Let me see. 9 times 3 is 27.",
    "The capital of Peru is Lima, a city on the coast.",
]

q1 = Exercise(
    name="Exercise 0.1 (mean reward)",
    prompt="Write mean_reward(prompts, responses): the average ground-truth reward of the responses.",
    reference=_mean_reward,
    cases=[
        Case((_P, _R), label="four answers, one of each style"),
        Case((_P[:1], _R[:1]), label="one answer"),
        Case((_P3, _R3), label="three correct answers, two of them wordy"),
        Case((_P3 + _P[1:3], _R3 + _R[1:3]), label="five answers"),
    ],
    hints=[
        "toyworld.reward(prompt, response) scores ONE answer to one prompt. You need it for every "
        "(prompt, response) pair, then the average of those numbers.",
        "zip(prompts, responses) walks the two lists side by side. The average is the total divided by how many "
        "answers there are; keep every digit (no rounding, no integer division).",
        "sum(reward(p, r) for p, r in zip(prompts, responses)) divided by the number of prompts.",
    ],
    solution_code="""
from dpo_course.toyworld import reward

def mean_reward(prompts, responses):
    return sum(reward(p, r) for p, r in zip(prompts, responses)) / len(prompts)
""",
    answer_name="mean_reward",
    mistakes=[
        Mistake(
            "sum",
            lambda ps, rs: sum(reward(p, r) for p, r in zip(ps, rs)),
            "That is the sum: divide by the number of responses.",
        ),
        Mistake(
            "accuracy",
            lambda ps, rs: sum(reward(p, r) > 0 for p, r in zip(ps, rs)) / len(ps),
            "That counts correct answers. The reward also grades concision and refusals: average the reward itself.",
        ),
        Mistake(
            "rounded",
            lambda ps, rs: round(_mean_reward(ps, rs), 2),
            "Close, but rounded: a checker (and a later notebook) compares the full number. Return the mean "
            'unrounded and round only when you print it (f"{x:.2f}").',
        ),
    ],
)

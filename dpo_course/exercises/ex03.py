"""Exercises of 03_training_with_trl: a `DPOConfig` set on purpose, reading the logged metrics, a KL estimate.

q1 is checked field by field on the config object the learner's function returns (`FieldsExercise`),
so a wrong answer names the field, what it should be and why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from dpo_course.exercises.framework import (
    WRONG,
    Case,
    Exercise,
    Mistake,
    Result,
    _clone,
    _show,
)

# ------------------------------------------------------------------ q1: a DPOConfig for a goal


@dataclass
class FieldsExercise(Exercise):
    """A function exercise whose answer is an object (e.g. a `DPOConfig`) compared on `fields` only."""

    fields: Sequence[str] = ()

    def _project(self, obj) -> dict:
        if isinstance(obj, dict):
            return obj
        return {name: _plain(getattr(obj, name, "<missing>")) for name in self.fields}

    def _compare(self, got, expected, case: Case, label: str) -> Result | None:
        got_fields, expected = self._project(got), self._project(expected)
        wrong = [k for k in self.fields if got_fields[k] != expected[k]]
        if not wrong:
            return None
        lines = "\n".join(f"   {k}: expected {_show(expected[k])}, got {_show(got_fields[k])}" for k in wrong)
        return Result(
            WRONG,
            f"wrong on {label} ({self._describe(case)}):\n{lines}"
            + self._diagnose(got_fields, case.args, case.kwargs),
        )

    def _diagnose(self, got, args, kwargs) -> str:
        for mistake in self.mistakes:
            try:
                wrong = self._project(mistake.compute(*_clone(args), **_clone(kwargs)))
            except Exception:
                continue
            if all(got.get(k) == wrong[k] for k in self.fields):
                return f"\n   💡 {mistake.hint}"
        return ""


def _plain(value):
    """Enums as their value and tuples as lists, so `SaveStrategy.NO == "no"` and field values compare simply."""
    value = getattr(value, "value", value)
    return list(value) if isinstance(value, tuple) else value


CONFIG_FIELDS = (
    "output_dir", "learning_rate", "use_cpu", "bf16", "fp16", "gradient_checkpointing", "beta", "loss_type",
    "num_train_epochs", "per_device_train_batch_size", "gradient_accumulation_steps", "max_length", "logging_steps",
    "save_strategy", "report_to", "train_sampling_strategy", "seed",
)  # fmt: skip


def _config(output_dir: str, learning_rate: float, use_cpu: bool, **changes):
    from trl import DPOConfig

    kwargs = dict(
        output_dir=output_dir, learning_rate=learning_rate, use_cpu=use_cpu, bf16=False,
        activation_checkpointing=False, beta=0.1, loss_type="sigmoid", num_train_epochs=1,
        per_device_train_batch_size=16, max_length=128, logging_steps=1, save_strategy="no", report_to="none",
        train_sampling_strategy="sequential", seed=0,
    )  # fmt: skip
    kwargs.update(changes)
    return DPOConfig(**kwargs)


def _make_dpo_config(output_dir: str, learning_rate: float, use_cpu: bool):
    return _config(output_dir, learning_rate, use_cpu)


q1 = FieldsExercise(
    name="Exercise 3.1 (a DPOConfig set on purpose)",
    prompt=(
        "Write make_dpo_config(output_dir, learning_rate, use_cpu) -> DPOConfig for: the given output_dir, "
        "learning_rate and use_cpu; fp32 (no bf16 mixed precision); no gradient (activation) checkpointing; the "
        "sigmoid loss with beta 0.1; one epoch of 16 pairs per device per step, no accumulation; prompt + response "
        "cut at 128 tokens; a log line every step; no checkpoints saved, no experiment tracker; the data in its "
        "given order (no shuffling); seed 0."
    ),
    reference=_make_dpo_config,
    fields=CONFIG_FIELDS,
    cases=[
        Case(("runs/ex03", 1e-4, True), label="the toy model on a CPU"),
        Case(("runs/ex03-gpu", 5e-7, False), label="a real model on a GPU"),
    ],
    hints=[
        "Start from DPOConfig(output_dir=..., learning_rate=..., use_cpu=...) and set every default that does not "
        "fit: print(DPOConfig(output_dir='x', use_cpu=True)) shows them. Which ones does TRL change from plain "
        "TrainingArguments? bf16, gradient checkpointing, the learning rate, logging_steps.",
        "bf16=False, activation_checkpointing=False (transformers 5's name for gradient_checkpointing), "
        "num_train_epochs=1, per_device_train_batch_size=16, max_length=128, logging_steps=1, "
        "save_strategy='no', report_to='none', train_sampling_strategy='sequential', seed=0. "
        "TRL 1.16 has no max_prompt_length: max_length covers prompt + response.",
    ],
    solution_code="""
from trl import DPOConfig

def make_dpo_config(output_dir, learning_rate, use_cpu):
    return DPOConfig(
        output_dir=output_dir,
        learning_rate=learning_rate,          # TRL's default is 1e-6
        use_cpu=use_cpu,
        bf16=False,                           # TRL's default is True (mixed precision), even on a CPU
        activation_checkpointing=False,       # TRL turns (gradient) checkpointing on by default
        beta=0.1,
        loss_type="sigmoid",
        num_train_epochs=1,
        per_device_train_batch_size=16,
        max_length=128,                       # prompt + response; there is no max_prompt_length any more
        logging_steps=1,                      # TRL's default is 10
        save_strategy="no",
        report_to="none",
        train_sampling_strategy="sequential",  # keep the dataset's order
        seed=0,
    )
""",
    answer_name="make_dpo_config",
    mistakes=[
        Mistake(
            "TRL's learning rate",
            lambda out, lr, cpu: _config(out, 1e-6, cpu),
            "learning_rate is TRL's default, 1e-6. Pass the learning_rate argument: 1e-6 barely moves the toy model.",
        ),
        Mistake(
            "bf16 left on",
            lambda out, lr, cpu: _config(out, lr, cpu, bf16=True),
            "bf16 is on: TRL's DPOConfig turns bf16 mixed precision on unless you say bf16=False. Here we want fp32, "
            "so the run matches train_dpo step for step.",
        ),
        Mistake(
            "checkpointing left on",
            lambda out, lr, cpu: _config(out, lr, cpu, activation_checkpointing=True),
            "Gradient checkpointing is on (TRL's default). It recomputes every layer in the backward pass to save "
            "memory the toy model does not need: set activation_checkpointing=False.",
        ),
        Mistake(
            "shuffled",
            lambda out, lr, cpu: _config(out, lr, cpu, train_sampling_strategy="random"),
            "The data is shuffled (train_sampling_strategy='random', the default). To keep the order you hand it, "
            "use train_sampling_strategy='sequential'.",
        ),
        Mistake(
            "three epochs",
            lambda out, lr, cpu: _config(out, lr, cpu, num_train_epochs=3),
            "num_train_epochs is 3, TrainingArguments' default: set num_train_epochs=1.",
        ),
    ],
)

# ------------------------------------------------------------------ q2: reading the metric curves (a value)

q2 = Exercise(
    name="Exercise 3.2 (reading the reward curves)",
    prompt=(
        "In a DPO run, rewards/chosen drifts slightly below zero while rewards/rejected falls much faster, so "
        "rewards/margins grows and rewards/accuracies nears 1. Which statement is right? Answer 'A', 'B', 'C' or 'D'.\n"
        "A: The model is getting worse: it now gives the chosen answers less probability than the reference did.\n"
        "B: The policy lowered log pi(chosen) a little relative to the reference and log pi(rejected) a lot; the "
        "loss only asks for the gap, so this is DPO working as intended.\n"
        "C: beta is too high: a negative chosen reward means the KL penalty is pushing the policy back.\n"
        "D: The reference model is being updated with the policy, so the rewards are no longer comparable."
    ),
    reference=lambda: "B",
    hints=[
        "rewards/chosen is beta * (log pi(y_w|x) - log pi_ref(y_w|x)) averaged over the batch. What does the DPO "
        "loss depend on: each reward, or their difference?",
        "The loss is -log sigmoid(r_w - r_l): only the margin matters. Both log-probabilities can fall, as long as "
        "the rejected one falls faster.",
    ],
    solution_code='answer = "B"',
    answer_name="answer",
    mistakes=[
        Mistake(
            "A",
            lambda: "A",
            "A negative chosen reward alone is not a warning sign: the loss only depends on the margin r_w - r_l. "
            "Judge the model by held-out quality (the ground-truth reward here), not by rewards/chosen.",
        ),
        Mistake(
            "C",
            lambda: "C",
            "There is no separate KL penalty in the DPO loss pushing back: beta scales the log-ratios inside the "
            "sigmoid. A falling chosen reward happens at any beta.",
        ),
        Mistake(
            "D",
            lambda: "D",
            "The reference is frozen (unless you turn on sync_ref_model): its log-probs are the same at every step, "
            "so the rewards are comparable across steps.",
        ),
    ],
)

# ------------------------------------------------------------------ q3: a sampled KL estimate


def _sampled_kl(policy_logps: torch.Tensor, reference_logps: torch.Tensor) -> torch.Tensor:
    return (policy_logps - reference_logps).mean()


_G = torch.Generator().manual_seed(3)
_PL = -(torch.rand(6, generator=_G, dtype=torch.float64) * 8 + 0.5)
_RL = _PL - torch.tensor([1.5, -0.4, 2.0, 0.3, 0.9, -0.2], dtype=torch.float64)

q3 = Exercise(
    name="Exercise 3.3 (a sampled KL estimate)",
    prompt=(
        "Responses y_1..y_N were sampled from the POLICY. Given their summed log-probs under the policy and under "
        "the reference, shape (N,), write sampled_kl(policy_logps, reference_logps): the Monte Carlo estimate of "
        "KL(pi || pi_ref) per response (a 0-d tensor)."
    ),
    reference=_sampled_kl,
    cases=[
        Case((_PL, _RL), label="six sampled responses"),
        Case((_PL[:2], _RL[:2]), label="two responses"),
        Case((_PL, _PL.clone()), label="policy == reference (KL must be 0)"),
    ],
    hints=[
        "KL(pi || pi_ref) = E_{y ~ pi}[log pi(y|x) - log pi_ref(y|x)]. The samples come from pi, so the average of "
        "the log-ratio over them estimates the expectation.",
        "return (policy_logps - reference_logps).mean()",
    ],
    solution_code="""
def sampled_kl(policy_logps, reference_logps):
    return (policy_logps - reference_logps).mean()   # E_{y ~ pi}[log pi(y) - log pi_ref(y)]
""",
    answer_name="sampled_kl",
    mistakes=[
        Mistake(
            "reversed",
            lambda p, r: (r - p).mean(),
            "The sign is reversed: with samples from the policy, KL(pi || pi_ref) averages log pi - log pi_ref. "
            "(r - p) averaged over the policy's samples is minus that, not KL(pi_ref || pi).",
        ),
        Mistake(
            "ratio",
            lambda p, r: (p - r).exp().mean(),
            "You averaged the probability ratio pi/pi_ref. KL averages its LOG: (policy_logps - reference_logps).mean().",
        ),
        Mistake(
            "sum",
            lambda p, r: (p - r).sum(),
            "That is the sum over the samples: divide by their number (take the mean) for the estimate per response.",
        ),
    ],
)

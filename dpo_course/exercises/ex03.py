"""Exercises of 03_training_with_trl: a `DPOConfig` set on purpose, reading the curves, a KL estimate, a
prediction made before a run, and a bug found from its curves. q1 is checked field by field on the
returned config (`FieldsExercise`); q2, q4 and q5 are multiple choice: a wrong answer is explained, never answered.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from dpo_course.exercises.framework import WRONG, Case, Exercise, Mistake, Result, _show

# ------------------------------------------------------------------ q1: a DPOConfig for a goal


@dataclass
class FieldsExercise(Exercise):
    """A function exercise whose answer is an object (e.g. a `DPOConfig`) compared on `fields` only."""

    fields: Sequence[str] = ()
    diagnostic_fields: Sequence[str] = ()  # not graded, but read to tell one mistake from another

    def _project(self, obj, names: Sequence[str] | None = None) -> dict:
        names = self.fields if names is None else names
        if isinstance(obj, dict):
            return {name: _plain(name, obj.get(name, "<missing>")) for name in names}
        return {name: _plain(name, getattr(obj, name, "<missing>")) for name in names}

    def _compare(self, got, expected, case: Case, label: str) -> Result | None:
        got_fields, expected = self._project(got), self._project(expected)
        wrong = [k for k in self.fields if got_fields[k] != expected[k]]
        if not wrong:
            return None
        lines = "\n".join(f"   {k}: expected {_show(expected[k])}, got {_show(got_fields[k])}" for k in wrong)
        return Result(WRONG, f"wrong on {label} ({self._describe(case)}):\n{lines}")

    def _explains(self, mistake: Mistake, got, case: Case) -> bool:
        try:
            names = (*self.fields, *self.diagnostic_fields)
            return self._project(got, names) == self._project(self._produce(mistake.compute, case), names)
        except Exception:
            return False


def _plain(name: str, value):
    """Enums as their value, tuples as lists; report_to "none" as [] (transformers treats them alike)."""
    value = getattr(value, "value", value)
    if name == "report_to" and value in ("none", ["none"], None):
        return []
    return list(value) if isinstance(value, tuple) else value


# activation_checkpointing, not gradient_checkpointing: transformers 5 reads the new name; the old one is an
# alias copied from it at construction, so a config changed afterwards can disagree with what runs.
CONFIG_FIELDS = (
    "output_dir", "learning_rate", "use_cpu", "bf16", "fp16", "activation_checkpointing", "beta", "loss_type",
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


def _old_name_switched_off(output_dir: str, learning_rate: float, use_cpu: bool):
    config = _config(output_dir, learning_rate, use_cpu, activation_checkpointing=True)
    config.gradient_checkpointing = False  # the deprecated alias: transformers 5 no longer reads it
    return config


q1 = FieldsExercise(
    name="Exercise 3.1 (a DPOConfig set on purpose)",
    prompt=(
        "Write make_dpo_config(output_dir, learning_rate, use_cpu) -> DPOConfig for: the given output_dir, "
        "learning_rate and use_cpu; fp32 (no bf16 mixed precision); no activation (gradient) checkpointing; the "
        "sigmoid loss with beta 0.1; one epoch of 16 pairs per device per step, no accumulation; prompt + completion "
        "cut at 128 tokens; a log line every step; no checkpoints saved, no experiment tracker; the data in its "
        "given order (no shuffling); seed 0."
    ),
    reference=_make_dpo_config,
    fields=CONFIG_FIELDS,
    diagnostic_fields=("gradient_checkpointing",),
    cases=[
        Case(("runs/ex03", 1e-4, True), label="the toy model on a CPU"),
        Case(("runs/ex03-real", 5e-7, True), label="a real model's rate"),
    ],
    hints=[
        "Start from DPOConfig(output_dir=..., learning_rate=..., use_cpu=...) and print it: which of its defaults "
        "does TRL change from plain TrainingArguments, and which of them fit a CPU run of a tiny model?",
        "Four defaults are TRL's and do not fit: bf16 (True), activation checkpointing (True), the learning rate "
        "(1e-6) and logging_steps (10). Three are TrainingArguments': 3 epochs, shuffled batches (train_sampling_"
        "strategy='random') and checkpoints saved. TRL 1.16 has no max_prompt_length: max_length covers both parts.",
        "bf16=False, activation_checkpointing=False (transformers 5's name; gradient_checkpointing is its "
        "deprecated alias), num_train_epochs=1, per_device_train_batch_size=16, max_length=128, logging_steps=1, "
        "save_strategy='no', report_to='none' (or []), train_sampling_strategy='sequential', seed=0.",
    ],
    solution_code="""
from trl import DPOConfig

def make_dpo_config(output_dir, learning_rate, use_cpu):
    return DPOConfig(
        output_dir=output_dir,
        learning_rate=learning_rate,          # TRL's default is 1e-6
        use_cpu=use_cpu,
        bf16=False,                           # TRL's default is True (mixed precision), even on a CPU
        activation_checkpointing=False,       # TRL turns checkpointing on by default
        beta=0.1,
        loss_type="sigmoid",
        num_train_epochs=1,
        per_device_train_batch_size=16,
        max_length=128,                       # prompt + completion; there is no max_prompt_length any more
        logging_steps=1,                      # TRL's default is 10
        save_strategy="no",
        report_to="none",                     # transformers reads "none" as []
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
            "Activation checkpointing is on (TRL's default). It recomputes every layer in the backward pass to save "
            "memory the toy model does not need: set activation_checkpointing=False.",
        ),
        Mistake(
            "old name switched off afterwards",
            _old_name_switched_off,
            "activation_checkpointing is still True: you switched off gradient_checkpointing after the config was "
            "built. In transformers 5 that is a deprecated alias, copied from activation_checkpointing once at "
            "construction; the trainer reads activation_checkpointing. Pass activation_checkpointing=False.",
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

# ------------------------------------------------------------------ q2: both log-probs fall (multiple choice)

q2 = Exercise(
    name="Exercise 3.2 (when the chosen log-prob falls)",
    prompt=(
        "In a DPO run, rewards/chosen drifts below zero while rewards/rejected falls much faster, so rewards/margins "
        "grows and rewards/accuracies nears 1. Which statement is right? Answer 'A', 'B', 'C' or 'D'.\n"
        "A: The model is getting worse: a negative chosen reward is the sign of a failed run.\n"
        "B: Nothing to check: the loss only asks for the gap, so this is DPO working as intended.\n"
        "C: Probability left BOTH responses of each pair; it went to other responses, which may be better or worse "
        "(often ones that share tokens with the chosen one). Not a failure in itself: look at where it went, in "
        "held-out samples.\n"
        "D: The reference model is being updated with the policy, so the rewards are no longer comparable."
    ),
    reference=lambda: "C",
    hints=[
        "rewards/chosen is beta * (log pi(y_w|x) - log pi_ref(y_w|x)). If it is negative, the chosen response lost "
        "probability. Probabilities over all responses sum to one: if both responses of a pair lost, who gained?",
        "The loss is -log sigmoid(beta * h) with h the gap of log-ratios: it never says where the probability "
        "that leaves the rejected response should go, nor that the chosen one must gain. A gradient step that "
        "lowers a rejected response also lowers the tokens it shares with others.",
        "The answer is the statement that neither calls it a failure nor says there is nothing to check.",
    ],
    solution_code='answer = "C"',
    answer_name="answer",
    mistakes=[
        Mistake(
            "A",
            lambda: "A",
            "A negative chosen reward alone is not a failure: the loss only depends on the margin. What it tells "
            "you is that probability went somewhere else, so the question is where.",
        ),
        Mistake(
            "B",
            lambda: "B",
            "The loss is indeed happy, but 'nothing to check' skips likelihood displacement: the probability that "
            "left both responses landed on other responses, and nothing in the loss says they are good ones.",
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


def _k3(p: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    log_ratio = r - p  # log(pi_ref / pi) of each sample
    return (log_ratio.exp() - 1 - log_ratio).mean()


_G = torch.Generator().manual_seed(3)
_PL = -(torch.rand(6, generator=_G, dtype=torch.float64) * 8 + 0.5)
_RL = _PL - torch.tensor([1.5, -0.4, 2.0, 0.3, 0.9, -0.2], dtype=torch.float64)

q3 = Exercise(
    name="Exercise 3.3 (a sampled KL estimate)",
    prompt=(
        "Completions y_1..y_N were sampled from the POLICY. Given their summed log-probs under the policy and under "
        "the reference, shape (N,), write sampled_kl(policy_logps, reference_logps): the plain Monte Carlo estimate "
        "of KL(pi || pi_ref) per completion, the average of the log-ratio, as a 0-d tensor (not a Python float)."
    ),
    reference=_sampled_kl,
    expect_type=torch.Tensor,
    cases=[
        Case((_PL, _RL), label="six sampled completions"),
        Case((_PL[:2], _RL[:2]), label="two completions"),
        Case((_PL, _PL.clone()), label="policy == reference (KL must be 0)"),
    ],
    hints=[
        "KL(pi || pi_ref) = E_{y ~ pi}[log pi(y|x) - log pi_ref(y|x)]. The samples come from pi: how do you "
        "estimate an expectation over pi from samples of pi?",
        "Average the log-ratio over the samples, with tensor operations, and return the tensor itself (no .item(), "
        "no float(...)): later cells call .item() on it.",
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
            "That is the sum over the samples: divide by their number (take the mean) for the estimate per completion.",
        ),
        Mistake(
            "k3",
            _k3,
            "That is Schulman's k3 estimator, mean((r - 1) - log r) with r = pi_ref/pi: also unbiased for "
            "KL(pi || pi_ref), never negative, and of lower variance, so it is a fine estimator (TRL's GRPO uses it). "
            "It is not this exercise's answer because on a finite sample it gives another number than the plain "
            "average of log pi - log pi_ref, which is what kl_to_reference returns and the next cell compares against.",
        ),
        Mistake(
            "float",
            lambda p, r: (p - r).mean().item(),
            "Right value, wrong type: .item() (or float()) turns the 0-d tensor into a Python float, which has no "
            "device and no gradient. Return the tensor.",
        ),
    ],
)

# ------------------------------------------------------------------ q4: predict, then run

q4 = Exercise(
    name="Exercise 3.4 (predict, then run)",
    prompt=(
        "Before running TRL's DPOTrainer on the SFT model (beta 0.1, the toy's rate, 16 pairs a step), predict its "
        "log at step 20. Answer 'A', 'B', 'C' or 'D'.\n"
        "A: rewards/chosen > 0 and rewards/rejected < 0, the rejected one larger in size.\n"
        "B: rewards/chosen < 0 and rewards/rejected < 0: both fall, the rejected faster.\n"
        "C: rewards/chosen > 0 and rewards/rejected > 0: both rise, the chosen faster.\n"
        "D: both still 0: twenty steps are too few to move the implicit rewards."
    ),
    reference=lambda: "A",
    hints=[
        "Think about what the SFT model already does. It answers concisely about half the time; the rejected "
        "responses (wrong, verbose, refusals) are also things it says. Which of the two has more room to move?",
        "A response the model already gives with high probability cannot gain much log-probability; one it gives "
        "sometimes can lose a lot. And early in training nothing has yet pushed the shared tokens down.",
        "At step 20 the chosen log-ratio is still positive but small; the rejected one is negative and several "
        "times larger in size.",
    ],
    solution_code='answer = "A"',
    answer_name="answer",
    mistakes=[
        Mistake(
            "B",
            lambda: "B",
            "Both falling is common late in a run, or on real models, and the next section shows it. Twenty steps "
            "into this one, has anything yet pushed the chosen answers down?",
        ),
        Mistake(
            "C",
            lambda: "C",
            "The loss pushes the rejected log-ratio down, not up: rewards/rejected is negative from the first steps.",
        ),
        Mistake(
            "D",
            lambda: "D",
            "Step 1 has both rewards at exactly 0 (policy == reference), but every step moves them: at the toy's "
            "rate twenty steps move the log-ratios by nats.",
        ),
    ],
)

# ------------------------------------------------------------------ q5: a planted bug, from its curves

_BUGS = {
    "run 1": "learning rate too high",
    "run 2": "chosen and rejected swapped",
    "run 3": "reference is the policy",
}
BUG_CHOICES = (
    "learning rate too high",
    "chosen and rejected swapped",
    "reference is the policy",
    "beta too high",
)

q5 = Exercise(
    name="Exercise 3.5 (find the planted bug)",
    prompt=(
        "Three runs, each with one planted bug, are plotted above (training loss and rewards/margins, and after "
        "training the accuracy on held-out pairs and the held-out reward). Map each run to its bug: answer a dict {'run 1': ..., 'run 2': ..., 'run 3': ...} with "
        f"values from {list(BUG_CHOICES)} (one is not used)."
    ),
    reference=lambda: dict(_BUGS),
    hints=[
        "Read each run's curves against what a healthy run does: the loss starts at log 2 = 0.693 and falls, the "
        "margin grows, the accuracy rises towards 1, and the held-out reward should not fall.",
        "A run whose rewards stay exactly 0 and loss exactly log 2 never sees a difference between policy and "
        "reference. A run whose accuracy goes to 0 is learning the opposite preference. A run whose training "
        "metrics look best while the held-out reward collapses moved too far, too fast.",
        "Beta scales the margin but does not make the training curves flat or upside down: it is the choice not used.",
    ],
    solution_code=(
        'answer = {"run 1": "learning rate too high", "run 2": "chosen and rejected swapped", '
        '"run 3": "reference is the policy"}'
    ),
    answer_name="answer",
    show_expected=False,
    mistakes=[
        Mistake(
            "beta for the flat run",
            lambda: {**_BUGS, "run 3": "beta too high"},
            "Run 3: a high beta still gives a non-zero margin after one step (beta * h with h != 0). Exactly zero "
            "rewards at every step mean h is always 0: the 'reference' moves with the policy.",
        ),
        Mistake(
            "swapped for the hot run",
            lambda: {**_BUGS, "run 1": "chosen and rejected swapped", "run 2": "learning rate too high"},
            "Runs 1 and 2 are crossed: with chosen and rejected swapped, the model learns the opposite preference, "
            "so rewards/accuracies on the correctly labelled pairs goes to 0. Which run's accuracy does that?",
        ),
        Mistake(
            "beta for the hot run",
            lambda: {**_BUGS, "run 1": "beta too high"},
            "Run 1's margin is the largest and its held-out reward fell: a too-high beta would keep the policy "
            "nearer its reference, not push it further.",
        ),
    ],
)

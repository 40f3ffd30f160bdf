"""The DPO debugging checklist as code: `diagnose(history, dataset, config)` returns findings.

Taught in 07_evaluation. Each `Finding` has a severity ("error", "warning"), a check name, a
message with the measured number, and a fix. Checks (silent on a healthy run):

- a learning rate or beta that is not a finite number (NaN, inf);
- learning rate outside the usual range: full fine-tuning of real models ~1e-7..1e-5, LoRA
  adapters ~1e-6..1e-4 (they need roughly 10x more), the toy model ~1e-5..1e-3 (it is tiny and
  trains in 80 steps, so it uses far larger rates than a real model would tolerate);
- beta below 0.01 (the policy may drift far) or above 1 (updates become negligible);
- dataset rows with missing, empty or non-string fields, or no rows at all;
- chosen completions much longer than rejected ones (DPO then learns length, not quality);
- NaN or infinite loss; the accuracy stuck at chance; margins past 10 with the loss near 0
  (overfitting: the model memorises the pairs).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

# Usual learning-rate ranges, (low, high), by regime. Real-model ranges follow common DPO recipes.
LR_RANGES = {"full": (1e-7, 1e-5), "lora": (1e-6, 1e-4), "toy": (1e-5, 1e-3)}
BETA_RANGE = (0.01, 1.0)
LENGTH_RATIO = 1.5
OVERFIT_MARGIN = 10.0
OVERFIT_LOSS = 0.05
STUCK_ACCURACY = 0.55
SEVERITIES = ("error", "warning")


@dataclass(frozen=True)
class Finding:
    """One problem `diagnose` found: how bad, which check, what it saw, and what to do."""

    severity: str
    check: str
    message: str
    fix: str

    def __str__(self) -> str:
        return f"[{self.severity.upper()}] {self.check}: {self.message}\n    fix: {self.fix}"


def _get(config, name: str, default=None):
    if isinstance(config, Mapping):
        return config.get(name, default)
    return getattr(config, name, default)


def _is_lora(config) -> bool:
    for key in ("lora", "use_peft", "peft_config", "use_lora"):
        value = _get(config, key)
        if value:
            return True
    return False


def _non_finite(config) -> list[Finding]:
    found = []
    for name in ("learning_rate", "beta"):
        value = _get(config, name)
        if isinstance(value, (int, float)) and not math.isfinite(value):
            found.append(
                Finding(
                    "error", name, f"{name} = {value}: not a finite number", f"set {name} to a finite value"
                )
            )
    return found


def _check_config(config, regime: str | None) -> list[Finding]:
    findings = []
    regime = regime or _get(config, "regime") or ("lora" if _is_lora(config) else "full")
    if regime not in LR_RANGES:
        raise ValueError(f"regime must be one of {sorted(LR_RANGES)}, got {regime!r}")
    findings += _non_finite(config)
    lr = _get(config, "learning_rate")
    low, high = LR_RANGES[regime]
    if isinstance(lr, (int, float)) and math.isfinite(lr) and not low <= lr <= high:
        direction = "high" if lr > high else "low"
        findings.append(
            Finding(
                "warning",
                "learning_rate",
                f"learning rate {lr:.1e} is too {direction} for {regime} DPO (usual range {low:.0e}..{high:.0e})",
                "DPO nudges an SFT model: use a rate 10-50x below SFT's (e.g. 5e-7 full, 5e-6 LoRA); "
                "too high a rate drives the policy far from the reference and below the SFT baseline"
                if direction == "high"
                else f"raise it towards {low:.0e}..{high:.0e}: the model barely moves",
            )
        )
    beta = _get(config, "beta")
    if isinstance(beta, (int, float)) and math.isfinite(beta):
        if beta < BETA_RANGE[0]:
            findings.append(
                Finding(
                    "warning",
                    "beta",
                    f"beta = {beta} is very low: the policy may drift far from the reference",
                    "start from beta = 0.1; raise it if quality drops on general prompts",
                )
            )
        elif beta > BETA_RANGE[1]:
            findings.append(
                Finding(
                    "warning",
                    "beta",
                    f"beta = {beta} is very high: the loss saturates after a small change in log-ratios, so learning stops early",
                    "start from beta = 0.1; lower it if the preferences are learnt too slowly",
                )
            )
    return findings


def _check_dataset(dataset, tokenizer) -> list[Finding]:
    from dpo_course.data.tokenize import PreferenceDataError
    from dpo_course.data.validate import validate_preference_dataset

    if dataset is None:
        return []
    if len(dataset) == 0:
        return [
            Finding("error", "dataset", "the dataset has no rows", "load or build the preference pairs first")
        ]
    try:
        report = validate_preference_dataset(dataset, raise_on_fatal=False, tokenizer=tokenizer)
    except PreferenceDataError as err:  # pragma: no cover - raise_on_fatal=False should not raise
        return [Finding("error", "dataset", str(err), "fix the rows named in the message")]
    findings = []
    broken = report.issues["missing_field"] + report.issues["not_a_string"] + report.issues["empty"]
    if broken:
        first = report.notes.get(broken[0], f"row {broken[0]}: a field is empty")
        findings.append(
            Finding(
                "error",
                "dataset",
                f"{len(broken)} of {report.num_rows} rows lack a usable prompt/chosen/rejected ({first})",
                "every row needs non-empty 'prompt', 'chosen' and 'rejected' strings (or messages): "
                "rename columns or drop the rows (dpo_course.data.validate_preference_dataset lists them)",
            )
        )
    ratio = report.mean_length_ratio
    if ratio == ratio and ratio > LENGTH_RATIO:
        findings.append(
            Finding(
                "warning",
                "length",
                f"chosen completions average {report.mean_chosen_length:.1f} {report.length_unit}, rejected "
                f"{report.mean_rejected_length:.1f} (ratio {ratio:.2f} > {LENGTH_RATIO}): the model may learn to prefer length",
                "balance lengths (pair completions of similar length), add a length penalty, or try SimPO/length-normalised losses; "
                "check the win rate with length controlled",
            )
        )
    return findings


def _series(history: Sequence[Mapping], key: str) -> list[float]:
    return [float(h[key]) for h in history if key in h and h[key] is not None]


def _check_history(history: Sequence[Mapping]) -> list[Finding]:
    findings = []
    losses = _series(history, "loss")
    bad = [i for i, v in enumerate(losses) if not math.isfinite(v)]
    if bad:
        findings.append(
            Finding(
                "error",
                "nan_loss",
                f"the loss is {losses[bad[0]]} from logged step {bad[0] + 1} on ({len(bad)} of {len(losses)} steps)",
                "lower the learning rate, check for empty completions or truncated rows, keep fp32 log-softmax",
            )
        )
        return findings  # later checks read finite numbers only
    if len(losses) < 4:
        return findings
    tail = max(2, len(losses) // 4)
    accuracy = _series(history, "rewards/accuracies")[-tail:]
    margins = _series(history, "rewards/margins")[-tail:]
    if accuracy and sum(accuracy) / len(accuracy) <= STUCK_ACCURACY:
        findings.append(
            Finding(
                "warning",
                "not_learning",
                f"preference accuracy over the last {len(accuracy)} steps is {sum(accuracy) / len(accuracy):.2f}: "
                "chosen is not winning over rejected",
                "check that the pairs are not flipped or random, raise the learning rate or lower beta, train longer",
            )
        )
    if margins and margins[-1] > OVERFIT_MARGIN and losses[-1] < OVERFIT_LOSS:
        findings.append(
            Finding(
                "warning",
                "overfitting",
                f"reward margin {margins[-1]:.1f} > {OVERFIT_MARGIN:g} with loss {losses[-1]:.3f}: the pairs are memorised",
                "train fewer epochs, lower the learning rate, raise beta, use more data, or try IPO/cDPO",
            )
        )
    return findings


def diagnose(
    history: Sequence[Mapping] | None,
    dataset=None,
    config=None,
    *,
    regime: str | None = None,
    tokenizer=None,
) -> list[Finding]:
    """Run the debugging checklist on a training run; returns the findings (empty when healthy).

    `history`: per-step dicts with TRL's metric names (``loss``, ``rewards/accuracies``,
    ``rewards/margins``), e.g. `train_dpo`'s history or ``trainer.state.log_history``.
    `dataset`: the training pairs. `config`: a `DPOTrainConfig`, a TRL `DPOConfig` or a dict
    (``learning_rate``, ``beta``; LoRA when ``lora``/``use_peft``/``peft_config`` is set).
    `regime`: ``"full"``, ``"lora"`` or ``"toy"`` picks the learning-rate range in `LR_RANGES`
    (default: from `config`, else ``"full"``). With a `tokenizer` lengths are in tokens, else words.
    Taught in 07_evaluation.
    """
    findings: list[Finding] = []
    if config is not None:
        findings += _check_config(config, regime)
    findings += _check_dataset(dataset, tokenizer)
    findings += _check_history(list(history or []))
    return findings

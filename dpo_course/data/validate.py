"""Quality checks on a preference dataset: what to look at before training on it.

Taught in 06_building_preference_data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field

from dpo_course.data.formats import _is_messages, render_messages, to_standard
from dpo_course.data.tokenize import REQUIRED_FIELDS, PreferenceDataError, completion_ids, prompt_ids

# ============================================================================================
# Quality checks. Taught in 06_building_preference_data.
# ============================================================================================
# Row-level problems, in report order. The first two are fatal: no trainer can use such a row.
ISSUES = {
    "missing_field": "a field is missing or None",
    "not_a_string": "a field is neither a string nor a list of messages",
    "empty": "prompt or a completion is empty",
    "tie": "chosen and rejected are identical",
    "duplicate": "exact copy of an earlier row",
    "test_leak": "prompt also appears in test_ds",
    "prompt_too_long": "prompt leaves no room for a completion within max_length",
    "truncated": "a completion is cut to fit max_length",
    "chosen_much_longer": "chosen is over length_ratio x longer than rejected",
}
FATAL = ("missing_field", "not_a_string")


def _normalise(text: str) -> str:
    return " ".join(text.lower().split())


@dataclass
class PreferenceDataReport:
    """What `validate_preference_dataset` found: row indices per problem, and length statistics."""

    num_rows: int
    issues: dict[str, list[int]]
    notes: dict[int, str]
    mean_chosen_length: float
    mean_rejected_length: float
    chosen_longer_share: float
    length_unit: str
    length_ratio: float = 1.5
    messages: list[str] = dataclass_field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {kind: len(rows) for kind, rows in self.issues.items()}

    @property
    def mean_length_ratio(self) -> float:
        return (
            self.mean_chosen_length / self.mean_rejected_length if self.mean_rejected_length else float("nan")
        )

    @property
    def length_imbalanced(self) -> bool:
        """Chosen completions are, on average, `length_ratio` times longer than rejected ones (or shorter)."""
        r = self.mean_length_ratio
        return r == r and (r > self.length_ratio or r < 1 / self.length_ratio)

    @property
    def fatal(self) -> bool:
        return any(self.issues[k] for k in FATAL)

    @property
    def ok(self) -> bool:
        return not any(self.issues.values()) and not self.length_imbalanced

    def rows_to_drop(
        self,
        kinds: Sequence[str] = (
            "missing_field",
            "not_a_string",
            "empty",
            "tie",
            "duplicate",
            "test_leak",
            "prompt_too_long",
        ),
    ) -> list[int]:
        """Sorted indices of the rows with any problem in `kinds` (by default every one but length)."""
        return sorted({i for kind in kinds for i in self.issues[kind]})

    def __str__(self) -> str:
        lines = [f"{self.num_rows} rows"]
        for kind, rows in self.issues.items():
            shown = ", ".join(map(str, rows[:8])) + (", ..." if len(rows) > 8 else "")
            lines.append(f"  {kind:<19} {len(rows):>5}" + (f"  rows {shown}" if rows else ""))
        lines.append(
            f"  mean length (chosen / rejected): {self.mean_chosen_length:.1f} / {self.mean_rejected_length:.1f} "
            f"{self.length_unit} (ratio {self.mean_length_ratio:.2f}); chosen is longer in {self.chosen_longer_share:.0%} of pairs"
            + (
                "  <- LENGTH IMBALANCE: DPO may learn length instead of quality"
                if self.length_imbalanced
                else ""
            )
        )
        return "\n".join(lines + [f"  ! {m}" for m in self.messages])


def _test_prompts(test_ds) -> set[str]:
    prompts = set()
    for row in test_ds if test_ds is not None else []:
        prompt = row.get("prompt") if hasattr(row, "keys") else None
        if _is_messages(prompt):
            prompt = render_messages(prompt)
        if isinstance(prompt, str):
            prompts.add(_normalise(prompt))
    return prompts


def _standard_row(raw, i: int) -> tuple[dict | None, str, str]:
    """``(row, "", "")`` with the row in the standard format, or ``(None, fatal kind, note)``."""
    if not hasattr(raw, "keys"):
        return None, "not_a_string", f"row {i}: expected a dict, got {type(raw).__name__}"
    missing = [
        f
        for f in REQUIRED_FIELDS
        if raw.get(f) is None and not (f == "prompt" and _is_messages(raw.get("chosen")))
    ]
    if missing:
        return None, "missing_field", f"row {i}: missing field {missing[0]!r}"
    try:
        row = to_standard(raw, index=i)
    except PreferenceDataError as err:
        return None, "not_a_string", str(err)
    wrong = [f for f in REQUIRED_FIELDS if not isinstance(row[f], str)]
    if wrong:
        got = type(row[wrong[0]]).__name__
        return (
            None,
            "not_a_string",
            f"row {i}, field {wrong[0]!r}: expected a str or a list of messages, got {got}",
        )
    return row, "", ""


def _lengths(row: dict, tokenizer, max_length: int | None) -> tuple[int, int, str]:
    """Chosen and rejected lengths (tokens with a tokenizer, else words) and a length problem or ""."""
    p, c, r = row["prompt"], row["chosen"], row["rejected"]
    if tokenizer is None:
        return len(c.split()), len(r.split()), ""
    lc, lr = len(completion_ids(tokenizer, c)), len(completion_ids(tokenizer, r))
    if max_length is None:
        return lc, lr, ""
    lp = len(prompt_ids(tokenizer, p))
    problem = "prompt_too_long" if lp >= max_length else "truncated" if lp + max(lc, lr) > max_length else ""
    return lc, lr, problem


def _fatal_error(report: PreferenceDataReport) -> PreferenceDataError:
    bad = sorted(i for k in FATAL for i in report.issues[k])
    listed = "; ".join(report.notes[i] for i in bad[:5]) + ("; ..." if len(bad) > 5 else "")
    return PreferenceDataError(
        f"{len(bad)} of {report.num_rows} rows cannot be used: {listed}. Fix or drop them "
        "(raise_on_fatal=False lists them all in the report's issues)."
    )


def validate_preference_dataset(
    ds,
    *,
    test_ds=None,
    tokenizer=None,
    max_length: int | None = None,
    raise_on_fatal: bool = True,
    length_ratio: float = 1.5,
) -> PreferenceDataReport:
    """Check a preference dataset before training; returns a `PreferenceDataReport`.

    Finds, with row indices: missing fields, wrong types (fatal: raises `PreferenceDataError`
    unless ``raise_on_fatal=False``), empty prompts or completions, ties (chosen == rejected),
    exact duplicates of an earlier row, prompts that also occur in `test_ds` (compared case- and
    whitespace-insensitively), and with a `tokenizer` and `max_length` prompts too long to leave
    room for a completion and completions that will be truncated. Lengths are in tokens when a
    tokenizer is given, else in words; the report flags a mean chosen/rejected length ratio
    beyond `length_ratio` (either way), the bias DPO is known to pick up. Conversational rows
    are converted with `to_standard` first. Taught in 06_building_preference_data.
    """
    if not (math.isfinite(length_ratio) and length_ratio >= 1):
        raise ValueError(f"length_ratio must be a finite number >= 1, got {length_ratio}")
    issues: dict[str, list[int]] = {kind: [] for kind in ISSUES}
    notes: dict[int, str] = {}
    test_prompts = _test_prompts(test_ds)
    seen: set[tuple[str, str, str]] = set()
    lengths: list[tuple[int, int]] = []
    n = 0
    for i, raw in enumerate(ds):
        n += 1
        row, fatal, note = _standard_row(raw, i)
        if row is None:
            issues[fatal].append(i)
            notes[i] = note
            continue
        key = (row["prompt"], row["chosen"], row["rejected"])
        found = {
            "empty": not all(text.strip() for text in key),
            "tie": key[1] == key[2],
            "duplicate": key in seen,
            "test_leak": _normalise(key[0]) in test_prompts,
        }
        seen.add(key)
        lc, lr, problem = _lengths(row, tokenizer, max_length)
        found[problem] = bool(problem)
        found["chosen_much_longer"] = lc > length_ratio * max(lr, 1)
        for kind, hit in found.items():
            if hit:
                issues[kind].append(i)
        lengths.append((lc, lr))
    report = PreferenceDataReport(
        num_rows=n,
        issues=issues,
        notes=notes,
        mean_chosen_length=sum(c for c, _ in lengths) / max(len(lengths), 1),
        mean_rejected_length=sum(r for _, r in lengths) / max(len(lengths), 1),
        chosen_longer_share=sum(c > r for c, r in lengths) / max(len(lengths), 1),
        length_unit="tokens" if tokenizer is not None else "words",
        length_ratio=length_ratio,
    )
    if max_length is not None and tokenizer is None:
        report.messages.append("max_length was given without a tokenizer: prompt lengths were not checked")
    if report.fatal and raise_on_fatal:
        raise _fatal_error(report)
    return report

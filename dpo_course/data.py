"""Preference data: tokenisation that keeps the prompt/response boundary, and the collator.

Taught in 02_dpo_loss_from_scratch (tokenisation, completion mask) and 06_building_preference_data
(validation, formats). A batch stacks ``[chosen; rejected]`` on dim 0 so one forward pass scores both.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from pathlib import Path

import torch

REQUIRED_FIELDS = ("prompt", "chosen", "rejected")


class PreferenceDataError(ValueError):
    """A preference row that cannot be used, with the row index and the field in the message."""


def check_row(row, index: int) -> None:
    """Raise `PreferenceDataError` naming `index` and the field if `row` is not a usable pair."""
    if not hasattr(row, "keys"):
        raise PreferenceDataError(f"row {index}: expected a dict with prompt/chosen/rejected, got {type(row).__name__}")
    for field in REQUIRED_FIELDS:
        if field not in row:
            raise PreferenceDataError(f"row {index}: missing field {field!r} (it has {sorted(row.keys())})")
        value = row[field]
        if not isinstance(value, str):
            raise PreferenceDataError(
                f"row {index}, field {field!r}: expected a str, got {type(value).__name__}"
                + (" (conversational rows: convert them with dpo_course.data.to_standard first)" if isinstance(value, list) else "")
            )
        if not value.strip():
            raise PreferenceDataError(f"row {index}, field {field!r}: empty string")
    if row["chosen"] == row["rejected"]:
        raise PreferenceDataError(f"row {index}: 'chosen' and 'rejected' are identical, so there is no preference")


def prompt_ids(tokenizer, prompt: str) -> list[int]:
    """Token ids of the prompt as the model sees it (chat template, assistant turn opened)."""
    from dpo_course.generation import chat_prompt

    return tokenizer(chat_prompt(tokenizer, prompt), add_special_tokens=False)["input_ids"]


def response_ids(tokenizer, response: str) -> list[int]:
    """Token ids of a response, closed by the end-of-turn token so the model learns to stop."""
    return tokenizer(response + tokenizer.eos_token, add_special_tokens=False)["input_ids"]


def tokenize_pair(tokenizer, row, *, max_length: int, index: int = 0) -> dict[str, list[int]]:
    """Tokenise prompt and responses apart, then join the ids: the boundary cannot move.

    Tokenising ``prompt + response`` as one string can merge tokens across the boundary, so the
    prompt's length in tokens would point into the response. Returns ``prompt_ids``,
    ``chosen_ids`` and ``rejected_ids`` (response ids only); raises naming the row if the prompt
    leaves no room for a response within `max_length`.
    """
    check_row(row, index)
    p = prompt_ids(tokenizer, row["prompt"])
    if len(p) >= max_length:
        raise PreferenceDataError(
            f"row {index}, field 'prompt': {len(p)} tokens leave no room for a response within "
            f"max_length={max_length}; raise max_length or filter long prompts"
        )
    room = max_length - len(p)
    return {
        "prompt_ids": p,
        "chosen_ids": response_ids(tokenizer, row["chosen"])[:room],
        "rejected_ids": response_ids(tokenizer, row["rejected"])[:room],
    }


@dataclass
class PreferenceCollator:
    """Stack tokenised pairs as ``[chosen; rejected]`` (2B rows), right-padded.

    Returns ``input_ids`` (2B, T), ``attention_mask`` (2B, T) and ``completion_mask`` (2B, T),
    which is 1 on response tokens only. Rows 0..B-1 are chosen, B..2B-1 rejected.
    """

    pad_token_id: int

    def __call__(self, features: Sequence[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        seqs, masks = [], []
        for key in ("chosen_ids", "rejected_ids"):
            for f in features:
                seqs.append(list(f["prompt_ids"]) + list(f[key]))
                masks.append([0] * len(f["prompt_ids"]) + [1] * len(f[key]))
        width = max(len(s) for s in seqs)
        input_ids = torch.full((len(seqs), width), self.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(seqs), width), dtype=torch.long)
        completion_mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for i, (s, m) in enumerate(zip(seqs, masks, strict=True)):
            input_ids[i, : len(s)] = torch.tensor(s)
            attention_mask[i, : len(s)] = 1
            completion_mask[i, : len(m)] = torch.tensor(m)
        return {"input_ids": input_ids, "attention_mask": attention_mask, "completion_mask": completion_mask}


def tokenize_dataset(tokenizer, dataset, *, max_length: int) -> list[dict[str, list[int]]]:
    """Tokenise every row of a preference dataset (a `datasets.Dataset` or a list of dicts)."""
    return [tokenize_pair(tokenizer, row, max_length=max_length, index=i) for i, row in enumerate(dataset)]


# ============================================================================================
# Formats: standard rows hold strings; conversational rows hold lists of {"role", "content"}.
# Taught in 06_building_preference_data.
# ============================================================================================
Message = dict[str, str]
ROLE_NAMES = {"system": "System", "user": "User", "assistant": "Assistant"}


def _is_messages(value) -> bool:
    return isinstance(value, list) and all(
        isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str) for m in value
    )


def _assistant_text(messages: list[Message], prompt: list[Message], index: int, field: str) -> str:
    """The one assistant reply of a conversational response (a copy of the prompt in front is allowed)."""
    if prompt and messages[: len(prompt)] == prompt:
        messages = messages[len(prompt) :]  # some datasets repeat the prompt inside chosen/rejected
    if len(messages) != 1 or messages[0]["role"] != "assistant":
        roles = [m["role"] for m in messages]
        raise PreferenceDataError(f"row {index}, field {field!r}: expected one assistant message, got roles {roles}")
    return messages[0]["content"]


def render_messages(messages: list[Message]) -> str:
    """A prompt as one string: a single user turn is its text; earlier turns become a transcript.

    ``[user "Hi", assistant "Hello", user "Bye?"]`` -> ``"User: Hi\\n\\nAssistant: Hello\\n\\nUser: Bye?"``.
    """
    if len(messages) == 1 and messages[0]["role"] == "user":
        return messages[0]["content"]
    return "\n\n".join(f"{ROLE_NAMES.get(m['role'], m['role'].title())}: {m['content']}" for m in messages)


def _explicit_prompt(row) -> dict:
    """A copy of `row`; in TRL's implicit-prompt format the shared turns move into ``prompt``."""
    out = dict(row)
    if "prompt" not in row and _is_messages(row.get("chosen")) and _is_messages(row.get("rejected")):
        chosen, rejected = row["chosen"], row["rejected"]
        shared = 0
        while shared < min(len(chosen), len(rejected)) - 1 and chosen[shared] == rejected[shared]:
            shared += 1
        out["prompt"] = chosen[:shared]
        out["chosen"], out["rejected"] = chosen[shared:], rejected[shared:]
    return out


def to_standard(row, *, index: int = 0) -> dict:
    """Convert a conversational preference row to the standard format (plain-text fields).

    Accepts TRL's conversational format (``prompt``: messages, ``chosen``/``rejected``: one
    assistant message each) and its "implicit prompt" format (no ``prompt``; ``chosen`` and
    ``rejected`` are whole conversations sharing every turn but the last). A single-turn prompt
    becomes the user's text; a multi-turn prompt becomes a ``User: ... / Assistant: ...``
    transcript ending with the last user turn (`render_messages`), so no turn is lost. Standard
    rows come back unchanged; other keys are kept. Raises `PreferenceDataError` naming the row.

    Taught in 06_building_preference_data.
    """
    if not hasattr(row, "keys"):
        raise PreferenceDataError(f"row {index}: expected a dict, got {type(row).__name__}")
    out = _explicit_prompt(row)
    prompt = out.get("prompt")
    if _is_messages(prompt):
        if not prompt:
            raise PreferenceDataError(f"row {index}, field 'prompt': no messages")
        out["prompt"] = render_messages(prompt)
    for field in ("chosen", "rejected"):
        if _is_messages(out.get(field)):
            out[field] = _assistant_text(out[field], prompt if _is_messages(prompt) else [], index, field)
    return out


def to_conversational(row) -> dict:
    """A standard row as TRL's conversational format, so a trainer applies the chat template itself."""
    out = dict(row)
    out["prompt"] = [{"role": "user", "content": row["prompt"]}]
    for field in ("chosen", "rejected"):
        out[field] = [{"role": "assistant", "content": row[field]}]
    return out


# ============================================================================================
# Loaders for two public datasets, right where the usual snippets are wrong: each row becomes a
# pair or gets a `drop_reason`; then `filter` drops those rows (a `map` function cannot return
# None) and only then is the requested number of rows taken (never `select` past the end).
# ============================================================================================
HH_TURN = re.compile(r"\n\n(Human|Assistant):[ ]?")
HH_ROLES = {"Human": "user", "Assistant": "assistant"}
UF_ASPECTS = ("helpfulness", "honesty", "instruction_following", "truthfulness")


def _load_rows(path_or_id, split: str, **load_kwargs):
    """A `datasets.Dataset` from a local .jsonl/.json/.parquet file (or folder of them), or a hub id."""
    import datasets

    if isinstance(path_or_id, datasets.Dataset):
        return path_or_id
    if isinstance(path_or_id, list):
        return datasets.Dataset.from_list(path_or_id)
    path = Path(path_or_id)
    if path.exists():
        files = sorted(str(p) for p in path.glob("*.*")) if path.is_dir() else [str(path)]
        suffix = Path(files[0]).suffix.lstrip(".") if files else ""
        builder = {"jsonl": "json", "json": "json", "parquet": "parquet", "csv": "csv"}.get(suffix)
        if builder is None:
            raise ValueError(f"{path}: expected .jsonl, .json, .parquet or .csv files")
        # A local file is one split: `split` only picks among a hub dataset's splits.
        return datasets.load_dataset(builder, data_files=files, split="train")
    return datasets.load_dataset(str(path_or_id), split=split, **load_kwargs)  # hub: Colab only


def _finish(ds, name: str, fmt: str, max_rows: int | None, verbose: bool):
    if fmt not in ("conversational", "standard"):
        raise ValueError(f"format must be 'conversational' or 'standard', got {fmt!r}")
    reasons = Counter(r.split(":")[0] for r in ds["drop_reason"] if r)
    kept = ds.filter(lambda r: not r, input_columns="drop_reason").remove_columns("drop_reason")
    kept = kept.select_columns([*REQUIRED_FIELDS, *(c for c in kept.column_names if c not in REQUIRED_FIELDS)])
    if fmt == "standard":
        kept = kept.map(lambda row, i: to_standard(row, index=i), with_indices=True)
    if max_rows is not None:
        kept = kept.select(range(min(max_rows, len(kept))))
    if verbose:
        dropped = ", ".join(f"{n} {reason}" for reason, n in sorted(reasons.items())) or "none"
        print(f"{name}: kept {len(kept)} of {len(ds)} rows (dropped: {dropped})")
    return kept


def _pair(prompt: list[Message], chosen: str, rejected: str, reason: str = "", **extra) -> dict:
    return {
        "prompt": prompt,
        "chosen": [{"role": "assistant", "content": chosen}],
        "rejected": [{"role": "assistant", "content": rejected}],
        "drop_reason": reason,
        **extra,
    }


def parse_hh_transcript(text: str) -> list[Message]:
    """``"\\n\\nHuman: a\\n\\nAssistant: b"`` -> messages; `ValueError` if it is not such a transcript.

    Only a role name after a blank line starts a turn, so a reply that itself quotes
    ``"Assistant:"`` on an ordinary line stays whole (``text.rsplit("Assistant:")`` would cut it).
    """
    parts = HH_TURN.split(text)
    if parts[0].strip() or len(parts) < 3:
        raise ValueError("not a '\\n\\nHuman: ... \\n\\nAssistant: ...' transcript")
    return [{"role": HH_ROLES[role], "content": body.strip()} for role, body in zip(parts[1::2], parts[2::2], strict=True)]


def hh_rlhf_pair(example: dict) -> dict:
    """One HH-RLHF row (two whole transcripts) -> prompt messages and the two final replies.

    The transcripts are split at their LAST assistant turn: everything before it is the prompt
    (all earlier turns, as messages), the last turn is the response. Rows that cannot be a pair
    get a ``drop_reason``: ``malformed: ...`` (a transcript missing, not ending with an assistant
    turn, or the two disagreeing before the last turn), ``empty`` or ``tie``.
    """
    empty = _pair([], "", "", "")
    texts = [example.get("chosen"), example.get("rejected")]
    if not all(isinstance(t, str) for t in texts):
        return {**empty, "drop_reason": "malformed: a transcript is missing"}
    try:
        chosen, rejected = (parse_hh_transcript(t) for t in texts)
    except ValueError as err:
        return {**empty, "drop_reason": f"malformed: {err}"}
    if chosen[-1]["role"] != "assistant" or rejected[-1]["role"] != "assistant":
        return {**empty, "drop_reason": "malformed: the transcript does not end with an assistant turn"}
    if chosen[:-1] != rejected[:-1] or not chosen[:-1]:
        return {**empty, "drop_reason": "malformed: the transcripts differ before the last turn"}
    reply_c, reply_r = chosen[-1]["content"], rejected[-1]["content"]
    reason = "empty" if not reply_c or not reply_r else "tie" if reply_c == reply_r else ""
    return _pair(chosen[:-1], reply_c, reply_r, reason)


def load_hh_rlhf(
    path_or_id="Anthropic/hh-rlhf",
    split: str = "train",
    *,
    format: str = "conversational",
    max_rows: int | None = None,
    verbose: bool = True,
    **load_kwargs,
):
    """Anthropic HH-RLHF as preference pairs: ``prompt`` (all turns before the last), ``chosen``, ``rejected``.

    `path_or_id`: a local .jsonl (e.g. ``dpo_course/data_samples/hh_rlhf_sample.jsonl``) or a hub
    id (``"Anthropic/hh-rlhf"``, with ``data_dir="helpful-base"`` etc. passed on to
    `datasets.load_dataset`). Ties, empty replies and malformed rows are dropped and counted.
    ``format="standard"`` flattens the prompt with `to_standard`. Taught in 06_building_preference_data.
    """
    ds = _load_rows(path_or_id, split, **load_kwargs)
    ds = ds.map(hh_rlhf_pair, remove_columns=ds.column_names)
    return _finish(ds, "HH-RLHF", format, max_rows, verbose)


def _uf_score(completion: dict, score: str) -> float | None:
    if score == "overall":
        value = completion.get("overall_score")
        return float(value) if isinstance(value, (int, float)) else None
    ratings = []
    for aspect in UF_ASPECTS:
        rating = ((completion.get("annotations") or {}).get(aspect) or {}).get("Rating")
        try:
            ratings.append(float(rating))
        except (TypeError, ValueError):  # "N/A" or missing: that aspect was not rated
            pass
    return sum(ratings) / len(ratings) if ratings else None


def ultrafeedback_pair(example: dict, score: str = "ratings") -> dict:
    """One UltraFeedback row -> its best completion against its worst, or a ``drop_reason``.

    Raw ``openbmb/UltraFeedback`` rows (``instruction``, ``completions`` with per-aspect
    ``annotations`` ratings and an ``overall_score``) are scored by ``score="ratings"``: the mean
    of the four aspect ratings, skipping "N/A" (the choice of the binarized versions, because
    ``overall_score`` is known to be wrong on some rows), or ``"overall"``. Binarized rows
    (``chosen``/``rejected`` messages with ``score_chosen``/``score_rejected``, as in
    ``trl-lib/ultrafeedback_binarized``) are passed through. Equal scores are a ``tie``.
    """
    if score not in ("ratings", "overall"):
        raise ValueError(f"score must be 'ratings' or 'overall', got {score!r}")
    empty = _pair([], "", "", "", score_chosen=0.0, score_rejected=0.0)
    if "completions" not in example:  # binarized: already a pair
        explicit = _explicit_prompt(example)
        try:
            row = to_standard(explicit)
        except PreferenceDataError as err:
            return {**empty, "drop_reason": f"malformed: {err}"}
        prompt = explicit.get("prompt")
        prompt = prompt if _is_messages(prompt) else [{"role": "user", "content": row.get("prompt")}]
        sc, sr = example.get("score_chosen"), example.get("score_rejected")
        if not all(isinstance(v, str) for v in (row.get("prompt"), row.get("chosen"), row.get("rejected"))):
            return {**empty, "drop_reason": "malformed: a field is missing"}
        if not isinstance(sc, (int, float)) or not isinstance(sr, (int, float)):
            return {**empty, "drop_reason": "malformed: a score is missing"}
        reason = "tie" if sc == sr or row["chosen"] == row["rejected"] else ""
        return _pair(prompt, row["chosen"], row["rejected"], reason, score_chosen=float(sc), score_rejected=float(sr))
    instruction = example.get("instruction")
    if not isinstance(instruction, str) or not instruction.strip():
        return {**empty, "drop_reason": "malformed: no instruction"}
    scored = [
        (s, c["response"])
        for c in example.get("completions") or []
        if isinstance(c.get("response"), str) and c["response"].strip() and (s := _uf_score(c, score)) is not None
    ]
    if len(scored) < 2:
        return {**empty, "drop_reason": "malformed: fewer than two rated completions"}
    best = max(scored, key=lambda s: s[0])  # the first of equal bests, so the choice is reproducible
    worst = min(scored, key=lambda s: s[0])
    reason = "tie" if best[0] == worst[0] or best[1] == worst[1] else ""
    prompt = [{"role": "user", "content": instruction}]
    return _pair(prompt, best[1], worst[1], reason, score_chosen=best[0], score_rejected=worst[0])


def load_ultrafeedback(
    path_or_id="openbmb/UltraFeedback",
    split: str = "train",
    *,
    format: str = "conversational",
    score: str = "ratings",
    max_rows: int | None = None,
    verbose: bool = True,
    **load_kwargs,
):
    """UltraFeedback as best-vs-worst pairs with their scores; ties and malformed rows dropped.

    `path_or_id`: a local .jsonl in the raw ``openbmb/UltraFeedback`` format (e.g.
    ``dpo_course/data_samples/ultrafeedback_sample.jsonl``) or in the binarized format, or a hub
    id. See `ultrafeedback_pair` for the scoring. Taught in 06_building_preference_data.
    """
    ds = _load_rows(path_or_id, split, **load_kwargs)
    ds = ds.map(ultrafeedback_pair, fn_kwargs={"score": score}, remove_columns=ds.column_names)
    return _finish(ds, "UltraFeedback", format, max_rows, verbose)


# ============================================================================================
# Quality checks. Taught in 06_building_preference_data.
# ============================================================================================
# Row-level problems, in report order. The first two are fatal: no trainer can use such a row.
ISSUES = {
    "missing_field": "a field is missing or None",
    "not_a_string": "a field is neither a string nor a list of messages",
    "empty": "prompt or a response is empty",
    "tie": "chosen and rejected are identical",
    "duplicate": "exact copy of an earlier row",
    "test_leak": "prompt also appears in test_ds",
    "prompt_too_long": "prompt leaves no room for a response within max_length",
    "truncated": "a response is cut to fit max_length",
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
        return self.mean_chosen_length / self.mean_rejected_length if self.mean_rejected_length else float("nan")

    @property
    def length_imbalanced(self) -> bool:
        """Chosen responses are, on average, `length_ratio` times longer than rejected ones (or shorter)."""
        r = self.mean_length_ratio
        return r == r and (r > self.length_ratio or r < 1 / self.length_ratio)

    @property
    def fatal(self) -> bool:
        return any(self.issues[k] for k in FATAL)

    @property
    def ok(self) -> bool:
        return not any(self.issues.values()) and not self.length_imbalanced

    def rows_to_drop(self, kinds: Sequence[str] = ("missing_field", "not_a_string", "empty", "tie", "duplicate", "test_leak", "prompt_too_long")) -> list[int]:
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
            + ("  <- LENGTH IMBALANCE: DPO may learn length instead of quality" if self.length_imbalanced else "")
        )
        return "\n".join(lines + [f"  ! {m}" for m in self.messages])


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
    unless ``raise_on_fatal=False``), empty prompts or responses, ties (chosen == rejected), exact
    duplicates of an earlier row, prompts that also occur in `test_ds` (compared case- and
    whitespace-insensitively), and with a `tokenizer` and `max_length` prompts too long to leave
    room for a response and responses that will be truncated. Lengths are in tokens when a
    tokenizer is given, else in words; the report flags a mean chosen/rejected length ratio
    beyond `length_ratio` (either way), the bias DPO is known to pick up. Conversational rows
    are converted with `to_standard` first. Taught in 06_building_preference_data.
    """
    issues: dict[str, list[int]] = {kind: [] for kind in ISSUES}
    notes: dict[int, str] = {}
    test_prompts = set()
    for row in test_ds if test_ds is not None else []:
        prompt = row.get("prompt") if hasattr(row, "keys") else None
        if _is_messages(prompt):
            prompt = render_messages(prompt)
        if isinstance(prompt, str):
            test_prompts.add(_normalise(prompt))
    seen: set[tuple[str, str, str]] = set()
    lengths: list[tuple[int, int]] = []
    n = 0
    for i, raw in enumerate(ds):
        n += 1
        if not hasattr(raw, "keys"):
            issues["not_a_string"].append(i)
            notes[i] = f"row {i}: expected a dict, got {type(raw).__name__}"
            continue
        missing = [f for f in REQUIRED_FIELDS if raw.get(f) is None and not (f == "prompt" and _is_messages(raw.get("chosen")))]
        if missing:
            issues["missing_field"].append(i)
            notes[i] = f"row {i}: missing field {missing[0]!r}"
            continue
        try:
            row = to_standard(raw, index=i)
        except PreferenceDataError as err:
            issues["not_a_string"].append(i)
            notes[i] = str(err)
            continue
        wrong = [f for f in REQUIRED_FIELDS if not isinstance(row[f], str)]
        if wrong:
            issues["not_a_string"].append(i)
            notes[i] = f"row {i}, field {wrong[0]!r}: expected a str or a list of messages, got {type(row[wrong[0]]).__name__}"
            continue
        p, c, r = row["prompt"], row["chosen"], row["rejected"]
        if not (p.strip() and c.strip() and r.strip()):
            issues["empty"].append(i)
        if c == r:
            issues["tie"].append(i)
        key = (p, c, r)
        if key in seen:
            issues["duplicate"].append(i)
        seen.add(key)
        if _normalise(p) in test_prompts:
            issues["test_leak"].append(i)
        if tokenizer is not None:
            lc, lr = len(response_ids(tokenizer, c)), len(response_ids(tokenizer, r))
            if max_length is not None:
                lp = len(prompt_ids(tokenizer, p))
                if lp >= max_length:
                    issues["prompt_too_long"].append(i)
                elif lp + max(lc, lr) > max_length:
                    issues["truncated"].append(i)
        else:
            lc, lr = len(c.split()), len(r.split())
        lengths.append((lc, lr))
        if lc > length_ratio * max(lr, 1):
            issues["chosen_much_longer"].append(i)
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
        bad = sorted(i for k in FATAL for i in issues[k])
        listed = "; ".join(notes[i] for i in bad[:5]) + ("; ..." if len(bad) > 5 else "")
        raise PreferenceDataError(
            f"{len(bad)} of {n} rows cannot be used: {listed}. Fix or drop them "
            "(raise_on_fatal=False lists them all in the report's issues)."
        )
    return report

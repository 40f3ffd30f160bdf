"""Tokenising preference pairs so the prompt/completion boundary is exact, and the `[chosen; rejected]` collator.

Taught in 02_dpo_loss_from_scratch. A batch stacks ``[chosen; rejected]`` on dim 0 so one forward pass scores both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

REQUIRED_FIELDS = ("prompt", "chosen", "rejected")


class PreferenceDataError(ValueError):
    """A preference row that cannot be used, with the row index and the field in the message."""


def check_row(row, index: int) -> None:
    """Raise `PreferenceDataError` naming `index` and the field if `row` is not a usable pair."""
    if not hasattr(row, "keys"):
        raise PreferenceDataError(
            f"row {index}: expected a dict with prompt/chosen/rejected, got {type(row).__name__}"
        )
    for field in REQUIRED_FIELDS:
        if field not in row:
            raise PreferenceDataError(f"row {index}: missing field {field!r} (it has {sorted(row.keys())})")
        value = row[field]
        if not isinstance(value, str):
            raise PreferenceDataError(
                f"row {index}, field {field!r}: expected a str, got {type(value).__name__}"
                + (
                    " (conversational rows: convert them with dpo_course.data.to_standard first)"
                    if isinstance(value, list)
                    else ""
                )
            )
        if not value.strip():
            raise PreferenceDataError(f"row {index}, field {field!r}: empty string")
    if row["chosen"] == row["rejected"]:
        raise PreferenceDataError(
            f"row {index}: 'chosen' and 'rejected' are identical, so there is no preference"
        )


def prompt_ids(tokenizer, prompt: str) -> list[int]:
    """Token ids of the prompt as the model sees it (chat template, assistant turn opened)."""
    from dpo_course._generation import chat_prompt

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

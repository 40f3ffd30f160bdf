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


def completion_ids(tokenizer, completion: str) -> list[int]:
    """Token ids of a completion, closed by the end-of-turn token so the model learns to stop."""
    return tokenizer(completion + tokenizer.eos_token, add_special_tokens=False)["input_ids"]


def tokenize_pair(tokenizer, row, *, max_length: int, index: int = 0) -> dict[str, list[int]]:
    """Tokenise prompt and completions apart, then join the ids: the boundary cannot move.

    Tokenising ``prompt + completion`` as one string can merge tokens across the boundary, so the
    prompt's length in tokens would point into the completion. Returns ``prompt_ids``,
    ``chosen_ids`` and ``rejected_ids`` (completion ids only); raises naming the row if the prompt
    leaves no room for a completion within `max_length`.
    """
    check_row(row, index)
    p = prompt_ids(tokenizer, row["prompt"])
    if len(p) >= max_length:
        raise PreferenceDataError(
            f"row {index}, field 'prompt': {len(p)} tokens leave no room for a completion within "
            f"max_length={max_length}; raise max_length or filter long prompts"
        )
    room = max_length - len(p)
    return {
        "prompt_ids": p,
        "chosen_ids": completion_ids(tokenizer, row["chosen"])[:room],
        "rejected_ids": completion_ids(tokenizer, row["rejected"])[:room],
    }


def right_pad(rows: Sequence[Sequence[int]], pad_value: int, *, width: int | None = None) -> torch.Tensor:
    """Stack rows of different lengths into one ``(B, T)`` long tensor, padded on the right with `pad_value`.

    ``T`` is the longest row unless `width` is given. The one right-padding routine of the package: the
    collators below and the evaluation code build every batch with it. Taught in 02_dpo_loss_from_scratch.
    """
    width = max((len(r) for r in rows), default=0) if width is None else width
    out = torch.full((len(rows), width), pad_value, dtype=torch.long)  # (B, T)
    for i, r in enumerate(rows):
        out[i, : len(r)] = torch.as_tensor(list(r), dtype=torch.long)
    return out


def collate_completions(
    prompts: Sequence[Sequence[int]], completions: Sequence[Sequence[int]], pad_token_id: int
) -> dict[str, torch.Tensor]:
    """Right-padded rows ``prompt + completion``: ``input_ids``, ``attention_mask``, ``completion_mask``, each (B, T).

    ``completion_mask`` is 1 on completion tokens only. Row i joins ``prompts[i]`` and ``completions[i]``;
    `PreferenceCollator` calls it with ``[chosen; rejected]``, KTO with ``[matched; mismatched]`` rows.
    Taught in 02_dpo_loss_from_scratch.
    """
    if len(prompts) != len(completions):
        raise ValueError(f"{len(prompts)} prompts but {len(completions)} completions")
    rows = [list(p) + list(c) for p, c in zip(prompts, completions)]
    return {
        "input_ids": right_pad(rows, pad_token_id),
        "attention_mask": right_pad([[1] * len(r) for r in rows], 0),
        "completion_mask": right_pad([[0] * len(p) + [1] * len(c) for p, c in zip(prompts, completions)], 0),
    }


@dataclass
class PreferenceCollator:
    """Stack tokenised pairs as ``[chosen; rejected]`` (2B rows), right-padded.

    Returns ``input_ids`` (2B, T), ``attention_mask`` (2B, T) and ``completion_mask`` (2B, T),
    which is 1 on completion tokens only. Rows 0..B-1 are chosen, B..2B-1 rejected.
    """

    pad_token_id: int

    def __call__(self, features: Sequence[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        prompts = [f["prompt_ids"] for f in features]
        completions = [f["chosen_ids"] for f in features] + [f["rejected_ids"] for f in features]
        return collate_completions(prompts + prompts, completions, self.pad_token_id)


def tokenize_dataset(tokenizer, dataset, *, max_length: int) -> list[dict[str, list[int]]]:
    """Tokenise every row of a preference dataset (a `datasets.Dataset` or a list of dicts)."""
    return [tokenize_pair(tokenizer, row, max_length=max_length, index=i) for i, row in enumerate(dataset)]

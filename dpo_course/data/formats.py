"""The two dataset formats TRL reads: standard (strings) and conversational (lists of messages).

Taught in 06_building_preference_data.
"""

from __future__ import annotations

from dpo_course.data.tokenize import PreferenceDataError

# ============================================================================================
# Formats: standard rows hold strings; conversational rows hold lists of {"role", "content"}.
# Taught in 06_building_preference_data.
# ============================================================================================
Message = dict[str, str]
ROLE_NAMES = {"system": "System", "user": "User", "assistant": "Assistant"}


def _is_messages(value) -> bool:
    return isinstance(value, list) and all(
        isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
        for m in value
    )


def _assistant_text(messages: list[Message], prompt: list[Message], index: int, field: str) -> str:
    """The one assistant reply of a conversational completion (a copy of the prompt in front is allowed)."""
    if prompt and messages[: len(prompt)] == prompt:
        messages = messages[len(prompt) :]  # some datasets repeat the prompt inside chosen/rejected
    if len(messages) != 1 or messages[0]["role"] != "assistant":
        roles = [m["role"] for m in messages]
        raise PreferenceDataError(
            f"row {index}, field {field!r}: expected one assistant message, got roles {roles}"
        )
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

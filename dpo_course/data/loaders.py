"""Loaders for the public preference datasets (HH-RLHF, UltraFeedback), tested on shipped sample files.

Taught in 06_building_preference_data.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from pathlib import Path

from dpo_course.data.formats import Message, _explicit_prompt, _is_messages, to_standard
from dpo_course.data.pairs import PAIRINGS, pick_pair
from dpo_course.data.tokenize import REQUIRED_FIELDS, PreferenceDataError

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
        if builder == "json":
            for file in files:
                _check_json(Path(file))
        # A local file is one split: `split` only picks among a hub dataset's splits.
        return datasets.load_dataset(builder, data_files=files, split="train")
    return datasets.load_dataset(str(path_or_id), split=split, **load_kwargs)  # hub: Colab only


def _check_json(path: Path) -> None:
    """Raise `PreferenceDataError` naming the file and line of the first bad JSON in `path`.

    `datasets` reports a bad line as a bare pyarrow or JSON error with neither; one pass over the
    text finds it first. A file that parses as one JSON document is fine; otherwise it is read as
    JSON Lines, unless it opens with ``[`` (then the document's own error line is reported).
    """
    text = path.read_text(encoding="utf-8")
    try:
        json.loads(text)
        return
    except json.JSONDecodeError as err:
        if text.lstrip().startswith("["):
            raise PreferenceDataError(
                f"{path}, line {err.lineno}: not valid JSON ({err.msg}, column {err.colno})"
            ) from None
    for line_no, line in enumerate(text.splitlines(), start=1):
        try:
            if line.strip():
                json.loads(line)
        except json.JSONDecodeError as err:
            raise PreferenceDataError(
                f"{path}, line {line_no}: not valid JSON ({err.msg}, column {err.colno})"
            ) from None


def _finish(ds, name: str, fmt: str, max_rows: int | None, verbose: bool):
    if fmt not in ("conversational", "standard"):
        raise ValueError(f"format must be 'conversational' or 'standard', got {fmt!r}")
    reasons = Counter(r.split(":")[0] for r in ds["drop_reason"] if r)
    kept = ds.filter(lambda r: not r, input_columns="drop_reason").remove_columns("drop_reason")
    kept = kept.select_columns(
        [*REQUIRED_FIELDS, *(c for c in kept.column_names if c not in REQUIRED_FIELDS)]
    )
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
    return [
        {"role": HH_ROLES[role], "content": body.strip()}
        for role, body in zip(parts[1::2], parts[2::2], strict=True)
    ]


def hh_rlhf_pair(example: dict) -> dict:
    """One HH-RLHF row (two whole transcripts) -> prompt messages and the two final replies.

    The transcripts are split at their LAST assistant turn: everything before it is the prompt
    (all earlier turns, as messages), the last turn is the completion. Rows that cannot be a pair
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

    `path_or_id`: a local .jsonl (e.g. ``dpo_course/data/samples/hh_rlhf_sample.jsonl``) or a hub
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


def _binarized_pair(example: dict, empty: dict) -> dict:
    """A row already binarized (``chosen``/``rejected`` with ``score_chosen``/``score_rejected``)."""
    explicit = _explicit_prompt(example)
    try:
        row = to_standard(explicit)
    except PreferenceDataError as err:
        return {**empty, "drop_reason": f"malformed: {err}"}
    prompt = explicit.get("prompt")
    prompt = prompt if _is_messages(prompt) else [{"role": "user", "content": row.get("prompt")}]
    sc, sr = example.get("score_chosen"), example.get("score_rejected")
    if not all(isinstance(row.get(f), str) for f in REQUIRED_FIELDS):
        return {**empty, "drop_reason": "malformed: a field is missing"}
    if not isinstance(sc, (int, float)) or not isinstance(sr, (int, float)):
        return {**empty, "drop_reason": "malformed: a score is missing"}
    reason = "tie" if sc == sr or row["chosen"] == row["rejected"] else ""
    return _pair(
        prompt, row["chosen"], row["rejected"], reason, score_chosen=float(sc), score_rejected=float(sr)
    )


def ultrafeedback_pair(
    example: dict, score: str = "ratings", pairing: str = "best_worst", seed: int = 0
) -> dict:
    """One UltraFeedback row -> its best completion against a lower-rated one, or a ``drop_reason``.

    Raw ``openbmb/UltraFeedback`` rows (``instruction``, ``completions`` with per-aspect
    ``annotations`` ratings and an ``overall_score``) are scored by ``score="ratings"``: the mean
    of the four aspect ratings, skipping "N/A" (the choice of the binarized versions, because
    ``overall_score`` is known to be wrong on some rows), or ``"overall"``. The pair is
    `dpo_course.data.pick_pair` of the scores: ``pairing="best_worst"`` (the lowest-rated
    completion) or ``"best_random"`` (a random lower-rated one, as the Zephyr and Argilla
    binarizations do; drawn from a generator seeded by `seed` and the instruction, so a row
    always gets the same pair). All scores equal, or the two texts equal, is a ``tie``.
    Binarized rows (``chosen``/``rejected`` messages with ``score_chosen``/``score_rejected``, as
    in ``trl-lib/ultrafeedback_binarized``) are passed through.
    """
    if score not in ("ratings", "overall"):
        raise ValueError(f"score must be 'ratings' or 'overall', got {score!r}")
    if pairing not in PAIRINGS:
        raise ValueError(f"pairing must be one of {PAIRINGS}, got {pairing!r}")
    empty = _pair([], "", "", "", score_chosen=0.0, score_rejected=0.0)
    if "completions" not in example:
        return _binarized_pair(example, empty)
    instruction = example.get("instruction")
    if not isinstance(instruction, str) or not instruction.strip():
        return {**empty, "drop_reason": "malformed: no instruction"}
    scored = [
        (s, c["response"])  # "response" is UltraFeedback's own key for a completion's text
        for c in example.get("completions") or []
        if isinstance(c.get("response"), str)
        and c["response"].strip()
        and (s := _uf_score(c, score)) is not None
    ]
    if len(scored) < 2:
        return {**empty, "drop_reason": "malformed: fewer than two rated completions"}
    picked = pick_pair([s for s, _ in scored], pairing=pairing, rng=random.Random(f"{seed}:{instruction}"))
    best, worst = (scored[i] for i in picked or (0, 1))  # all equal: a tie, dropped below
    reason = "tie" if picked is None or best[1] == worst[1] else ""
    prompt = [{"role": "user", "content": instruction}]
    return _pair(prompt, best[1], worst[1], reason, score_chosen=best[0], score_rejected=worst[0])


def load_ultrafeedback(
    path_or_id="openbmb/UltraFeedback",
    split: str = "train",
    *,
    format: str = "conversational",
    score: str = "ratings",
    pairing: str = "best_worst",
    seed: int = 0,
    max_rows: int | None = None,
    verbose: bool = True,
    **load_kwargs,
):
    """UltraFeedback as pairs with their scores; ties and malformed rows dropped.

    `path_or_id`: a local .jsonl in the raw ``openbmb/UltraFeedback`` format (e.g.
    ``dpo_course/data/samples/ultrafeedback_sample.jsonl``) or in the binarized format, or a hub
    id. See `ultrafeedback_pair` for the scoring and for `pairing` (``"best_worst"`` or
    ``"best_random"``, seeded by `seed`). Taught in 06_building_preference_data.
    """
    ds = _load_rows(path_or_id, split, **load_kwargs)
    kwargs = {"score": score, "pairing": pairing, "seed": seed}
    ds = ds.map(ultrafeedback_pair, fn_kwargs=kwargs, remove_columns=ds.column_names)
    return _finish(ds, "UltraFeedback", format, max_rows, verbose)

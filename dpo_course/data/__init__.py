"""Preference data: from a dataset row to the tensors a DPO step reads.

- tokenize.py: the prompt/completion boundary, the completion mask and the ``[chosen; rejected]`` collator (02).
- formats.py: TRL's standard and conversational formats (06).
- loaders.py: HH-RLHF and UltraFeedback, tested on the shipped sample files in ``samples/`` (06).
- validate.py: quality checks before training (06).
- pairs.py: turning scored or judged completions into pairs, one tie rule (`pick_pair`) (06).
"""

from pathlib import Path

from dpo_course.data.formats import Message, render_messages, to_conversational, to_standard
from dpo_course.data.loaders import (
    hh_rlhf_pair,
    load_hh_rlhf,
    load_ultrafeedback,
    parse_hh_transcript,
    ultrafeedback_pair,
)
from dpo_course.data.pairs import (
    PAIRINGS,
    VERDICTS,
    check_verdict,
    judged_pairs,
    pair_groups,
    pick_pair,
    round_robin_wins,
    tiered_sample,
)
from dpo_course.data.tokenize import (
    REQUIRED_FIELDS,
    PreferenceCollator,
    PreferenceDataError,
    check_row,
    collate_completions,
    completion_ids,
    prompt_ids,
    right_pad,
    tokenize_dataset,
    tokenize_pair,
)
from dpo_course.data.validate import PreferenceDataReport, validate_preference_dataset

SAMPLES_DIR = Path(__file__).resolve().parent / "samples"
"""Small files shaped like the real datasets (HH-RLHF, UltraFeedback), shipped with the package."""

__all__ = [
    "REQUIRED_FIELDS",
    "SAMPLES_DIR",
    "VERDICTS",
    "Message",
    "PAIRINGS",
    "PreferenceCollator",
    "PreferenceDataError",
    "PreferenceDataReport",
    "check_row",
    "check_verdict",
    "collate_completions",
    "completion_ids",
    "hh_rlhf_pair",
    "judged_pairs",
    "load_hh_rlhf",
    "load_ultrafeedback",
    "pair_groups",
    "parse_hh_transcript",
    "pick_pair",
    "prompt_ids",
    "render_messages",
    "right_pad",
    "round_robin_wins",
    "tiered_sample",
    "to_conversational",
    "to_standard",
    "tokenize_dataset",
    "tokenize_pair",
    "ultrafeedback_pair",
    "validate_preference_dataset",
]

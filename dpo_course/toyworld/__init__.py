"""The toy world: a tiny offline assistant domain in which DPO visibly works on a laptop.

Taught in 00_welcome. Public API: `load_sft_model`, `load_base_model`, `reward`, `judge`,
`eval_prompts`, `preference_pairs`, `on_policy_pairs`; for building answers by hand, `parse_prompt` (the fact a
prompt asks about), `write_response` (an answer to it in a given style), `is_correct`, and `preference_rows`
(the templated pairs with each rejected answer's style).
"""

from dpo_course.toyworld.corpus import (
    eval_prompts,
    preference_pairs,
    preference_rows,
    sft_examples,
    train_prompts,
)
from dpo_course.toyworld.domain import (
    STYLES,
    classify,
    is_correct,
    judge,
    parse_prompt,
    reward,
    write_response,
)
from dpo_course.toyworld.models import (
    base_model_source,
    load_base_model,
    load_sft_model,
    model_source,
    on_policy_pairs,
)

__all__ = [
    "STYLES",
    "base_model_source",
    "classify",
    "eval_prompts",
    "is_correct",
    "judge",
    "load_base_model",
    "load_sft_model",
    "model_source",
    "on_policy_pairs",
    "parse_prompt",
    "preference_pairs",
    "preference_rows",
    "reward",
    "sft_examples",
    "train_prompts",
    "write_response",
]

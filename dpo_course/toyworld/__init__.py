"""The toy world: a tiny offline assistant domain in which DPO visibly works on a laptop.

Taught in 00_welcome. Public API: `load_sft_model`, `load_base_model`, `reward`, `judge`,
`eval_prompts`, `preference_pairs`, `on_policy_pairs`.
"""

from dpo_course.toyworld.corpus import eval_prompts, preference_pairs, sft_examples, train_prompts
from dpo_course.toyworld.domain import STYLES, classify, judge, reward
from dpo_course.toyworld.models import load_base_model, load_sft_model, model_source, on_policy_pairs

__all__ = [
    "STYLES",
    "classify",
    "eval_prompts",
    "judge",
    "load_base_model",
    "load_sft_model",
    "model_source",
    "on_policy_pairs",
    "preference_pairs",
    "reward",
    "sft_examples",
    "train_prompts",
]

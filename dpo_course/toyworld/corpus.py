"""Splits and datasets of the toy world: SFT data, preference pairs, held-out prompts.

Taught in 00_welcome. The split is fixed by a seed: an evaluation prompt never appears in the SFT
data nor in any preference pair (its fact does, in another phrasing, so the model can know it).
"""

from __future__ import annotations

import random
from functools import lru_cache

from dpo_course.toyworld.domain import STYLES, Item, all_items, write_response

SPLIT_SEED = 1234
# How many facts of each kind lend one phrasing to the held-out evaluation prompts.
EVAL_ITEMS = {"capital": 12, "arithmetic": 28, "code": 8}
TEST_PAIR_PROMPTS = 100
# The SFT model's average mix of styles; each fact gets its own mix around it (see style_mix).
BASE_MIX = {"concise": 0.45, "verbose": 0.25, "wrong": 0.15, "refusal": 0.15}
MIX_CONCENTRATION = 6.0
# Off-policy pairs: the concise correct answer against each of these in turn.
REJECTED_STYLES = ["wrong", "verbose", "refusal"]
PAIRS_PER_PROMPT = 1


@lru_cache(maxsize=1)
def _splits() -> dict[str, list[tuple[Item, int]]]:
    rng = random.Random(SPLIT_SEED)
    items = all_items()
    by_kind: dict[str, list[Item]] = {}
    for item in items:
        by_kind.setdefault(item.kind, []).append(item)
    held_out: dict[Item, int] = {}
    for kind, count in EVAL_ITEMS.items():
        for item in rng.sample(by_kind[kind], count):
            held_out[item] = rng.randrange(4)
    eval_prompts, pool = [], []
    for item in items:
        for phrasing in range(4):
            (eval_prompts if held_out.get(item) == phrasing else pool).append((item, phrasing))
    rng.shuffle(pool)
    return {
        "eval": eval_prompts,
        "test": pool[:TEST_PAIR_PROMPTS],
        "train": pool[TEST_PAIR_PROMPTS:],
    }


def _prompts(split: str) -> list[tuple[Item, int]]:
    if split not in ("train", "test", "eval"):
        raise ValueError(f"split must be 'train', 'test' or 'eval', got {split!r}")
    return _splits()[split]


def eval_prompts() -> list[str]:
    """Held-out prompts for evaluation: in neither the SFT data nor any preference pair."""
    return [item.prompt(p) for item, p in _prompts("eval")]


def train_prompts(split: str = "train") -> list[str]:
    """Prompts of the preference split `split` ("train" or "test"); the SFT data uses both."""
    if split == "eval":
        raise ValueError("use eval_prompts() for the held-out evaluation prompts")
    return [item.prompt(p) for item, p in _prompts(split)]


def style_mix(item: Item) -> dict[str, float]:
    """This fact's mix of styles in the SFT data: a Dirichlet draw around `BASE_MIX`, fixed by seed."""
    rng = random.Random(f"mix:{item.item_id}")
    draws = [rng.gammavariate(MIX_CONCENTRATION * BASE_MIX[s], 1.0) for s in STYLES]
    total = sum(draws)
    return {s: d / total for s, d in zip(STYLES, draws)}


def sft_examples(samples_per_prompt: int = 3, seed: int = 0) -> list[dict[str, str]]:
    """The SFT corpus: chat examples whose styles follow each fact's mix. Keys: prompt, response, style."""
    rng = random.Random(seed)
    rows = []
    for item, phrasing in _prompts("train") + _prompts("test"):
        mix = style_mix(item)
        for _ in range(samples_per_prompt):
            style = rng.choices(STYLES, weights=[mix[s] for s in STYLES])[0]
            rows.append(
                {
                    "prompt": item.prompt(phrasing),
                    "response": write_response(item, style, rng),
                    "style": style,
                }
            )
    return rows


def pretraining_text() -> list[str]:
    """Plain sentences stating the world's facts, for the base model (no chat format)."""
    rng = random.Random(7)
    lines = []
    for item in all_items():
        lines.append(write_response(item, "concise", rng))
        lines.append(item.prompt(rng.randrange(4)) + " " + write_response(item, "concise", rng))
    return lines


def preference_rows(
    split: str = "train", seed: int = 0, pairs_per_prompt: int = PAIRS_PER_PROMPT
) -> list[dict[str, str]]:
    """Templated (off-policy) pairs as dicts: the concise correct answer against other styles.

    Each fact's prompts cycle through the rejected styles (wrong, verbose, refusal) in a seeded
    order, so every fact has its own wrong answer rejected at least once.
    """
    rng = random.Random(f"pairs:{split}:{seed}")
    cycle_pos: dict[str, int] = {}
    orders: dict[str, list[str]] = {}
    rows = []
    for item, phrasing in _prompts(split):
        if item.item_id not in orders:
            orders[item.item_id] = rng.sample(REJECTED_STYLES, len(REJECTED_STYLES))
            cycle_pos[item.item_id] = 0
        for _ in range(pairs_per_prompt):
            order = orders[item.item_id]
            style = order[cycle_pos[item.item_id] % len(order)]
            cycle_pos[item.item_id] += 1
            rows.append(
                {
                    "prompt": item.prompt(phrasing),
                    "chosen": write_response(item, "concise", rng),
                    "rejected": write_response(item, style, rng),
                    "rejected_style": style,
                }
            )
    return rows


def preference_pairs(split: str = "train"):
    """Templated preference pairs as a `datasets.Dataset` with plain-text prompt/chosen/rejected.

    Taught in 00_welcome and 03_training_with_trl. ``split`` is "train" (632 pairs) or "test"
    (100 pairs, on prompts absent from "train"); neither contains an evaluation prompt.
    """
    from datasets import Dataset

    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    rows = [{k: r[k] for k in ("prompt", "chosen", "rejected")} for r in preference_rows(split)]
    return Dataset.from_list(rows)

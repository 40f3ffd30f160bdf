"""Loading the toy world's models, the real-model switch, and on-policy preference pairs.

Taught in 00_welcome (loading) and 06_building_preference_data (on-policy pairs).

The real-model switch: set the environment variable ``DPO_COURSE_MODEL`` (or pass ``model_id=``)
to a Hugging Face model id such as ``Qwen/Qwen2.5-0.5B-Instruct`` and `load_sft_model` loads that
model instead of the toy one. The default, ``"toy"``, never touches the network.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from dpo_course._device import get_device

ASSETS = Path(__file__).parent / "assets"
CACHE = Path(os.environ.get("DPO_COURSE_CACHE", Path.home() / ".cache" / "dpo_course"))
TOY = "toy"


def model_source(model_id: str | None = None) -> str:
    """Which model the course uses: ``model_id``, else ``$DPO_COURSE_MODEL``, else ``"toy"``."""
    chosen = model_id or os.environ.get("DPO_COURSE_MODEL") or TOY
    if not isinstance(chosen, str):
        raise TypeError(f"model_id must be a str, got {type(chosen).__name__}")
    return chosen.strip()


TOY_MODELS = ("sft", "base", "base_long")


def toy_model_dir(which: str = "sft") -> Path:
    """Folder of the toy model `which` ("sft", "base" or "base_long"): the committed assets, else a built cache."""
    if which not in TOY_MODELS:
        raise ValueError(f"which must be one of {TOY_MODELS}, got {which!r}")
    shipped = ASSETS / which
    if (shipped / "model.safetensors").exists():
        return shipped
    cached = CACHE / "toy" / which
    if not (cached / "model.safetensors").exists():
        from dpo_course.toyworld.build import build_all, build_long_base

        print(f"The toy model is not in the package; building it into {CACHE / 'toy'} (a few minutes)...")
        if which == "base_long" and (CACHE / "toy" / "base" / "model.safetensors").exists():
            build_long_base(CACHE / "toy")
        else:
            build_all(CACHE / "toy")
    return cached


def _load(folder_or_id: str | Path, device, dtype=None):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = get_device() if device is None else device
    tokenizer = AutoTokenizer.from_pretrained(folder_or_id)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    kwargs = {} if dtype is None else {"dtype": dtype}
    model = AutoModelForCausalLM.from_pretrained(folder_or_id, **kwargs).to(device)
    model.eval()
    return model, tokenizer


def _load_real(source: str, device, dtype):
    """A hub id or a local folder: bf16 where the GPU has it, else fp32 (a T4's fp16 cannot hold small updates)."""
    import torch

    dev = get_device() if device is None else torch.device(device)
    if dtype is None and dev.type == "cuda" and torch.cuda.is_bf16_supported():
        dtype = torch.bfloat16
    local = Path(source).expanduser()
    return _load(local if local.is_dir() else source, dev, dtype)


def load_sft_model(device=None, *, model_id: str | None = None, dtype=None):
    """Load the SFT model and its tokenizer: the starting point for DPO ("always SFT first").

    Returns ``(model, tokenizer)``, the model in eval mode on `device` (default: `get_device()`).
    The toy model loads with `from_pretrained(folder)` exactly as a hub model does; `model_id` (default
    ``$DPO_COURSE_MODEL``) may also be a hub id or a local `save_pretrained` folder. `dtype` (real models
    only) overrides the default: bf16 on a GPU that has it, else fp32.
    """
    source = model_source(model_id)
    if source == TOY:
        return _load(toy_model_dir("sft"), device)
    return _load_real(source, device, dtype)


def base_model_source(model_id: str | None = None) -> str:
    """The base (pre-SFT) model paired with `model_id`: ``$DPO_COURSE_BASE_MODEL`` if set, else the id
    without its ``-Instruct`` suffix (Qwen/Qwen2.5-0.5B-Instruct -> Qwen/Qwen2.5-0.5B), else `model_id` itself."""
    source = model_source(model_id)
    if source == TOY:
        return TOY
    explicit = os.environ.get("DPO_COURSE_BASE_MODEL", "").strip()
    if explicit:
        return explicit
    for suffix in ("-Instruct", "-instruct", "-Chat", "-chat"):
        if source.endswith(suffix) and not Path(source).expanduser().is_dir():
            return source[: -len(suffix)]
    return source


def load_base_model(device=None, *, model_id: str | None = None, dtype=None, long_pretraining: bool = False):
    """The model before SFT: for the toy, pre-trained on plain sentences, it knows no chat format.

    Taught in 03_training_with_trl (SFT from it) and 05_variants, where ORPO trains it in one stage
    without a reference model. ``long_pretraining=True`` loads the toy's second base, ``base_long``:
    the same pre-training continued for 36 more epochs (48 in all, against the base's 12), so that it
    knows the facts (the base barely does) and ORPO can raise the held-out reward; the SFT model is
    built from the base, not from it. With the real-model switch (`model_id`, default
    ``$DPO_COURSE_MODEL``) it loads `base_model_source(model_id)` and ignores `long_pretraining`: a real
    base model has been pre-trained at scale already.
    """
    source = base_model_source(model_id)
    if source == TOY:
        return _load(toy_model_dir("base_long" if long_pretraining else "base"), device)
    return _load_real(source, device, dtype)


def on_policy_pairs(
    model,
    tokenizer,
    prompts: list[str],
    *,
    num_samples: int = 4,
    temperature: float = 1.0,
    max_new_tokens: int = 64,
    seed: int = 0,
    reward_fn=None,
    pairing: str = "best_worst",
):
    """Sample `num_samples` completions per prompt and pair them by reward with `data.pick_pair`.

    Taught in 08_dpo_vs_online_rl (06_building_preference_data builds the same pairs by hand with
    `pick_pair`). ``pairing="best_worst"`` pairs the best sample against
    the worst, ``"best_random"`` against a random lower-rewarded one (seeded by `seed`); equal
    rewards follow `pick_pair`'s tie rule (the first of equals, in sampling order). Empty samples
    (the model ended its turn at once) are skipped before pairing: an empty completion is no
    answer to prefer or reject. Prompts left with fewer than two samples, or whose samples all tie,
    give no pair. Returns a `datasets.Dataset` with prompt/chosen/rejected and the two rewards.
    """
    from datasets import Dataset

    from dpo_course._generation import generate
    from dpo_course.data.pairs import PAIRINGS, pair_groups
    from dpo_course.toyworld.domain import reward

    if num_samples < 2:
        raise ValueError(f"num_samples must be at least 2 to make a pair, got {num_samples}")
    if not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be a finite number > 0, got {temperature}")
    if pairing not in PAIRINGS:
        raise ValueError(f"pairing must be one of {PAIRINGS}, got {pairing!r}")
    reward_fn = reward_fn or reward
    repeated = [p for p in prompts for _ in range(num_samples)]
    samples = generate(
        model,
        tokenizer,
        repeated,
        do_sample=True,
        temperature=temperature,
        max_new_tokens=max_new_tokens,
        seed=seed,
    )
    # Empty samples are no answers: drop them, then prompts with fewer than two samples left.
    groups = [
        [c for c in samples[i * num_samples : (i + 1) * num_samples] if c.strip()]
        for i in range(len(prompts))
    ]
    kept = [(p, g) for p, g in zip(prompts, groups, strict=True) if len(g) >= 2]
    rewards = [[reward_fn(p, c) for c in g] for p, g in kept]
    picked = pair_groups([p for p, _ in kept], [g for _, g in kept], rewards, pairing=pairing, seed=seed)
    rows = [
        {"prompt": p, "chosen": g[b], "rejected": g[w], "chosen_reward": r[b], "rejected_reward": r[w]}
        for p, g, r, b, w in picked
    ]
    return Dataset.from_list(rows)

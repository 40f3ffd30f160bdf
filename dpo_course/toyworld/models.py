"""Loading the toy world's models, the real-model switch, and on-policy preference pairs.

Taught in 00_welcome (loading) and 06_building_preference_data (on-policy pairs).

The real-model switch: set the environment variable ``DPO_COURSE_MODEL`` (or pass ``model_id=``)
to a Hugging Face model id such as ``Qwen/Qwen2.5-0.5B-Instruct`` and `load_sft_model` loads that
model instead of the toy one. The default, ``"toy"``, never touches the network.
"""

from __future__ import annotations

import os
import random
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


def toy_model_dir(which: str = "sft") -> Path:
    """Folder of the toy model `which` ("sft" or "base"): the committed assets, else a built cache."""
    if which not in ("sft", "base"):
        raise ValueError(f"which must be 'sft' or 'base', got {which!r}")
    shipped = ASSETS / which
    if (shipped / "model.safetensors").exists():
        return shipped
    cached = CACHE / "toy" / which
    if not (cached / "model.safetensors").exists():
        from dpo_course.toyworld.build import build_all

        print(f"The toy model is not in the package; building it into {CACHE / 'toy'} (about a minute)...")
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


def load_sft_model(device=None, *, model_id: str | None = None):
    """Load the SFT model and its tokenizer: the starting point for DPO ("always SFT first").

    Returns ``(model, tokenizer)``, the model in eval mode on `device` (default: `get_device()`).
    The toy model loads with `from_pretrained(folder)` exactly as a hub model does.
    """
    source = model_source(model_id)
    if source == TOY:
        return _load(toy_model_dir("sft"), device)
    import torch

    dev = get_device() if device is None else torch.device(device)
    dtype = torch.bfloat16 if dev.type == "cuda" and torch.cuda.is_bf16_supported() else None
    return _load(source, dev, dtype)


def load_base_model(device=None):
    """The toy model before SFT: pre-trained on plain sentences, it knows no chat format.

    Taught in 05_variants, where ORPO trains it in one stage without a reference model.
    """
    return _load(toy_model_dir("base"), device)


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
):
    """Sample `num_samples` responses per prompt and pair the best against the worst by reward.

    Taught in 06_building_preference_data. Prompts whose samples all tie are dropped (a tie has no
    preference). Returns a `datasets.Dataset` with prompt/chosen/rejected and the two rewards.
    """
    from datasets import Dataset

    from dpo_course._generation import generate
    from dpo_course.toyworld.domain import reward

    if num_samples < 2:
        raise ValueError(f"num_samples must be at least 2 to make a pair, got {num_samples}")
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
    rng = random.Random(seed)
    rows = []
    for i, prompt in enumerate(prompts):
        group = samples[i * num_samples : (i + 1) * num_samples]
        scored = [(reward_fn(prompt, r), r) for r in group]
        rng.shuffle(scored)  # ties at the top or bottom are broken at random, not by sample order
        best = max(scored, key=lambda s: s[0])
        worst = min(scored, key=lambda s: s[0])
        if best[0] <= worst[0]:
            continue
        rows.append(
            {
                "prompt": prompt,
                "chosen": best[1],
                "rejected": worst[1],
                "chosen_reward": best[0],
                "rejected_reward": worst[0],
            }
        )
    return Dataset.from_list(rows)

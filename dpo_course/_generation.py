"""Batched chat generation that returns only the response text. Taught in 00_welcome."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from dpo_course._device import eval_mode, seed_everything


def _check_prompts(prompts: Sequence[str]) -> list[str]:
    if isinstance(prompts, str):
        raise TypeError("prompts must be a list of strings, not a single string: wrap it as [prompt]")
    prompts = list(prompts)
    for i, p in enumerate(prompts):
        if not isinstance(p, str):
            raise TypeError(f"prompts[{i}] must be a str, got {type(p).__name__}")
        if not p.strip():
            raise ValueError(f"prompts[{i}] is empty")
    return prompts


def chat_prompt(tokenizer, prompt: str) -> str:
    """The prompt as the model sees it: the chat template with the assistant turn opened."""
    return tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
    )


@torch.no_grad()
def generate(
    model,
    tokenizer,
    prompts: Sequence[str],
    *,
    max_new_tokens: int = 64,
    do_sample: bool = False,
    temperature: float = 1.0,
    seed: int | None = None,
    batch_size: int = 64,
) -> list[str]:
    """Answer each prompt with the model; returns only the response text, one string per prompt.

    The chat template is applied for you; prompts are left-padded and batched. Greedy by default;
    ``do_sample=True`` samples at ``temperature`` (seeded by ``seed`` when given).
    """
    prompts = _check_prompts(prompts)
    if do_sample and temperature <= 0:
        raise ValueError(f"temperature must be > 0 when sampling, got {temperature}")
    if seed is not None:
        seed_everything(seed)
    device = next(model.parameters()).device
    kwargs = _plain_kwargs(model, tokenizer, max_new_tokens, do_sample, temperature)
    old_side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    outputs: list[str] = []
    try:
        with eval_mode(model):
            for start in range(0, len(prompts), batch_size):
                texts = [chat_prompt(tokenizer, p) for p in prompts[start : start + batch_size]]
                enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
                out = model.generate(**enc, **kwargs)  # (B, T_prompt + new)
                new = out[:, enc["input_ids"].shape[1] :]
                outputs.extend(t.strip() for t in tokenizer.batch_decode(new, skip_special_tokens=True))
    finally:
        tokenizer.padding_side = old_side
    return outputs


def _plain_kwargs(model, tokenizer, max_new_tokens: int, do_sample: bool, temperature: float) -> dict:
    """Greedy, or sampling from pi itself at `temperature`: none of the model's own sampling defaults.

    An instruct model's generation_config (Qwen2.5: temperature 0.7, top-p 0.8, top-k 20, repetition
    penalty 1.05) would otherwise leak in (transformers fills every setting left at its global default
    from it), so "greedy" would not be the argmax and samples would not be samples of the policy whose
    KL and win rate the course measures. Every setting is passed explicitly; only the stop tokens are kept.
    """
    own = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    own = [] if own is None else [own] if isinstance(own, int) else list(own)
    eos = list(
        dict.fromkeys([*own, *([tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else [])])
    )
    return dict(
        max_new_tokens=max_new_tokens,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=eos or None,
        do_sample=do_sample,
        temperature=temperature if do_sample else 1.0,
        top_k=0 if do_sample else None,
        top_p=1.0,
        repetition_penalty=1.0,
    )

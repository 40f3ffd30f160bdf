"""Random models and batches of a given shape, for measuring a DPO step without downloading a model.

Taught in 09_scaling_up.
"""

from __future__ import annotations

import torch

# ------------------------------------------------------------------------------- random models


def random_llama(
    *,
    hidden: int,
    layers: int,
    vocab: int,
    intermediate: int | None = None,
    heads: int | None = None,
    kv_heads: int | None = None,
    tie_embeddings: bool = True,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
    seed: int = 0,
):
    """A randomly initialised `LlamaForCausalLM` of the given shape (no download, nothing trained).

    Defaults: ``intermediate = 4 * hidden`` (Llama 3.2 1B's ratio), 64-dimensional heads, and
    ``kv_heads = heads // 4`` when that divides (grouped-query attention as in Llama 3).
    Llama 3.2 1B is ``hidden=2048, layers=16, vocab=128256, intermediate=8192, heads=32``.

    Taught in 09_scaling_up.
    """
    from transformers import LlamaConfig, LlamaForCausalLM

    heads = heads or max(1, hidden // 64)
    if hidden % heads:
        raise ValueError(f"hidden={hidden} must be divisible by heads={heads}")
    kv_heads = kv_heads or (heads // 4 if heads % 4 == 0 else heads)
    config = LlamaConfig(
        hidden_size=hidden,
        num_hidden_layers=layers,
        vocab_size=vocab,
        intermediate_size=intermediate or 4 * hidden,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=8192,
        tie_word_embeddings=tie_embeddings,
        pad_token_id=0,
        bos_token_id=None,
        eos_token_id=1,
    )
    torch.manual_seed(seed)
    with torch.device(device):
        model = LlamaForCausalLM(config)
    return model.to(dtype).train()


def random_preference_batch(
    batch_pairs: int,
    seq_len: int,
    vocab: int,
    *,
    prompt_len: int | None = None,
    device: str | torch.device = "cpu",
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """A `PreferenceCollator`-shaped batch of random tokens: (2B, T) rows [chosen; rejected].

    Chosen and rejected share each pair's prompt (the first ``prompt_len`` tokens, default
    ``seq_len // 2``); the rest of each row is its response. No padding.

    Taught in 09_scaling_up.
    """
    prompt_len = seq_len // 2 if prompt_len is None else prompt_len
    if not 0 < prompt_len < seq_len:
        raise ValueError(f"prompt_len must be in (0, seq_len={seq_len}), got {prompt_len}")
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(2, vocab, (2 * batch_pairs, seq_len), generator=gen)  # (2B, T); 0, 1: pad, eos
    ids[batch_pairs:, :prompt_len] = ids[:batch_pairs, :prompt_len]
    completion = torch.zeros_like(ids)
    completion[:, prompt_len:] = 1
    return {
        "input_ids": ids.to(device),
        "attention_mask": torch.ones_like(ids).to(device),
        "completion_mask": completion.to(device),
    }


def enable_checkpointing(model) -> None:
    """Turn on activation (gradient) checkpointing under either of its transformers names.

    Taught in 09_scaling_up.
    """
    if hasattr(model, "activation_checkpointing_enable"):
        model.activation_checkpointing_enable()
    else:
        model.gradient_checkpointing_enable()
    model.config.use_cache = False

"""Build the toy world's tokenizer, base model and SFT model from code, deterministically.

Run ``python -m dpo_course.toyworld.build`` to rebuild the committed weights under
``dpo_course/toyworld/assets/`` (about 5 CPU-minutes with one torch thread: 225 s for base and SFT,
about 50 s for base_long); `make toy-model` runs it. ``--only-long`` rebuilds base_long alone from
the base already in ``--out``.

The pipeline mirrors a real one in miniature: a byte-level BPE tokenizer trained on the world's
text; a base Llama pre-trained on plain sentences of the world's facts; an SFT model fine-tuned
from it on chat examples in a mix of answer styles, with the loss on the response tokens only.
A second base, ``base_long``, continues the base's pre-training (same sentences, loss on every token)
for `LONG_EPOCHS` more epochs so that it knows the facts: 05_variants starts ORPO from it. The SFT
model is built from ``base``, not from it, so 00-09 see the same SFT model either way.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from dpo_course._device import seed_everything
from dpo_course.toyworld import corpus

ASSETS = Path(__file__).parent / "assets"
SPECIAL_TOKENS = ["<|pad|>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"]
CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>{{ message['content'] }}<|end|>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
VOCAB_SIZE = 768
# Epochs of base_long's extra pre-training on top of base's 12, chosen with `fact_knowledge` (see build_long_base).
LONG_EPOCHS = 36
MODEL_CONFIG = dict(
    hidden_size=128,
    intermediate_size=352,
    num_hidden_layers=4,
    num_attention_heads=4,
    num_key_value_heads=4,
    max_position_embeddings=192,
    tie_word_embeddings=True,
    rms_norm_eps=1e-5,
)


def build_tokenizer(out_dir: Path | None = None):
    """Train a byte-level BPE tokenizer on the world's text; return a `PreTrainedTokenizerFast`."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    texts = corpus.pretraining_text()
    for row in corpus.sft_examples(samples_per_prompt=4, seed=1):
        texts += [row["prompt"], row["response"]]
    texts += corpus.eval_prompts()  # the vocabulary may know them; the models are never trained on them
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<|pad|>",
        eos_token="<|end|>",
        additional_special_tokens=["<|system|>", "<|user|>", "<|assistant|>"],
        chat_template=CHAT_TEMPLATE,
        model_max_length=MODEL_CONFIG["max_position_embeddings"],
        padding_side="right",
    )
    if out_dir is not None:
        fast.save_pretrained(out_dir)
    return fast


def new_model(tokenizer, seed: int = 0):
    """A freshly initialised tiny Llama sized for the tokenizer (about 0.8M parameters)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    seed_everything(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
        **MODEL_CONFIG,
    )
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.bos_token_id = None
    return model


def _encode_chat(tokenizer, prompt: str, response: str) -> tuple[list[int], list[int]]:
    """Ids of prompt and response tokenized apart (so the boundary cannot move), and the loss mask."""
    from dpo_course._generation import chat_prompt

    p = tokenizer(chat_prompt(tokenizer, prompt), add_special_tokens=False)["input_ids"]
    r = tokenizer(response + tokenizer.eos_token, add_special_tokens=False)["input_ids"]
    return p + r, [0] * len(p) + [1] * len(r)


def _train_lm(model, sequences, masks, *, epochs, lr, batch_size, seed, desc):
    """Next-token training on `sequences`, the loss on positions where `masks` is 1."""
    seed_everything(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0, betas=(0.9, 0.98))
    n = len(sequences)
    steps = epochs * math.ceil(n / batch_size)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / 50) * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps))
    )
    gen = torch.Generator().manual_seed(seed)
    model.train()
    bar = tqdm(total=steps, desc=desc, mininterval=2.0)
    for _ in range(epochs):
        order = torch.randperm(n, generator=gen).tolist()
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            width = max(len(sequences[i]) for i in idx)
            ids = torch.zeros(len(idx), width, dtype=torch.long)
            loss_mask = torch.zeros(len(idx), width)
            attn = torch.zeros(len(idx), width, dtype=torch.long)
            for row, i in enumerate(idx):
                ids[row, : len(sequences[i])] = torch.tensor(sequences[i])
                loss_mask[row, : len(masks[i])] = torch.tensor(masks[i], dtype=torch.float)
                attn[row, : len(sequences[i])] = 1
            logits = model(input_ids=ids, attention_mask=attn).logits[:, :-1]  # (B, T-1, V)
            nll = torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1), reduction="none"
            ).view(len(idx), -1)
            m = loss_mask[:, 1:]
            loss = (nll * m).sum() / m.sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
    bar.close()
    model.eval()
    return model


def _pretrain(model, tokenizer, *, epochs: int, seed: int, desc: str):
    """Pre-training: the world's plain sentences, the loss on every token."""
    seqs = [
        tokenizer(t + tokenizer.eos_token, add_special_tokens=False)["input_ids"]
        for t in corpus.pretraining_text()
    ]
    masks = [[1] * len(s) for s in seqs]
    return _train_lm(model, seqs, masks, epochs=epochs, lr=3e-3, batch_size=32, seed=seed, desc=desc)


def build_long_base(out_dir: Path = ASSETS, *, epochs: int = LONG_EPOCHS, seed: int = 0) -> Path:
    """Continue pre-training `out_dir`/base for `epochs` more epochs into `out_dir`/base_long; return it.

    Same corpus and loss as the base (every token of the plain sentences), a fresh warm-up and cosine
    schedule, its own data order (seed + 2). Deterministic: the same base and arguments give the same
    tensors. The default, 36 epochs (48 in all), is the fewest of 12/24/36/48 after which the model
    knows the held-out prompts' facts (`fact_knowledge`): it prefers the correct answer to the wrong one
    on 47 of the 48 (base: 22, chance), by 7.2 nats on average (base: -0.5), and greedily states it on 31.
    """
    from transformers import AutoTokenizer, LlamaForCausalLM

    out_dir = Path(out_dir)
    tokenizer = AutoTokenizer.from_pretrained(out_dir / "base")
    model = LlamaForCausalLM.from_pretrained(out_dir / "base", dtype=torch.float32)
    _pretrain(model, tokenizer, epochs=epochs, seed=seed + 2, desc="base_long")
    model.save_pretrained(out_dir / "base_long")
    tokenizer.save_pretrained(out_dir / "base_long")
    return out_dir / "base_long"


def fact_knowledge(model, tokenizer, prompts: list[str] | None = None) -> dict[str, float]:
    """How well a base model knows the facts behind `prompts` (default: the 48 held-out eval prompts).

    Each prompt is scored in the pre-training format (``prompt + " " + answer``, no chat template):
    the log-prob of the concise correct answer against the fact's wrong answer (its misconception),
    both with the end token. Returns ``prefers_correct`` (share of prompts where the correct answer is
    the likelier), ``margin`` (mean log-prob difference, nats) and ``greedy_correct`` (share whose
    greedy continuation of the prompt states the right answer).
    """
    import random

    from dpo_course.logprobs.sequence import sequence_logps
    from dpo_course.toyworld.domain import is_correct, parse_prompt, write_response

    prompts = corpus.eval_prompts() if prompts is None else prompts
    device = next(model.parameters()).device
    margins, greedy = [], []
    model.eval()
    for prompt in prompts:
        item = parse_prompt(prompt)
        p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        scores = []
        for style in ("concise", "wrong"):
            text = f"{prompt} {write_response(item, style, random.Random(0))}{tokenizer.eos_token}"
            ids = tokenizer(text, add_special_tokens=False)["input_ids"]
            assert ids[: len(p_ids)] == p_ids, "the prompt's tokens must not merge with the answer's"
            x = torch.tensor([ids], device=device)
            answer = torch.tensor([[0] * len(p_ids) + [1] * (len(ids) - len(p_ids))], device=device)
            with torch.no_grad():
                scores.append(sequence_logps(model(input_ids=x).logits, x, answer).item())
        margins.append(scores[0] - scores[1])
        with torch.no_grad():
            out = model.generate(
                torch.tensor([p_ids], device=device),
                attention_mask=torch.ones(1, len(p_ids), dtype=torch.long, device=device),
                do_sample=False,
                max_new_tokens=40,
                eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id,
            )
        greedy.append(
            is_correct(item, tokenizer.decode(out[0, len(p_ids) :], skip_special_tokens=True)) is True
        )
    n = len(prompts)
    return {
        "prefers_correct": sum(m > 0 for m in margins) / n,
        "margin": sum(margins) / n,
        "greedy_correct": sum(greedy) / n,
    }


def build_all(
    out_dir: Path = ASSETS,
    *,
    base_epochs: int = 12,
    sft_epochs: int = 14,
    long_epochs: int = LONG_EPOCHS,
    seed: int = 0,
) -> Path:
    """Build tokenizer, base model and SFT model into `out_dir`/{base,sft}, then `build_long_base`
    into `out_dir`/base_long (skipped if `long_epochs` is 0); return `out_dir`."""
    out_dir = Path(out_dir)
    t0 = time.time()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    tokenizer = build_tokenizer()
    model = new_model(tokenizer, seed=seed)
    _pretrain(model, tokenizer, epochs=base_epochs, seed=seed, desc="base")
    for name in ("base",):
        model.save_pretrained(out_dir / name)
        tokenizer.save_pretrained(out_dir / name)

    # SFT: chat examples in a mix of styles, the loss on the response only.
    pairs = [_encode_chat(tokenizer, r["prompt"], r["response"]) for r in corpus.sft_examples()]
    _train_lm(
        model,
        [p[0] for p in pairs],
        [p[1] for p in pairs],
        epochs=sft_epochs,
        lr=2e-3,
        batch_size=32,
        seed=seed + 1,
        desc="sft",
    )
    model.save_pretrained(out_dir / "sft")
    tokenizer.save_pretrained(out_dir / "sft")
    if long_epochs:
        build_long_base(out_dir, epochs=long_epochs, seed=seed)
    print(f"built the toy world into {out_dir} in {time.time() - t0:.1f} s")
    return out_dir


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=ASSETS, help="output folder (default: the package's assets)"
    )
    parser.add_argument("--base-epochs", type=int, default=12)
    parser.add_argument("--sft-epochs", type=int, default=14)
    parser.add_argument(
        "--long-epochs", type=int, default=LONG_EPOCHS, help="base_long's extra epochs (0: none)"
    )
    parser.add_argument("--only-long", action="store_true", help="only base_long, from the base in --out")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.only_long:
        build_long_base(args.out, epochs=args.long_epochs, seed=args.seed)
        return
    build_all(
        args.out,
        base_epochs=args.base_epochs,
        sft_epochs=args.sft_epochs,
        long_epochs=args.long_epochs,
        seed=args.seed,
    )


if __name__ == "__main__":
    main()

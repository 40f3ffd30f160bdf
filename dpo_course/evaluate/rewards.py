"""Implicit rewards, preference accuracy, the sampled KL to the reference, and mean reward and length.

Taught in 07_evaluation (and used in 03, 05, 08).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from dpo_course._device import eval_mode
from dpo_course.data.tokenize import PreferenceCollator, collate_completions, prompt_ids, tokenize_dataset
from dpo_course.logprobs.forward import concatenated_forward
from dpo_course.logprobs.sequence import sequence_logps

# ============================================================================ implicit rewards


@torch.no_grad()
def implicit_rewards(
    policy,
    reference,
    tokenizer,
    dataset,
    beta: float,
    *,
    batch_size: int = 32,
    max_length: int = 128,
    average: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """DPO's implicit rewards ``beta * (log pi(y|x) - log pi_ref(y|x))`` of every pair's two completions.

    `dataset`: prompt/chosen/rejected rows (held-out pairs, e.g. ``preference_pairs("test")``).
    Log-probs are summed over completion tokens (``average=True`` for the length-normalised
    variants). Returns ``(chosen_rewards, rejected_rewards)``, each (N,) float32 on the CPU.
    Before training (policy == reference) every reward is exactly 0. Taught in 07_evaluation.
    """
    if not (math.isfinite(beta) and beta > 0):  # NaN and inf too
        raise ValueError(f"beta must be a finite number > 0, got {beta}")
    features = tokenize_dataset(tokenizer, dataset, max_length=max_length)
    if not features:
        raise ValueError("the dataset is empty: no pairs to score")
    collate = PreferenceCollator(tokenizer.pad_token_id)
    out: list[list[torch.Tensor]] = [[], []]
    with eval_mode(policy, reference):
        for start in range(0, len(features), batch_size):
            batch = collate(features[start : start + batch_size])
            logps = []
            for m in (policy, reference):
                device = next(m.parameters()).device
                logps.append(
                    concatenated_forward(m, {k: v.to(device) for k, v in batch.items()}, average=average)
                )
            (pc, pr), (rc, rr) = logps
            out[0].append((beta * (pc - rc.to(pc.device))).float().cpu())  # (B,)
            out[1].append((beta * (pr - rr.to(pr.device))).float().cpu())  # (B,)
    return torch.cat(out[0]), torch.cat(out[1])


def preference_accuracy(chosen_rewards: torch.Tensor, rejected_rewards: torch.Tensor) -> float:
    """Share of pairs whose chosen completion gets the higher implicit reward (strictly, as TRL logs it).

    A tie counts as wrong, so a policy equal to its reference scores 0, not 0.5. Taught in 07_evaluation.
    """
    chosen_rewards, rejected_rewards = torch.as_tensor(chosen_rewards), torch.as_tensor(rejected_rewards)
    if chosen_rewards.shape != rejected_rewards.shape or chosen_rewards.numel() == 0:
        raise ValueError(
            f"chosen_rewards and rejected_rewards must be non-empty and of one shape, got "
            f"{tuple(chosen_rewards.shape)} and {tuple(rejected_rewards.shape)}"
        )
    return (chosen_rewards > rejected_rewards).float().mean().item()


# ==================================================================================== KL estimate


@dataclass
class KLEstimate:
    """Result of `kl_to_reference`: the KL estimate and the samples it came from.

    `log_ratios[i] = log pi(y_i|x_i) - log pi_ref(y_i|x_i)` summed over the tokens of sample i;
    ``kl = mean(log_ratios)`` (nats per completion), `stderr` its standard error,
    ``kl_per_token = sum(log_ratios) / num_tokens``.
    """

    kl: float
    stderr: float
    kl_per_token: float
    num_tokens: int
    prompts: list[str]
    completions: list[str]
    log_ratios: torch.Tensor = field(repr=False)

    def __str__(self) -> str:
        return f"KL(pi || pi_ref) = {self.kl:.3f} +- {self.stderr:.3f} nats per completion ({self.kl_per_token:.4f} per token, {len(self.completions)} samples)"


@torch.no_grad()
def kl_to_reference(
    policy,
    reference,
    tokenizer,
    prompts: Sequence[str],
    *,
    num_samples: int = 4,
    max_new_tokens: int = 64,
    seed: int = 0,
    batch_size: int = 64,
) -> KLEstimate:
    """Estimate ``KL(pi || pi_ref) = E_{y ~ pi(.|x)} [log pi(y|x) - log pi_ref(y|x)]`` from samples.

    Draws `num_samples` completions per prompt from the policy at temperature 1 (the KL is about pi
    itself, not a tempered version), keeps their exact token ids (up to and including the first
    end-of-turn token), and scores them under both models, summing over completion tokens. The
    estimate is unbiased but noisy: single samples can be negative. The samples come back in
    the result, so their reward can be measured too (`mean_reward(est.prompts, est.completions)`).
    `seed` seeds the sampling without disturbing the caller's random state.
    Taught in 07_evaluation; used for the reward-against-KL frontier of 08_dpo_vs_online_rl.
    """
    prompts = list(prompts)
    if not prompts or num_samples < 1:
        raise ValueError(
            f"need at least one prompt and num_samples >= 1, got {len(prompts)} prompts, num_samples={num_samples}"
        )
    device = next(policy.parameters()).device
    # Seeded sampling that leaves the caller's torch RNG as it was (safe inside a training loop's callback).
    forked = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=forked, enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(seed)
            if device.type == "cuda":
                torch.cuda.manual_seed(seed)
        return _kl_samples(policy, reference, tokenizer, prompts, num_samples, max_new_tokens, batch_size)


def _sample_and_score(policy, reference, tokenizer, chunk, max_new_tokens):
    """Sample one completion per prompt of `chunk`; returns (log-ratios (B,), texts, token count)."""
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    p_ids = [prompt_ids(tokenizer, p) for p in chunk]
    enc = tokenizer.pad({"input_ids": p_ids}, return_tensors="pt").to(next(policy.parameters()).device)
    out = policy.generate(
        **enc,
        do_sample=True,
        temperature=1.0,
        top_k=0,
        top_p=1.0,
        max_new_tokens=max_new_tokens,
        pad_token_id=pad,
    )  # (B, T_prompt + new)
    # keep each completion up to and including its end-of-turn token (that token is part of it)
    ys = [y[: y.index(eos) + 1] if eos in y else y for y in out[:, enc["input_ids"].shape[1] :].tolist()]
    texts = [tokenizer.decode(y, skip_special_tokens=True).strip() for y in ys]
    batch = collate_completions(p_ids, ys, pad)  # right-padded prompt + completion rows, (B, T) each
    logps = []
    for m in (policy, reference):
        b = {k: v.to(next(m.parameters()).device) for k, v in batch.items()}
        logits = m(input_ids=b["input_ids"], attention_mask=b["attention_mask"], use_cache=False).logits
        logps.append(sequence_logps(logits, b["input_ids"], b["completion_mask"]).float().cpu())  # (B,)
    return logps[0] - logps[1], texts, sum(len(y) for y in ys)


def _kl_samples(policy, reference, tokenizer, prompts, num_samples, max_new_tokens, batch_size) -> KLEstimate:
    repeated = [p for p in prompts for _ in range(num_samples)]
    old_side = tokenizer.padding_side
    ratios, texts, n_tokens = [], [], 0
    tokenizer.padding_side = "left"  # generation continues the prompt: pad it on the left
    try:
        with eval_mode(policy, reference):
            for start in range(0, len(repeated), batch_size):
                r, t, n = _sample_and_score(
                    policy, reference, tokenizer, repeated[start : start + batch_size], max_new_tokens
                )
                ratios.append(r)
                texts += t
                n_tokens += n
    finally:
        tokenizer.padding_side = old_side
    log_ratios = torch.cat(ratios)  # (N,)
    n = log_ratios.numel()
    stderr = log_ratios.std().item() / math.sqrt(n) if n > 1 else float("nan")
    return KLEstimate(
        kl=log_ratios.mean().item(),
        stderr=stderr,
        kl_per_token=log_ratios.sum().item() / max(n_tokens, 1),
        num_tokens=n_tokens,
        prompts=repeated,
        completions=texts,
        log_ratios=log_ratios,
    )


# ========================================================================= reward and length


def mean_reward(
    prompts: Sequence[str], completions: Sequence[str], reward_fn: Callable[[str, str], float] | None = None
) -> float:
    """Average ``reward_fn(prompt, completion)`` (default: the toy world's ground truth). Taught in 07_evaluation."""
    prompts, completions = list(prompts), list(completions)
    if len(prompts) != len(completions) or not prompts:
        raise ValueError(
            f"need as many completions as prompts (and at least one), got {len(prompts)} and {len(completions)}"
        )
    if reward_fn is None:
        from dpo_course.toyworld import reward as reward_fn
    return sum(reward_fn(p, c) for p, c in zip(prompts, completions, strict=True)) / len(prompts)


def mean_length(completions: Sequence[str], tokenizer=None) -> float:
    """Average completion length: in words, or in tokens with a `tokenizer`. Taught in 07_evaluation."""
    completions = list(completions)
    if not completions:
        raise ValueError("completions is empty")
    if tokenizer is None:
        return sum(len(c.split()) for c in completions) / len(completions)
    return sum(len(tokenizer(c, add_special_tokens=False)["input_ids"]) for c in completions) / len(
        completions
    )

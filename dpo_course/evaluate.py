"""Evaluating a DPO model: win rates with intervals, implicit rewards, KL to the reference, judges.

Taught in 07_evaluation (and used in 08_dpo_vs_online_rl). Everything here compares a trained
policy with its starting point:

- `win_rate`: a pairwise judge on held-out prompts, both response orders, with a confidence interval;
- `implicit_rewards` / `preference_accuracy`: ``r = beta * log(pi(y|x) / pi_ref(y|x))`` on held-out pairs;
- `kl_to_reference`: ``KL(pi || pi_ref)`` estimated from the policy's own samples;
- `mean_reward`, `mean_length`: the ground-truth reward and the length of responses;
- `LLMJudge`: a language model as the judge, with the toy judge's signature;
- `diagnose` (from `dpo_course.diagnostics`): the debugging checklist as findings.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist

import torch

from dpo_course.data import PreferenceCollator, prompt_ids, tokenize_dataset
from dpo_course.diagnostics import Finding, diagnose
from dpo_course.judges import LLMJudge, parse_verdict
from dpo_course.logprobs import concatenated_forward, sequence_logps

__all__ = [
    "Finding",
    "KLEstimate",
    "LLMJudge",
    "WinRate",
    "diagnose",
    "implicit_rewards",
    "kl_to_reference",
    "mean_length",
    "mean_reward",
    "parse_verdict",
    "preference_accuracy",
    "wilson_interval",
    "win_rate",
]

INTERVALS = ("wilson", "sign", "bootstrap")
_FLIP = {"A": "B", "B": "A", "tie": "tie"}


# ============================================================================================ win rate


def wilson_interval(successes: float, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a proportion ``successes / n``.

    With ``p = successes / n`` and ``z`` the two-sided normal quantile of `confidence`::

        centre = (p + z^2 / 2n) / (1 + z^2 / n)
        half   = z / (1 + z^2 / n) * sqrt(p (1 - p) / n + z^2 / 4n^2)

    Unlike the Wald interval ``p +- z sqrt(p(1-p)/n)`` it stays inside [0, 1] and does not
    collapse to a point at p = 0 or 1. `successes` may be fractional (ties counted as half).
    Taught in 07_evaluation.
    """
    if n <= 0:
        raise ValueError(f"n must be positive, got {n}")
    if not 0 <= successes <= n:
        raise ValueError(f"successes must lie in [0, n] = [0, {n}], got {successes}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    low = 0.0 if successes == 0 else max(0.0, centre - half)  # exact ends: no 1e-17 rounding residue
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


@dataclass
class WinRate:
    """Result of `win_rate`: counts, the rate (ties count half) and its interval.

    ``rate = (wins + ties / 2) / n``. `consistency` is the share of comparisons whose two
    orders agreed; `first_position_share` is the share of decisive single-order verdicts that
    picked the response shown first (0.5 = no position bias); `unparseable` counts judge
    answers that could not be read (only for judges that count them, like `LLMJudge`).
    """

    wins: int
    losses: int
    ties: int
    n: int
    rate: float
    low: float
    high: float
    confidence: float
    interval: str
    consistency: float
    first_position_share: float
    inconsistent: int = 0
    unparseable: int = 0
    scores: list[float] = field(default_factory=list, repr=False)

    def __str__(self) -> str:
        return (
            f"win rate {self.rate:.1%} [{self.low:.1%}, {self.high:.1%}] ({self.confidence:.0%} {self.interval}) | "
            f"{self.wins} wins, {self.losses} losses, {self.ties} ties of {self.n} | "
            f"orders agree {self.consistency:.0%}, first position wins {self.first_position_share:.0%} of decisive verdicts"
            + (f" | {self.unparseable} unparseable" if self.unparseable else "")
        )


def _check_verdict(verdict, where: str) -> str:
    if verdict not in ("A", "B", "tie"):
        raise ValueError(f"{where}: the judge must return 'A', 'B' or 'tie', got {verdict!r}")
    return verdict


def _bootstrap(scores: list[float], groups: Sequence | None, confidence: float, n_boot: int, seed: int) -> tuple[float, float]:
    """Percentile bootstrap of the mean score, resampling whole groups (e.g. prompts) when given."""
    if groups is None:
        groups = range(len(scores))
    clusters: dict = {}
    for g, s in zip(groups, scores, strict=True):
        clusters.setdefault(g, []).append(s)
    sums = [(sum(v), len(v)) for v in clusters.values()]
    rng = random.Random(seed)
    stats = []
    for _ in range(n_boot):
        draw = [sums[rng.randrange(len(sums))] for _ in sums]
        stats.append(sum(s for s, _ in draw) / sum(k for _, k in draw))
    stats.sort()
    alpha = (1 - confidence) / 2
    return stats[int(alpha * (n_boot - 1))], stats[int(math.ceil((1 - alpha) * (n_boot - 1)))]


def win_rate(
    prompts: Sequence[str],
    responses_a: Sequence[str],
    responses_b: Sequence[str],
    judge: Callable[[str, str, str], str],
    *,
    confidence: float = 0.95,
    interval: str = "wilson",
    groups: Sequence | None = None,
    n_boot: int = 2000,
    seed: int = 0,
) -> WinRate:
    """How often responses A beat responses B, judged in both orders, with a confidence interval.

    Each comparison asks ``judge(p, a, b)`` and ``judge(p, b, a)``; when the two verdicts agree
    (after swapping the letters back) that is the result, otherwise it is an inconsistent pair,
    counted as a tie. ``rate = (wins + ties / 2) / n``. `interval`:

    - ``"wilson"``: Wilson score interval of ``rate`` over ``n`` comparisons. It treats a tie as
      a coin flip, so with many ties it is wider than it need be (conservative).
    - ``"sign"``: ties held fixed: Wilson interval of ``wins / (wins + losses)`` mapped to the
      rate, ``(ties / 2 + (wins + losses) * d) / n``. ``rate > 1/2`` exactly when
      ``wins > losses``, so this is the sign test's interval (conditional on the tie count).
    - ``"bootstrap"``: percentile bootstrap of the rate (`n_boot` draws, `seed`), resampling
      whole `groups` (e.g. the prompt of each comparison when there are several samples per
      prompt, which are not independent); without `groups`, single comparisons.

    Returns a `WinRate`. Taught in 07_evaluation.
    """
    prompts, responses_a, responses_b = list(prompts), list(responses_a), list(responses_b)
    if not (len(prompts) == len(responses_a) == len(responses_b)):
        raise ValueError(
            f"prompts, responses_a and responses_b must have the same length, got {len(prompts)}, "
            f"{len(responses_a)} and {len(responses_b)}"
        )
    if not prompts:
        raise ValueError("nothing to compare: prompts is empty")
    if interval not in INTERVALS:
        raise ValueError(f"interval must be one of {INTERVALS}, got {interval!r}")
    if groups is not None and len(groups) != len(prompts):
        raise ValueError(f"groups must give one label per comparison ({len(prompts)}), got {len(groups)}")
    unparseable_before = getattr(judge, "unparseable", 0)
    batch = getattr(judge, "judge_batch", None)
    if batch is not None:  # e.g. LLMJudge: one batched generate call per order
        first = batch(prompts, responses_a, responses_b)
        second = batch(prompts, responses_b, responses_a)
    else:
        first = [judge(p, a, b) for p, a, b in zip(prompts, responses_a, responses_b, strict=True)]
        second = [judge(p, b, a) for p, a, b in zip(prompts, responses_a, responses_b, strict=True)]
    wins = losses = ties = inconsistent = first_pos = decisive = 0
    scores = []
    for i, (v1, v2) in enumerate(zip(first, second, strict=True)):
        v1 = _check_verdict(v1, f"comparison {i}, order (a, b)")
        v2 = _check_verdict(v2, f"comparison {i}, order (b, a)")
        for v in (v1, v2):
            if v != "tie":
                decisive += 1
                first_pos += v == "A"
        verdict = v1 if v1 == _FLIP[v2] else "inconsistent"
        if verdict == "A":
            wins += 1
        elif verdict == "B":
            losses += 1
        else:
            ties += 1
            inconsistent += verdict == "inconsistent"
        scores.append({"A": 1.0, "B": 0.0}.get(verdict, 0.5))
    n = len(prompts)
    rate = (wins + ties / 2) / n
    if interval == "wilson":
        low, high = wilson_interval(wins + ties / 2, n, confidence)
    elif interval == "sign":
        if wins + losses:
            d_low, d_high = wilson_interval(wins, wins + losses, confidence)
        else:
            d_low = d_high = 0.5
        low, high = ((ties / 2 + (wins + losses) * d) / n for d in (d_low, d_high))
    else:
        low, high = _bootstrap(scores, groups, confidence, n_boot, seed)
    return WinRate(
        wins=wins,
        losses=losses,
        ties=ties,
        n=n,
        rate=rate,
        low=low,
        high=high,
        confidence=confidence,
        interval=interval,
        consistency=1 - inconsistent / n,
        first_position_share=first_pos / decisive if decisive else 0.5,
        inconsistent=inconsistent,
        unparseable=getattr(judge, "unparseable", 0) - unparseable_before,
        scores=scores,
    )


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
    """DPO's implicit rewards ``beta * (log pi(y|x) - log pi_ref(y|x))`` of every pair's two responses.

    `dataset`: prompt/chosen/rejected rows (held-out pairs, e.g. ``preference_pairs("test")``).
    Log-probs are summed over response tokens (``average=True`` for the length-normalised
    variants). Returns ``(chosen_rewards, rejected_rewards)``, each (N,) float32 on the CPU.
    Before training (policy == reference) every reward is exactly 0. Taught in 07_evaluation.
    """
    if not beta > 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    features = tokenize_dataset(tokenizer, dataset, max_length=max_length)
    if not features:
        raise ValueError("the dataset is empty: no pairs to score")
    collate = PreferenceCollator(tokenizer.pad_token_id)
    out: list[list[torch.Tensor]] = [[], []]
    modes = [(m, m.training) for m in (policy, reference)]
    for m, _ in modes:
        m.eval()
    try:
        for start in range(0, len(features), batch_size):
            batch = collate(features[start : start + batch_size])
            logps = []
            for m in (policy, reference):
                device = next(m.parameters()).device
                logps.append(concatenated_forward(m, {k: v.to(device) for k, v in batch.items()}, average=average))
            (pc, pr), (rc, rr) = logps
            out[0].append((beta * (pc - rc.to(pc.device))).float().cpu())  # (B,)
            out[1].append((beta * (pr - rr.to(pr.device))).float().cpu())  # (B,)
    finally:
        for m, was_training in modes:
            m.train(was_training)
    return torch.cat(out[0]), torch.cat(out[1])


def preference_accuracy(chosen_rewards: torch.Tensor, rejected_rewards: torch.Tensor) -> float:
    """Share of pairs whose chosen response gets the higher implicit reward (strictly, as TRL logs it).

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
    ``kl = mean(log_ratios)`` (nats per response), `stderr` its standard error,
    ``kl_per_token = sum(log_ratios) / num_tokens``.
    """

    kl: float
    stderr: float
    kl_per_token: float
    num_tokens: int
    prompts: list[str]
    responses: list[str]
    log_ratios: torch.Tensor = field(repr=False)

    def __str__(self) -> str:
        return f"KL(pi || pi_ref) = {self.kl:.3f} +- {self.stderr:.3f} nats per response ({self.kl_per_token:.4f} per token, {len(self.responses)} samples)"


def _right_pad(rows: list[list[int]], masks: list[list[int]], pad: int) -> dict[str, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)  # (B, T)
    attention = torch.zeros((len(rows), width), dtype=torch.long)  # (B, T)
    completion = torch.zeros((len(rows), width), dtype=torch.long)  # (B, T)
    for i, (r, m) in enumerate(zip(rows, masks, strict=True)):
        ids[i, : len(r)] = torch.tensor(r)
        attention[i, : len(r)] = 1
        completion[i, : len(m)] = torch.tensor(m)
    return {"input_ids": ids, "attention_mask": attention, "completion_mask": completion}


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

    Draws `num_samples` responses per prompt from the policy at temperature 1 (the KL is about pi
    itself, not a tempered version), keeps their exact token ids (up to and including the first
    end-of-turn token), and scores them under both models, summing over response tokens. The
    estimate is unbiased but noisy: single samples can be negative. The samples come back in
    the result, so their reward can be measured too (`mean_reward(est.prompts, est.responses)`).
    `seed` seeds the sampling without disturbing the caller's random state.
    Taught in 07_evaluation; used for the reward-against-KL frontier of 08_dpo_vs_online_rl.
    """
    prompts = list(prompts)
    if not prompts or num_samples < 1:
        raise ValueError(f"need at least one prompt and num_samples >= 1, got {len(prompts)} prompts, num_samples={num_samples}")
    device = next(policy.parameters()).device
    # Seeded sampling that leaves the caller's torch RNG as it was (safe inside a training loop's callback).
    forked = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=forked, enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(seed)
            if device.type == "cuda":
                torch.cuda.manual_seed(seed)
        return _kl_samples(policy, reference, tokenizer, prompts, num_samples, max_new_tokens, batch_size)


def _kl_samples(policy, reference, tokenizer, prompts, num_samples, max_new_tokens, batch_size) -> KLEstimate:
    repeated = [p for p in prompts for _ in range(num_samples)]
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    modes = [(m, m.training) for m in (policy, reference)]
    for m, _ in modes:
        m.eval()
    old_side = tokenizer.padding_side
    ratios, texts, n_tokens = [], [], 0
    try:
        for start in range(0, len(repeated), batch_size):
            chunk = repeated[start : start + batch_size]
            p_ids = [prompt_ids(tokenizer, p) for p in chunk]
            tokenizer.padding_side = "left"
            enc = tokenizer.pad({"input_ids": p_ids}, return_tensors="pt").to(next(policy.parameters()).device)
            out = policy.generate(
                **enc, do_sample=True, temperature=1.0, top_k=0, top_p=1.0, max_new_tokens=max_new_tokens, pad_token_id=pad
            )  # (B, T_prompt + new)
            new = out[:, enc["input_ids"].shape[1] :].tolist()
            rows, masks = [], []
            for p, y in zip(p_ids, new, strict=True):
                y = y[: y.index(eos) + 1] if eos in y else y  # the end-of-turn token is part of the response
                rows.append(p + y)
                masks.append([0] * len(p) + [1] * len(y))
                texts.append(tokenizer.decode(y, skip_special_tokens=True).strip())
                n_tokens += len(y)
            batch = _right_pad(rows, masks, pad)
            logps = []
            for m in (policy, reference):
                b = {k: v.to(next(m.parameters()).device) for k, v in batch.items()}
                logits = m(input_ids=b["input_ids"], attention_mask=b["attention_mask"], use_cache=False).logits
                logps.append(sequence_logps(logits, b["input_ids"], b["completion_mask"]).float().cpu())  # (B,)
            ratios.append(logps[0] - logps[1])
    finally:
        tokenizer.padding_side = old_side
        for m, was_training in modes:
            m.train(was_training)
    log_ratios = torch.cat(ratios)  # (N,)
    n = log_ratios.numel()
    stderr = log_ratios.std().item() / math.sqrt(n) if n > 1 else float("nan")
    return KLEstimate(
        kl=log_ratios.mean().item(),
        stderr=stderr,
        kl_per_token=log_ratios.sum().item() / max(n_tokens, 1),
        num_tokens=n_tokens,
        prompts=repeated,
        responses=texts,
        log_ratios=log_ratios,
    )


# ========================================================================= reward and length


def mean_reward(prompts: Sequence[str], responses: Sequence[str], reward_fn: Callable[[str, str], float] | None = None) -> float:
    """Average ``reward_fn(prompt, response)`` (default: the toy world's ground truth). Taught in 07_evaluation."""
    prompts, responses = list(prompts), list(responses)
    if len(prompts) != len(responses) or not prompts:
        raise ValueError(f"need as many responses as prompts (and at least one), got {len(prompts)} and {len(responses)}")
    if reward_fn is None:
        from dpo_course.toyworld import reward as reward_fn
    return sum(reward_fn(p, r) for p, r in zip(prompts, responses, strict=True)) / len(prompts)


def mean_length(responses: Sequence[str], tokenizer=None) -> float:
    """Average response length: in words, or in tokens with a `tokenizer`. Taught in 07_evaluation."""
    responses = list(responses)
    if not responses:
        raise ValueError("responses is empty")
    if tokenizer is None:
        return sum(len(r.split()) for r in responses) / len(responses)
    return sum(len(tokenizer(r, add_special_tokens=False)["input_ids"]) for r in responses) / len(responses)

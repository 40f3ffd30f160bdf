"""Evaluation: Wilson intervals and win rates by hand, implicit rewards, the KL estimate, judges, diagnose."""

import copy
import math

import pytest
import torch
from datasets import Dataset

from dpo_course import toyworld
from dpo_course.data import PreferenceCollator, tokenize_dataset
from dpo_course.evaluate import (
    LR_RANGES,
    LLMJudge,
    diagnose,
    implicit_rewards,
    judge_agreement,
    judge_bias,
    kl_to_reference,
    mean_length,
    mean_reward,
    parse_verdict,
    preference_accuracy,
    verbosity_pairs,
    wilson_interval,
    win_rate,
)
from dpo_course.logprobs import concatenated_forward
from dpo_course.train import DPOTrainConfig

# ------------------------------------------------------------------------------ Wilson interval


def test_wilson_interval_by_hand():
    # 11 of 13, z = 1.96: centre (11/13 + z^2/26) / (1 + z^2/13) = 0.7672,
    # half-width z / (1 + z^2/13) * sqrt((11/13)(2/13)/13 + z^2/676) = 0.1895
    low, high = wilson_interval(11, 13)
    assert low == pytest.approx(0.7672 - 0.1895, abs=2e-4) and high == pytest.approx(
        0.7672 + 0.1895, abs=2e-4
    )
    assert wilson_interval(11, 13) == pytest.approx((0.57765, 0.95674), abs=1e-5)


def test_wilson_interval_edges_and_symmetry():
    assert wilson_interval(0, 10) == pytest.approx(
        (0.0, 0.27753), abs=1e-5
    )  # never the Wald interval's [0, 0]
    assert wilson_interval(10, 10) == pytest.approx((0.72247, 1.0), abs=1e-5)
    low, high = wilson_interval(3, 10)
    mirror_low, mirror_high = wilson_interval(7, 10)
    assert low == pytest.approx(1 - mirror_high) and high == pytest.approx(1 - mirror_low)
    assert wilson_interval(5, 10) == pytest.approx((0.23659, 0.76341), abs=1e-5)
    narrow = wilson_interval(5, 10, confidence=0.5)
    assert narrow[0] > 0.23659 and narrow[1] < 0.76341  # lower confidence, narrower interval


@pytest.mark.parametrize(
    "args, match",
    [
        ((1, 0), "n must be positive"),
        ((11, 10), "successes"),
        ((1, 2, 1.0), "confidence"),
        ((1, 2, math.nan), "confidence"),
        ((math.nan, 2), "successes"),
    ],
)
def test_wilson_interval_errors(args, match):
    with pytest.raises(ValueError, match=match):
        wilson_interval(*args)


# ------------------------------------------------------------------------------------ win rate


def shorter_wins(prompt, a, b):
    """A fair judge: the shorter response wins, equal lengths tie."""
    return "A" if len(a) < len(b) else "B" if len(b) < len(a) else "tie"


def always_a(prompt, a, b):
    return "A"


def test_win_rate_counts_both_orders():
    prompts = ["p"] * 4
    a = ["x", "xx", "xxx", "xxxx"]
    b = ["xx", "x", "xxx", "xxxxx"]  # a wins, loses, ties, wins
    result = win_rate(prompts, a, b, shorter_wins)
    assert (result.wins, result.losses, result.ties, result.n) == (2, 1, 1, 4)
    assert result.rate == pytest.approx((2 + 0.5) / 4)
    assert result.consistency == 1.0 and result.first_position_share == 0.5
    assert (result.low, result.high) == pytest.approx(wilson_interval(2.5, 4))
    assert result.scores == [1.0, 0.0, 0.5, 1.0]
    assert "62.5%" in str(result)


def test_position_bias_cancels_into_ties():
    result = win_rate(["p"] * 6, ["x"] * 6, ["yy"] * 6, always_a)
    assert (result.wins, result.losses, result.ties) == (0, 0, 6)
    assert result.inconsistent == 6 and result.consistency == 0.0
    assert result.first_position_share == 1.0
    assert result.rate == 0.5


def test_sign_interval_holds_ties_fixed():
    # 11 wins, 2 losses, 35 ties of 48 (the toy DPO model's greedy result)
    prompts = ["p"] * 48
    a = ["x"] * 11 + ["xxx"] * 2 + ["xx"] * 35
    b = ["xx"] * 11 + ["x"] * 2 + ["xx"] * 35
    wilson = win_rate(prompts, a, b, shorter_wins)
    sign = win_rate(prompts, a, b, shorter_wins, interval="sign")
    assert wilson.rate == sign.rate == pytest.approx(28.5 / 48)
    assert (wilson.low, wilson.high) == pytest.approx((0.45293, 0.72068), abs=1e-5)  # includes 1/2
    d_low, d_high = wilson_interval(11, 13)
    assert sign.low == pytest.approx((17.5 + 13 * d_low) / 48) and sign.high == pytest.approx(
        (17.5 + 13 * d_high) / 48
    )
    assert sign.low > 0.5  # ties are no evidence either way: 11 of 13 decisive comparisons won


def test_bootstrap_resamples_groups():
    prompts = [f"p{i // 4}" for i in range(40)]  # 10 prompts, 4 comparisons each
    a = ["x" if i % 4 else "xxx" for i in range(40)]
    b = ["xx"] * 40
    result = win_rate(prompts, a, b, shorter_wins, interval="bootstrap", groups=prompts, n_boot=500, seed=1)
    assert result.rate == pytest.approx(0.75)
    # every prompt scores 0.75, so resampling prompts cannot move the rate
    assert result.low == pytest.approx(0.75) and result.high == pytest.approx(0.75)
    single = win_rate(prompts, a, b, shorter_wins, interval="bootstrap", n_boot=500, seed=1)
    assert single.low < 0.75 < single.high
    again = win_rate(prompts, a, b, shorter_wins, interval="bootstrap", n_boot=500, seed=1)
    assert (again.low, again.high) == (single.low, single.high)


def test_win_rate_errors():
    with pytest.raises(ValueError, match="same length"):
        win_rate(["p", "q"], ["a"], ["b", "c"], shorter_wins)
    with pytest.raises(ValueError, match="interval"):
        win_rate(["p"], ["a"], ["b"], shorter_wins, interval="wald")
    with pytest.raises(ValueError, match=r"comparison 1, order \(a, b\).*'yes'"):
        win_rate(["p", "q"], ["a", "b"], ["bb", "c"], lambda p, a, b: "A" if p == "p" else "yes")
    for bad in (math.nan, math.inf, 1.0):  # the bootstrap never reaches wilson_interval's own check
        with pytest.raises(ValueError, match="confidence must lie in"):
            win_rate(["p"], ["a"], ["b"], shorter_wins, confidence=bad, interval="bootstrap")


# -------------------------------------------------------------------------------- judge audits
TOY_PROMPTS = [
    "What is 2 plus 3?",
    "What is the capital of Peru?",
    "What is 4 times 5?",
    "What is 9 minus 1?",
]


def longer_wins(prompt, a, b):
    return "tie" if len(a) == len(b) else ("A" if len(a) > len(b) else "B")


def test_judge_agreement_by_hand():
    prompts, concise, verbose = verbosity_pairs(TOY_PROMPTS)
    assert all(len(v) > len(c) for c, v in zip(concise, verbose, strict=True))
    # truth prefers every concise answer; this judge gets 3 of 4 right and reverses the last
    truth = {(p, c): "concise" for p, c in zip(prompts, concise, strict=True)}

    def three_of_four(prompt, a, b):
        good = "A" if (prompt, a) in truth else "B"
        return {"A": "B", "B": "A"}[good] if prompt == TOY_PROMPTS[3] else good

    result = judge_agreement(prompts, concise, verbose, three_of_four)
    assert (result.agreement, result.reversed, result.undecided, result.n_decided) == (0.75, 0.25, 0.0, 4)
    assert (result.low, result.high) == pytest.approx(wilson_interval(3, 4))
    assert result.consistency == 1.0 and result.first_position_share == 0.5
    always_a = judge_agreement(prompts, concise, verbose, lambda p, a, b: "A")
    assert (always_a.agreement, always_a.undecided, always_a.first_position_share) == (0.0, 1.0, 1.0)
    assert always_a.consistency == 0.0 and "agrees with the ground truth on 0%" in str(always_a)
    with pytest.raises(ValueError, match="decides none"):
        judge_agreement(prompts, concise, concise, longer_wins)


def test_judge_agreement_asks_an_llm_judge_once_per_order():
    prompts, concise, verbose = verbosity_pairs(TOY_PROMPTS)
    fake = scripted(["A", "B"] * 4)  # order (a, b): A, B, A, B; order (b, a): A, B, A, B
    judge = LLMJudge(None, None, generate_fn=fake, batch_size=2)
    result = judge_agreement(prompts, concise, verbose, judge)
    assert len(fake.seen) == 8 and judge.calls == 8  # 4 comparisons x 2 orders, nothing asked twice
    assert (result.agreement, result.undecided, result.consistency) == (0.0, 1.0, 0.0)


def test_judge_bias_made_to_happen_with_scripted_judges():
    prompts, concise, verbose = verbosity_pairs(TOY_PROMPTS, seed=1)
    verbosity = judge_bias(prompts, verbose, concise, longer_wins, name="verbosity")
    assert (verbosity.rate, verbosity.truth_rate, verbosity.excess, verbosity.n) == (1.0, 0.0, 1.0, 4)
    assert verbosity.low == pytest.approx(wilson_interval(4, 4)[0]) and "excess +100%" in str(verbosity)
    fair = judge_bias(prompts, verbose, concise, toyworld.judge, name="verbosity")
    assert fair.excess == 0.0
    # self-preference: equal quality by the truth (a tie), the judge always picks its own model's text
    own, other = ["mine 1", "mine 2"], ["theirs 1", "theirs 2"]
    selfish = judge_bias(
        ["p", "q"],
        own,
        other,
        lambda p, a, b: "A" if a.startswith("mine") else "B",
        name="self-preference",
        truth=lambda p, a, b: "tie",
    )
    assert (selfish.rate, selfish.truth_rate, selfish.excess) == (1.0, 0.5, 0.5)


# ----------------------------------------------------------------------------------- LLM judge


def scripted(outputs):
    """A fake generate that returns the scripted answers in order (no model involved)."""
    queue = list(outputs)
    seen = []

    def fake_generate(model, tokenizer, prompts, *, max_new_tokens):
        seen.extend(prompts)
        return [queue.pop(0) for _ in prompts]

    fake_generate.seen = seen
    return fake_generate


@pytest.mark.parametrize(
    "text, verdict",
    [
        ("A", "A"),
        ("B.", "B"),
        ("**B**", "B"),
        ("(A)", "A"),
        ("Response B is better.", "B"),
        ("Answer: A", "A"),
        ("A is better: it is correct.", "A"),
        ("A better answer is B", "B"),
        ("I think B, because it is concise.", "B"),
        ("Both are equally good.", "tie"),
        ("Either A or B could work", None),
        ("a or b", None),
        ("I'd pick the second one", None),
        ("", None),
    ],
)
def test_parse_verdict(text, verdict):
    assert parse_verdict(text) == verdict


def test_llm_judge_counts_unparseable_and_feeds_win_rate():
    # order (a, b): A, B, gibberish; order (b, a): B, A, "A"
    fake = scripted(["A", "Response B", "hmm", "B", "A is better", "A"])
    judge = LLMJudge(model=None, tokenizer=None, generate_fn=fake, batch_size=2)
    result = win_rate(["p1", "p2", "p3"], ["a1", "a2", "a3"], ["b1", "b2", "b3"], judge)
    assert (result.wins, result.losses, result.ties) == (1, 1, 1)
    assert result.unparseable == 1 and judge.unparseable == 1 and judge.calls == 6
    assert result.inconsistent == 1  # p3: unparseable (tie) then "A" for b: the orders disagree
    assert "Response A:\na1" in fake.seen[0] and "Response B:\nb1" in fake.seen[0]
    assert "Response A:\nb1" in fake.seen[3]  # second order swaps the responses


def test_llm_judge_single_call_and_template_checks():
    judge = LLMJudge(None, None, generate_fn=scripted(["B"]), template="{prompt}|{response_a}|{response_b}")
    assert judge("q", "x", "y") == "B" and judge.counts["B"] == 1
    with pytest.raises(ValueError, match="response_b"):
        LLMJudge(None, None, template="{prompt} {response_a}")
    with pytest.raises(ValueError, match="unknown fields"):
        LLMJudge(None, None, template="{prompt} {response_a} {response_b} {score}")
    with pytest.raises(ValueError, match="2 answers for 1"):
        LLMJudge(None, None, generate_fn=lambda *a, **k: ["A", "B"])("q", "x", "y")


def test_llm_judge_runs_a_real_generate(sft):
    model, tok = sft
    judge = LLMJudge(model, tok, max_new_tokens=4)
    verdict = judge("What is 2 plus 2?", "2 plus 2 is 4.", "2 plus 2 is 5.")
    assert verdict in ("A", "B", "tie") and judge.calls == 1 and len(judge.last_outputs) == 1


# ------------------------------------------------------------------------- implicit rewards


@pytest.fixture(scope="module")
def shifted(sft):
    """A policy that differs from the SFT model: its output head scaled by 1.3."""
    model = copy.deepcopy(sft[0])
    with torch.no_grad():
        model.get_output_embeddings().weight.mul_(1.3)
    return model


PAIRS = [
    {"prompt": "What is 2 plus 2?", "chosen": "2 plus 2 is 4.", "rejected": "2 plus 2 is 5."},
    {"prompt": "What is the capital of France?", "chosen": "Paris.", "rejected": "I don't know."},
    {"prompt": "What is 3 times 3?", "chosen": "9.", "rejected": "Let me think. 3 times 3 is 9."},
]


def test_implicit_rewards_are_zero_for_the_reference(sft):
    model, tok = sft
    chosen, rejected = implicit_rewards(model, model, tok, PAIRS, beta=0.1)
    assert chosen.shape == rejected.shape == (3,)
    assert torch.equal(chosen, torch.zeros(3)) and torch.equal(rejected, torch.zeros(3))
    assert preference_accuracy(chosen, rejected) == 0.0  # ties count as wrong, as in TRL's rewards/accuracies


def test_implicit_rewards_match_the_log_ratio(sft, shifted):
    model, tok = sft
    chosen, rejected = implicit_rewards(shifted, model, tok, Dataset.from_list(PAIRS), beta=0.5, batch_size=2)
    batch = PreferenceCollator(tok.pad_token_id)(tokenize_dataset(tok, PAIRS, max_length=128))
    with torch.no_grad():
        pc, pr = concatenated_forward(shifted, batch)
        rc, rr = concatenated_forward(model, batch)
    torch.testing.assert_close(chosen, 0.5 * (pc - rc), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(rejected, 0.5 * (pr - rr), rtol=1e-5, atol=1e-5)
    assert not torch.equal(chosen, torch.zeros(3))


def test_implicit_rewards_restore_train_mode_and_reject_a_non_finite_beta(sft, shifted):
    model, tok = sft
    shifted.train()
    try:
        implicit_rewards(shifted, model, tok, PAIRS[:1], beta=0.1)
        assert shifted.training and all(m.training for m in shifted.modules())
        assert not model.training
    finally:
        shifted.eval()
    for bad in (math.inf, math.nan, 0.0):
        with pytest.raises(ValueError, match="beta must be a finite number > 0"):
            implicit_rewards(model, model, tok, PAIRS, beta=bad)


def test_preference_accuracy_by_hand():
    assert preference_accuracy(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([0.0, 2.0, 4.0])) == pytest.approx(
        1 / 3
    )
    with pytest.raises(ValueError, match="one shape"):
        preference_accuracy(torch.zeros(2), torch.zeros(3))


# --------------------------------------------------------------------------------- KL estimate


def test_kl_is_zero_against_itself(sft):
    model, tok = sft
    est = kl_to_reference(
        model,
        model,
        tok,
        ["What is 2 plus 2?", "What is the capital of Peru?"],
        num_samples=3,
        max_new_tokens=24,
    )
    assert est.kl == 0.0 and est.kl_per_token == 0.0 and est.log_ratios.shape == (6,)
    assert est.prompts == ["What is 2 plus 2?"] * 3 + ["What is the capital of Peru?"] * 3
    assert len(est.completions) == 6 and est.num_tokens >= 6


def test_kl_of_a_different_policy_is_positive_and_reproducible(sft, shifted):
    model, tok = sft
    prompts = ["What is 2 plus 2?", "What is the capital of Peru?", "What is 7 times 6?"]
    est = kl_to_reference(shifted, model, tok, prompts, num_samples=8, max_new_tokens=32, seed=3)
    again = kl_to_reference(shifted, model, tok, prompts, num_samples=8, max_new_tokens=32, seed=3)
    assert est.kl > 0 and math.isfinite(est.stderr) and est.stderr > 0
    assert est.kl == again.kl and est.completions == again.completions
    assert est.kl_per_token == pytest.approx(est.log_ratios.sum().item() / est.num_tokens)
    assert shifted.training is False and model.training is False
    assert "nats per completion" in str(est)


def test_kl_leaves_the_global_random_state_alone(sft):
    model, tok = sft
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    kl_to_reference(model, model, tok, ["What is 2 plus 2?"], num_samples=2, max_new_tokens=8, seed=0)
    assert torch.equal(torch.rand(3), expected)


def test_kl_errors(sft):
    model, tok = sft
    with pytest.raises(ValueError, match="num_samples"):
        kl_to_reference(model, model, tok, ["What is 2 plus 2?"], num_samples=0)


# --------------------------------------------------------------------------- reward and length


def test_mean_reward_and_length():
    prompts = ["What is 7 plus 5?", "What is 7 plus 5?"]
    assert mean_reward(prompts, ["7 plus 5 is 12.", "I don't know."]) == pytest.approx((1.0 + 0.0) / 2)
    assert mean_reward(prompts, ["a", "b"], reward_fn=lambda p, r: len(r)) == 1.0
    assert mean_length(["one two three", "four"]) == 2.0
    with pytest.raises(ValueError, match="as many completions"):
        mean_reward(prompts, ["x"])


def test_mean_length_in_tokens(sft):
    tok = sft[1]
    assert mean_length(["Paris."], tok) == len(tok("Paris.", add_special_tokens=False)["input_ids"])


# ------------------------------------------------------------------------------------- diagnose

HEALTHY = [
    {"loss": 0.69 - 0.04 * i, "rewards/accuracies": min(1.0, 0.5 + 0.05 * i), "rewards/margins": 0.2 * i}
    for i in range(12)
]
DATA = [
    {
        "prompt": f"What is {i} plus 1?",
        "chosen": f"{i} plus 1 is {i + 1}.",
        "rejected": f"{i} plus 1 is {i + 2}.",
    }
    for i in range(8)
]


def checks(findings):
    return sorted(f.check for f in findings)


def test_diagnose_is_silent_on_a_healthy_run():
    assert diagnose(HEALTHY, DATA, {"learning_rate": 5e-7, "beta": 0.1}) == []
    assert diagnose(HEALTHY, DATA, DPOTrainConfig(), regime="toy") == []  # the toy defaults, lr 1e-4
    assert diagnose(HEALTHY, DATA, {"learning_rate": 5e-6, "beta": 0.1, "lora": True}) == []


def test_diagnose_flags_the_learning_rate_by_regime():
    high = diagnose(None, None, {"learning_rate": 2e-5, "beta": 0.1})
    assert (
        checks(high) == ["learning_rate"] and "too high" in high[0].message and high[0].severity == "warning"
    )
    assert diagnose(None, None, {"learning_rate": 2e-5, "beta": 0.1, "use_peft": True}) == []  # fine for LoRA
    assert checks(diagnose(None, None, DPOTrainConfig())) == ["learning_rate"]  # 1e-4 is toy-only
    low = diagnose(None, None, {"learning_rate": 1e-9, "beta": 0.1})
    assert "too low" in low[0].message
    assert LR_RANGES["lora"][1] == 10 * LR_RANGES["full"][1]


def test_diagnose_reads_a_trl_config():
    from trl import DPOConfig

    config = DPOConfig(
        output_dir="/tmp/dpo-diagnose-test", learning_rate=1e-4, beta=5.0, bf16=False, report_to="none"
    )
    assert checks(diagnose(None, None, config)) == ["beta", "learning_rate"]


@pytest.mark.parametrize("beta, word", [(0.001, "very low"), (5.0, "very high")])
def test_diagnose_flags_beta_extremes(beta, word):
    found = diagnose(None, None, {"learning_rate": 5e-7, "beta": beta})
    assert checks(found) == ["beta"] and word in found[0].message


def test_diagnose_flags_missing_fields_and_length_bias():
    missing = DATA[:3] + [{"prompt": "What is 9 plus 1?", "chosen": "10."}]
    found = diagnose(None, missing)
    assert checks(found) == ["dataset"] and found[0].severity == "error" and "row 3" in found[0].message
    long_chosen = [dict(r, chosen=r["chosen"] + " Let me explain this carefully step by step.") for r in DATA]
    found = diagnose(None, long_chosen)
    assert checks(found) == ["length"] and "ratio" in found[0].message
    assert checks(diagnose(None, [])) == ["dataset"]


def test_diagnose_flags_nan_overfitting_and_stuck_accuracy():
    nan = HEALTHY[:5] + [{"loss": float("nan"), "rewards/accuracies": 0.5, "rewards/margins": float("nan")}]
    found = diagnose(nan)
    assert checks(found) == ["nan_loss"] and found[0].severity == "error" and "step 6" in found[0].message
    overfit = HEALTHY + [{"loss": 0.001, "rewards/accuracies": 1.0, "rewards/margins": 14.0}]
    assert checks(diagnose(overfit)) == ["overfitting"]
    stuck = [{"loss": 0.693, "rewards/accuracies": 0.5, "rewards/margins": 0.0} for _ in range(12)]
    assert checks(diagnose(stuck)) == ["not_learning"]
    trl_log = [dict(h, step=i) for i, h in enumerate(HEALTHY)] + [{"train_runtime": 3.0}]  # TRL's summary row
    assert diagnose(trl_log) == []
    assert all(str(f).startswith("[") and "fix:" in str(f) for f in found)


def test_diagnose_names_a_non_finite_learning_rate_or_beta():
    for name in ("learning_rate", "beta"):
        for bad in (math.nan, math.inf):
            found = diagnose(None, config={"learning_rate": 1e-4, "beta": 0.1, name: bad}, regime="toy")
            assert (
                checks(found) == [name]
                and found[0].severity == "error"
                and "not a finite number" in found[0].message
            )

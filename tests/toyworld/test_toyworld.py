"""The toy world: prompts, styles, the ground-truth reward and judge, splits, models, offline loading."""

import collections
import math
import os
import random
import subprocess
import sys

import pytest

from dpo_course import generate
from dpo_course.toyworld import (
    classify,
    eval_prompts,
    judge,
    on_policy_pairs,
    preference_pairs,
    reward,
    sft_examples,
    train_prompts,
)
from dpo_course.toyworld.corpus import _splits
from dpo_course.toyworld.domain import parse_prompt, write_response


def test_reward_values_written_out():
    p = "What is the capital of France?"
    assert reward(p, "The capital of France is Paris.") == 1.0
    assert reward(p, "The capital of France is Berlin.") == -1.0
    assert reward(p, "I don't know, look it up.") == 0.0
    assert reward(p, "") == -1.0
    verbose = "That is a good question, and I am happy to help you with it. France has many cities. The capital of France is Paris. I hope this helps!"
    # 28 words against 6 concise words: 22 extra words cost 22 * 0.02 = 0.44
    assert reward(p, verbose) == pytest.approx(0.56)
    assert reward("What is 7 plus 5?", "7 plus 5 is 12.") == 1.0
    assert reward("What is 7 plus 5?", "7 plus 5 is 13.") == -1.0
    code = "```python\ndef reverse_string(s):\n    return s[::-1]\n```"
    assert reward("Write a Python function to reverse a string.", code) == 1.0
    assert reward("Write a Python function to reverse a string.", code.replace("s[::-1]", "s")) == -1.0


def test_reward_orders_the_styles():
    for row in sft_examples()[:200]:
        assert classify(row["prompt"], row["response"]) == row["style"]


@pytest.mark.parametrize(
    "prompt, response, error",
    [
        ("", "x", ValueError),
        ("   ", "x", ValueError),
        (None, "x", TypeError),
        ("What is 7 plus 5?", 12, TypeError),
        ("What is the meaning of life?", "42", ValueError),
    ],
)
def test_reward_rejects_bad_input(prompt, response, error):
    with pytest.raises(error) as info:
        reward(prompt, response)
    assert "prompt" in str(info.value) or "response" in str(info.value)


def test_judge():
    p = "What is 3 times 4?"
    assert judge(p, "3 times 4 is 12.", "3 times 4 is 13.") == "A"
    assert judge(p, "I don't know, look it up.", "3 times 4 is 12.") == "B"
    assert judge(p, "3 times 4 is 12.", "3 times 4 is 12.") == "tie"
    with pytest.raises(TypeError, match="response_b"):
        judge(p, "3 times 4 is 12.", None)


def test_eval_prompts_are_held_out():
    held = set(eval_prompts())
    assert len(held) == len(eval_prompts()) == 48
    sft_prompts = {r["prompt"] for r in sft_examples()}
    pair_prompts = set(preference_pairs("train")["prompt"]) | set(preference_pairs("test")["prompt"])
    assert not held & sft_prompts
    assert not held & pair_prompts
    assert not set(train_prompts("train")) & set(train_prompts("test"))
    # every held-out prompt's fact is taught in another phrasing
    facts = {item.item_id for item, _ in _splits()["train"] + _splits()["test"]}
    assert all(item.item_id in facts for item, _ in _splits()["eval"])


def test_preference_pairs_shape():
    ds = preference_pairs("train")
    assert ds.column_names == ["prompt", "chosen", "rejected"]
    assert len(ds) == 632 and len(preference_pairs("test")) == 100
    for row in ds.select(range(50)):
        assert reward(row["prompt"], row["chosen"]) > reward(row["prompt"], row["rejected"])
    with pytest.raises(ValueError, match="split"):
        preference_pairs("validation")


def test_sft_model_loads_fast_and_answers(sft):
    model, tok = sft
    assert 3e5 < sum(p.numel() for p in model.parameters()) < 5e6
    assert tok.chat_template and tok.pad_token == "<|pad|>" and tok.eos_token == "<|end|>"
    out = generate(model, tok, ["What is the capital of Germany?", "What is 3 plus 4?"])
    assert len(out) == 2 and all(isinstance(o, str) and o for o in out)
    assert "<|" not in "".join(out)


def test_sft_model_samples_every_style(sft):
    model, tok = sft
    prompts = eval_prompts() * 4
    samples = generate(model, tok, prompts, do_sample=True, seed=0)
    mix = collections.Counter(classify(p, s) for p, s in zip(prompts, samples))
    assert set(mix) == {"concise", "verbose", "wrong", "refusal"}, mix
    assert all(count >= 0.05 * len(prompts) for count in mix.values()), mix


def test_generate_is_deterministic_for_a_seed(sft):
    model, tok = sft
    a = generate(model, tok, eval_prompts()[:8], do_sample=True, seed=3)
    b = generate(model, tok, eval_prompts()[:8], do_sample=True, seed=3)
    assert a == b


def test_generate_rejects_bad_prompts(sft):
    model, tok = sft
    with pytest.raises(TypeError, match="list"):
        generate(model, tok, "What is 2 plus 2?")
    with pytest.raises(ValueError, match=r"prompts\[1\]"):
        generate(model, tok, ["What is 2 plus 2?", " "])


def _styles(item, styles=("concise", "wrong", "verbose", "refusal"), seed=0):
    rng = random.Random(seed)
    return [write_response(item, s, rng) if s else s for s in styles]


def _scripted_generate(row=-1, planted=()):
    """A stand-in for `generate`: 4 samples per prompt, concise, wrong, verbose, refusal; row `row` gets `planted`."""

    def fake(model, tokenizer, repeated, **kwargs):
        out = []
        for k in range(0, len(repeated), 4):
            out += _styles(
                parse_prompt(repeated[k]),
                planted if k // 4 == row else ("concise", "wrong", "verbose", "refusal"),
                k,
            )
        return out

    return fake


def test_on_policy_pairs_skips_empty_samples_at_the_source(monkeypatch):
    # Issue 14 saw row 241 of the train prompts sample an empty completion (num_samples=4, seed 0; the
    # model ended its turn at once). Sampling differs across torch builds (this venv's CPU torch samples
    # none there), so the empty sample is planted: it scores -1 like a wrong answer, and as the first of
    # the equal worsts it would be the rejected if it were not skipped at the source.
    prompts = train_prompts("train")[:242]
    monkeypatch.setattr(
        "dpo_course._generation.generate", _scripted_generate(241, ("", "concise", "", "wrong"))
    )
    ds = on_policy_pairs(None, None, prompts, num_samples=4, seed=0)
    assert len(ds) == 242 and all(r["chosen"].strip() and r["rejected"].strip() for r in ds)
    assert classify(prompts[241], ds[241]["rejected"]) == "wrong" and ds[241]["rejected_reward"] == -1.0
    assert all(r["chosen_reward"] > r["rejected_reward"] for r in ds)
    # a prompt left with one non-empty sample gives no pair
    monkeypatch.setattr("dpo_course._generation.generate", _scripted_generate(241, ("", "concise", "", "")))
    assert prompts[241] not in on_policy_pairs(None, None, prompts, num_samples=4, seed=0)["prompt"]


def test_on_policy_pairs_best_random_and_bad_arguments(monkeypatch):
    prompts = train_prompts("train")[:60]
    monkeypatch.setattr("dpo_course._generation.generate", _scripted_generate())
    worst = on_policy_pairs(None, None, prompts, num_samples=4, seed=0)
    assert {classify(r["prompt"], r["rejected"]) for r in worst} == {"wrong"}  # the first of the -1s
    rand = on_policy_pairs(None, None, prompts, num_samples=4, seed=0, pairing="best_random")
    rejected = collections.Counter(classify(r["prompt"], r["rejected"]) for r in rand)
    assert set(rejected) == {"wrong", "verbose", "refusal"} and all(v >= 10 for v in rejected.values())
    assert rand["rejected"] == on_policy_pairs(None, None, prompts, seed=0, pairing="best_random")["rejected"]
    for bad in (math.inf, math.nan, 0.0):
        with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
            on_policy_pairs(None, None, prompts, temperature=bad)
    with pytest.raises(ValueError, match="pairing must be one of"):
        on_policy_pairs(None, None, prompts, pairing="worst_best")


def test_on_policy_pairs_with_the_sft_model(sft):
    model, tok = sft
    ds = on_policy_pairs(model, tok, eval_prompts()[:8], num_samples=4, max_new_tokens=40, seed=0)
    assert 0 < len(ds) <= 8
    for r in ds:
        assert r["chosen"].strip() and r["rejected"].strip()
        assert r["chosen_reward"] == reward(r["prompt"], r["chosen"]) > r["rejected_reward"]


OFFLINE_SCRIPT = r"""
import socket, time
def refuse(*a, **k):
    raise OSError("network blocked by the test")
socket.socket.connect = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse
t = time.time()
from dpo_course.toyworld import load_base_model, load_sft_model
model, tok = LOAD
from dpo_course import generate
print(generate(model, tok, ["What is 2 plus 3?"])[0])
print("SECONDS", time.time() - t)
"""


@pytest.mark.parametrize("load", ['load_sft_model("cpu")', 'load_base_model("cpu", long_pretraining=True)'])
def test_default_model_never_touches_the_network(load):
    """The SFT model and base_long (05's ORPO start) load with sockets blocked, in well under 30 s."""
    env = {k: v for k, v in os.environ.items() if k != "DPO_COURSE_MODEL"}
    env["HF_HUB_OFFLINE"] = "1"
    script = OFFLINE_SCRIPT.replace("LOAD", load)
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    seconds = float(proc.stdout.split("SECONDS")[-1])
    assert seconds < 30, f"{load} took {seconds:.1f} s"


def test_model_switch_reads_the_environment(monkeypatch):
    from dpo_course.toyworld import model_source

    monkeypatch.delenv("DPO_COURSE_MODEL", raising=False)
    assert model_source() == "toy"
    monkeypatch.setenv("DPO_COURSE_MODEL", "Qwen/Qwen2.5-0.5B-Instruct")
    assert model_source() == "Qwen/Qwen2.5-0.5B-Instruct"
    assert model_source("toy") == "toy"


def test_build_script_is_deterministic(tmp_path):
    """The weights come from code: a short build twice gives identical tensors (the long stage too)."""
    from safetensors.torch import load_file

    from dpo_course.toyworld.build import build_all

    a = build_all(tmp_path / "a", base_epochs=1, sft_epochs=1, long_epochs=1)
    b = build_all(tmp_path / "b", base_epochs=1, sft_epochs=1, long_epochs=1)
    for which in ("sft", "base_long"):
        wa, wb = load_file(a / which / "model.safetensors"), load_file(b / which / "model.safetensors")
        assert wa.keys() == wb.keys()
        assert all((wa[k] == wb[k]).all() for k in wa), which
    # the long stage continued the base: it moved every tensor away from it
    base = load_file(a / "base" / "model.safetensors")
    assert all(not (base[k] == wa[k]).all() for k in base)


def test_long_stage_leaves_base_and_sft_alone(tmp_path):
    """build_long_base reads base/ and writes base_long/ only: what 00-09 load cannot change."""
    from safetensors.torch import load_file

    from dpo_course.toyworld.build import ASSETS, build_long_base

    (tmp_path / "base").symlink_to(ASSETS / "base")
    before = (ASSETS / "base" / "model.safetensors").read_bytes()
    out = build_long_base(tmp_path, epochs=1)
    assert out == tmp_path / "base_long"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["base", "base_long"]
    assert (ASSETS / "base" / "model.safetensors").read_bytes() == before
    base = load_file(ASSETS / "base" / "model.safetensors")
    assert load_file(out / "model.safetensors").keys() == base.keys()


def test_long_base_knows_the_facts_the_base_does_not():
    """On the 48 held-out prompts' facts, in the pre-training format: correct answer against wrong one."""
    from dpo_course.toyworld import load_base_model
    from dpo_course.toyworld.build import fact_knowledge
    from dpo_course.toyworld.models import toy_model_dir

    assert toy_model_dir("base_long").name == "base_long"
    with pytest.raises(ValueError, match="base_long"):
        toy_model_dir("long")
    base = fact_knowledge(*load_base_model("cpu"))
    long = fact_knowledge(*load_base_model("cpu", long_pretraining=True))
    # measured: base prefers the correct answer on 22/48 (chance), margin -0.5 nats, greedy 0/48;
    # base_long on 47/48, margin +7.2 nats, greedy 31/48
    assert base["prefers_correct"] < 0.6 and base["greedy_correct"] < 0.1
    assert long["prefers_correct"] >= 0.95 and long["margin"] > base["margin"] + 5
    assert long["greedy_correct"] > base["greedy_correct"] + 0.5

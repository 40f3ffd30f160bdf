"""The toy world: prompts, styles, the ground-truth reward and judge, splits, models, offline loading."""

import collections
import os
import subprocess
import sys

import pytest

from dpo_course import generate
from dpo_course.toyworld import (
    classify,
    eval_prompts,
    judge,
    preference_pairs,
    reward,
    sft_examples,
    train_prompts,
)
from dpo_course.toyworld.corpus import _splits


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


OFFLINE_SCRIPT = r"""
import socket, time
def refuse(*a, **k):
    raise OSError("network blocked by the test")
socket.socket.connect = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse
t = time.time()
from dpo_course.toyworld import load_sft_model
model, tok = load_sft_model("cpu")
from dpo_course import generate
print(generate(model, tok, ["What is 2 plus 3?"])[0])
print("SECONDS", time.time() - t)
"""


def test_default_model_never_touches_the_network():
    env = {k: v for k, v in os.environ.items() if k != "DPO_COURSE_MODEL"}
    env["HF_HUB_OFFLINE"] = "1"
    proc = subprocess.run(
        [sys.executable, "-c", OFFLINE_SCRIPT], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    seconds = float(proc.stdout.split("SECONDS")[-1])
    assert seconds < 30, f"loading the toy model took {seconds:.1f} s"


def test_model_switch_reads_the_environment(monkeypatch):
    from dpo_course.toyworld import model_source

    monkeypatch.delenv("DPO_COURSE_MODEL", raising=False)
    assert model_source() == "toy"
    monkeypatch.setenv("DPO_COURSE_MODEL", "Qwen/Qwen2.5-0.5B-Instruct")
    assert model_source() == "Qwen/Qwen2.5-0.5B-Instruct"
    assert model_source("toy") == "toy"


def test_build_script_is_deterministic(tmp_path):
    """The weights come from code: a short build twice gives identical tensors."""
    from safetensors.torch import load_file

    from dpo_course.toyworld.build import build_all

    a = build_all(tmp_path / "a", base_epochs=1, sft_epochs=1)
    b = build_all(tmp_path / "b", base_epochs=1, sft_epochs=1)
    wa, wb = load_file(a / "sft" / "model.safetensors"), load_file(b / "sft" / "model.safetensors")
    assert wa.keys() == wb.keys()
    assert all((wa[k] == wb[k]).all() for k in wa)

"""The real-model switch: the work profile, and the notebooks on a model that is not the toy.

`profile_for` picks the toy's sizes or a T4's; the notebooks run with ``DPO_COURSE_MODEL`` set to a
tiny Qwen2 built here (tests/fixtures/tiny_qwen.py: its own byte-level BPE tokenizer, ChatML,
``<|im_end|>`` as eos and another pad token), offline.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import sys
from pathlib import Path

import pytest
import tiny_qwen as tiny_qwen_module  # loaded by tests/course/conftest.py

from dpo_course.course import WorkProfile, profile_for
from dpo_course.course.profile import REAL, TOY, TOY_SIZED_BELOW, approx_params

# Qwen2.5-0.5B-Instruct's config.json (the fields approx_params reads); 494,032,768 parameters.
QWEN_05B_CONFIG = {
    "hidden_size": 896,
    "num_hidden_layers": 24,
    "vocab_size": 151936,
    "intermediate_size": 4864,
    "num_attention_heads": 14,
    "num_key_value_heads": 2,
    "tie_word_embeddings": True,
}


@pytest.fixture(autouse=True)
def no_forced_profile(monkeypatch):
    monkeypatch.delenv("DPO_COURSE_PROFILE", raising=False)
    monkeypatch.delenv("DPO_COURSE_MODEL", raising=False)


def test_toy_profile_holds_the_numbers_the_notebooks_use():
    p = profile_for("toy")
    assert p.is_toy and p.reason == "MODEL is 'toy'"
    assert (p.batch_size, p.max_length, p.epochs, p.dpo_learning_rate) == (16, 128, 2, 1e-4)
    assert (p.eval_prompts, p.samples_per_prompt, p.max_new_tokens) == (48, 8, 64)
    assert p.dtype == "float32" and p.mixed_precision is None and not p.use_lora
    assert profile_for() == p, "None reads $DPO_COURSE_MODEL, which defaults to the toy"


def test_toy_profile_gives_train_dpo_its_defaults():
    from dpo_course.train import DPOTrainConfig

    assert profile_for("toy").dpo_config() == DPOTrainConfig()


def test_a_hub_id_gets_the_t4_profile_without_the_network():
    p = profile_for("Qwen/Qwen2.5-0.5B-Instruct")
    assert p.name == "real" and not p.is_toy
    assert p.pairs_per_step == TOY.pairs_per_step == 16, "the same pairs per optimizer step: same step counts"
    assert p.batch_size < TOY.batch_size and p.use_lora and p.precompute_ref_log_probs
    assert p.fused_logps and p.activation_checkpointing, "no (B, T, V) logits of a 152k vocabulary"
    assert p.dtype == "float32" and p.mixed_precision == "fp16", "a T4 has fp16 autocast, no bf16"
    assert p.dpo_learning_rate == 5e-7 and p.lora_learning_rate == pytest.approx(10 * p.dpo_learning_rate)


def test_trl_precision_is_fp16_on_cuda_only():
    assert REAL.trl_precision("cuda") == {"fp16": True, "bf16": False}
    assert REAL.trl_precision("cpu") == {"fp16": False, "bf16": False}
    assert TOY.trl_precision("cuda") == {"fp16": False, "bf16": False}


def test_dpo_config_takes_the_profile_and_the_changes():
    config = REAL.dpo_config(beta=0.3, progress=False)
    assert (config.beta, config.batch_size, config.gradient_accumulation_steps) == (0.3, 4, 4)
    assert config.learning_rate == REAL.dpo_learning_rate and config.fused is True
    assert REAL.dpo_config(lora=True).learning_rate == REAL.lora_learning_rate
    with pytest.raises(TypeError):
        REAL.dpo_config(no_such_field=1)


def test_approx_params_matches_qwen_05b():
    assert abs(approx_params(QWEN_05B_CONFIG) - 494_032_768) / 494_032_768 < 0.01
    assert approx_params({"hidden_size": 64}) is None


def _folder(path, **config):
    path.mkdir()
    path.joinpath("config.json").write_text(json.dumps(config))
    return str(path)


def test_a_tiny_local_model_gets_toy_sized_work_and_a_large_one_the_real_profile(tmp_path):
    tiny = {"hidden_size": 64, "num_hidden_layers": 2, "vocab_size": 4096, "intermediate_size": 128}
    p = profile_for(_folder(tmp_path / "tiny", **tiny))
    assert p.is_toy and "toy-sized" in p.reason
    assert profile_for(_folder(tmp_path / "big", **QWEN_05B_CONFIG)).name == "real"


def test_a_loaded_model_is_sized_by_its_parameter_count(sft):
    model, _ = sft
    assert sum(p.numel() for p in model.parameters()) < TOY_SIZED_BELOW
    assert profile_for(model).is_toy


def test_the_environment_variable_forces_a_profile(monkeypatch):
    monkeypatch.setenv("DPO_COURSE_PROFILE", "real")
    assert profile_for("toy").name == "real"
    monkeypatch.setenv("DPO_COURSE_PROFILE", "toy")
    assert profile_for("Qwen/Qwen2.5-0.5B-Instruct").is_toy
    monkeypatch.setenv("DPO_COURSE_PROFILE", "huge")
    with pytest.raises(ValueError, match="DPO_COURSE_PROFILE"):
        profile_for("toy")


def test_profile_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        TOY.batch_size = 2
    assert isinstance(dataclasses.replace(TOY, batch_size=2), WorkProfile)


# ---------------------------------------------------------------------------------------------------
# The tiny Qwen2 fixture, and every solution notebook run on it
# ---------------------------------------------------------------------------------------------------
ROOT = Path(__file__).resolve().parents[2]
SOLUTIONS = sorted((ROOT / "solutions").glob("[0-9][0-9]_*.ipynb"))


@pytest.fixture(scope="session")
def tiny(tiny_qwen):
    from dpo_course.toyworld import load_sft_model

    return load_sft_model("cpu", model_id=str(tiny_qwen["sft"]))


def test_the_fixture_is_not_the_toy(tiny, sft):
    model, tokenizer = tiny
    toy_model, toy_tokenizer = sft
    assert type(model).__name__ == "Qwen2ForCausalLM" != type(toy_model).__name__
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token == "<|endoftext|>"
    assert tokenizer.pad_token_id != tokenizer.eos_token_id
    assert len(tokenizer) != len(toy_tokenizer) and len(tokenizer) <= 4096
    from dpo_course import chat_prompt

    prompt = chat_prompt(tokenizer, "What is 7 plus 5?")
    assert prompt.startswith("<|im_start|>system\n") and prompt.endswith("<|im_start|>assistant\n")
    rendered = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}], tokenize=False
    )
    assert rendered.endswith("Hello.<|im_end|>\n"), "Qwen's template writes a newline after every end of turn"
    assert tokenizer.convert_ids_to_tokens(tokenizer(" Paris")["input_ids"]) == ["ĠParis"]
    assert profile_for(model).is_toy, "a tiny model gets toy-sized work"


def test_load_base_model_follows_the_switch(tiny_qwen, monkeypatch):
    from dpo_course.toyworld import load_base_model
    from dpo_course.toyworld.models import base_model_source

    assert base_model_source("Qwen/Qwen2.5-0.5B-Instruct") == "Qwen/Qwen2.5-0.5B"
    assert base_model_source("toy") == "toy"
    monkeypatch.setenv("DPO_COURSE_MODEL", str(tiny_qwen["sft"]))
    assert base_model_source() == str(tiny_qwen["sft"]), "a local folder without a known base: itself"
    monkeypatch.setenv("DPO_COURSE_BASE_MODEL", str(tiny_qwen["base"]))
    base, tokenizer = load_base_model("cpu")
    assert type(base).__name__ == "Qwen2ForCausalLM" and tokenizer.eos_token == "<|im_end|>"


def test_generate_is_greedy_and_unpenalised_on_a_qwen_generation_config(tiny):
    """Qwen2.5-Instruct's generation_config samples (T 0.7, top-p 0.8, top-k 20) with repetition penalty 1.05:
    `generate` must still be greedy when asked, so evaluations and KL estimates see pi itself."""
    import torch

    from dpo_course import chat_prompt, generate

    model, tokenizer = tiny
    assert model.generation_config.repetition_penalty == 1.05, "the fixture carries Qwen's defaults"
    prompts = ["What is the capital of France?", "What is 7 plus 5?", "Write a function that doubles x."]

    def argmax_decode(prompt: str, steps: int = 24) -> str:
        ids = tokenizer(chat_prompt(tokenizer, prompt), add_special_tokens=False, return_tensors="pt")[
            "input_ids"
        ]
        out: list[int] = []
        with torch.no_grad():
            for _ in range(steps):
                nxt = int(model(input_ids=ids).logits[0, -1].argmax())
                if nxt in (tokenizer.eos_token_id, tokenizer.pad_token_id):
                    break
                out.append(nxt)
                ids = torch.cat([ids, torch.tensor([[nxt]])], dim=1)
        return tokenizer.decode(out, skip_special_tokens=True).strip()

    assert generate(model, tokenizer, prompts, max_new_tokens=24) == [argmax_decode(p) for p in prompts]


def _sample_rows(name: str):
    from datasets import Dataset

    from dpo_course import data

    lines = (data.SAMPLES_DIR / name).read_text(encoding="utf-8").splitlines()
    return Dataset.from_list([json.loads(line) for line in lines if line.strip()])


def test_real_data_loaders_take_the_hub_path_offline(tiny, monkeypatch):
    """The loaders called with hub ids, `datasets.load_dataset` answering from the shipped samples."""
    import datasets

    from dpo_course import data
    from dpo_course.train import load_preference_data

    calls = []
    hub = {
        "Anthropic/hh-rlhf": _sample_rows("hh_rlhf_sample.jsonl"),
        "openbmb/UltraFeedback": _sample_rows("ultrafeedback_sample.jsonl"),
    }

    def fake_load_dataset(path, *args, split=None, **kwargs):
        calls.append((path, split, kwargs))
        return hub[path]

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    hh = data.load_hh_rlhf("Anthropic/hh-rlhf", split="train", data_dir="helpful-base", verbose=False)
    uf = data.load_ultrafeedback("openbmb/UltraFeedback", split="train", format="standard", verbose=False)
    assert calls == [
        ("Anthropic/hh-rlhf", "train", {"data_dir": "helpful-base"}),
        ("openbmb/UltraFeedback", "train", {}),
    ]
    monkeypatch.undo()  # the shipped files, through the local-file path: the same pairs
    assert (
        hh.to_list() == data.load_hh_rlhf(data.SAMPLES_DIR / "hh_rlhf_sample.jsonl", verbose=False).to_list()
    )
    assert len(hh) == 4 and len(uf) == 4
    _, tokenizer = tiny
    report = data.validate_preference_dataset(uf, tokenizer=tokenizer, max_length=128)
    assert report.rows_to_drop() == [], "the Qwen-style tokenizer keeps every sample pair within 128 tokens"
    features = data.tokenize_dataset(tokenizer, uf, max_length=128)
    assert all(f["chosen_ids"][-1] == tokenizer.eos_token_id for f in features), "ends at <|im_end|>"
    assert all(tokenizer.pad_token_id not in f["chosen_ids"] for f in features)
    # the TRL command's loader, with a binarized-format hub id
    binarized = {"trl-lib/ultrafeedback_binarized": datasets.Dataset.from_list(uf.to_list())}
    monkeypatch.setattr(datasets, "load_dataset", lambda path, split=None, **kw: binarized[path])
    rows = load_preference_data("trl-lib/ultrafeedback_binarized", "train", tokenizer=tokenizer)
    assert rows[0]["prompt"][0]["role"] == "user", "plain text becomes conversational for a chat model"


def test_the_two_switch_files_run_every_solution_notebook_once():
    tq = tiny_qwen_module
    first, second = set(tq.NOTEBOOKS_FIRST), set(tq.NOTEBOOKS_SECOND)
    assert not first & second and first | second == {p.name[:2] for p in SOLUTIONS}


@pytest.mark.slow
@pytest.mark.parametrize(
    "notebook",
    [p for p in SOLUTIONS if p.name[:2] in tiny_qwen_module.NOTEBOOKS_FIRST],
    ids=lambda p: p.stem,
)
def test_solution_notebook_runs_on_a_tiny_qwen(notebook, tiny_qwen):
    """Deliver 1 and 3 of issue 15: the notebook, top to bottom, with the switch on and strict checks
    (the others: tests/course/test_real_model_switch_notebooks.py)."""
    failure = tiny_qwen_module.run_switched(notebook, tiny_qwen)
    assert not failure, failure


# ---------------------------------------------------------------------------------------------------
# The README's T4 estimates (scripts/t4_estimates.py)
# ---------------------------------------------------------------------------------------------------
def _t4_estimates():
    if "t4_estimates" not in sys.modules:  # a dataclass module must be in sys.modules while it executes
        spec = importlib.util.spec_from_file_location("t4_estimates", ROOT / "scripts" / "t4_estimates.py")
        sys.modules["t4_estimates"] = module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return sys.modules["t4_estimates"]


def test_readme_holds_the_t4_estimates_of_every_notebook():
    t4 = _t4_estimates()
    assert set(t4.WORK) == {p.stem for p in SOLUTIONS}, "one tally per notebook"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert t4.table() in readme, "README's table is stale: paste `python scripts/t4_estimates.py`"
    assert "estimates" in readme[readme.index("What to expect on a T4") :][:200]


def test_t4_estimates_say_lora_fits_where_full_fine_tuning_does_not():
    t4 = _t4_estimates()
    t4_bytes = 15e9
    for name, (_, full_gb, _, lora_gb) in t4.rows().items():
        assert lora_gb <= full_gb and lora_gb * 1e9 < 0.7 * t4_bytes, name
    # a full fp32 AdamW step on 0.5B: gradients (2 GB) + moments (4 GB) + activations and logits
    assert 6e9 < t4.step_bytes(lora=False) < 9e9 and t4.step_bytes(lora=True) < 2e9

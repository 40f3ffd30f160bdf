"""The real-model switch: the work profile, and the notebooks on a model that is not the toy.

`profile_for` picks the toy's sizes or a T4's; the notebooks run with ``DPO_COURSE_MODEL`` set to a
tiny Qwen2 built here (tests/fixtures/tiny_qwen.py: its own byte-level BPE tokenizer, ChatML,
``<|im_end|>`` as eos and another pad token), offline.
"""

from __future__ import annotations

import dataclasses
import json

import pytest

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
    assert p.fused_logps and p.gradient_checkpointing, "no (B, T, V) logits of a 152k vocabulary"
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

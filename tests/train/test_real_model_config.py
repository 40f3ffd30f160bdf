"""configs/real_model_colab.yaml (the real-model switch on a Colab T4) is valid, without downloading anything.

It is checked the way `dpo-course train` reads it (TRL 1.16's `DPOConfig` is built, every field name is
checked), and its memory is estimated with `dpo_course.scaling` for Qwen2.5-0.5B's published shapes.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import yaml

from dpo_course.scaling import dpo_memory_breakdown, dpo_training_estimate
from dpo_course.toyworld.models import model_source
from dpo_course.train import build_dpo_config, build_peft_config, load_config
from dpo_course.train.trl_command import main

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "real_model_colab.yaml"
# Qwen2.5-0.5B-Instruct's config.json: 24 layers, hidden 896, MLP 4864, 2 KV heads of 64, vocabulary 151,936.
QWEN_05B = dict(n_params=494_032_768, layers=24, hidden=896, intermediate=4864, kv_hidden=128, vocab=151_936)
T4_BYTES, T4_FP16_FLOPS = 15 * 10**9, 65e12


@pytest.fixture()
def offline(monkeypatch):
    """Any attempt to open a connection fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args[:2]}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def test_colab_config_names_a_small_instruct_model_and_a_public_preference_dataset(offline, tmp_path):
    raw = yaml.safe_load(CONFIG.read_text())
    cfg = load_config(CONFIG, {"output_dir": str(tmp_path)})
    assert cfg.model == raw["model"] == "Qwen/Qwen2.5-0.5B-Instruct"
    assert (
        cfg.dataset == "trl-lib/ultrafeedback_binarized" and cfg.split == "train" and cfg.eval_split == "test"
    )
    assert cfg.lora and cfg.lr == 5e-6 and cfg.max_rows == 2000


def test_colab_config_builds_trl_arguments_for_a_t4(offline, tmp_path):
    cfg = load_config(CONFIG, {"output_dir": str(tmp_path)})
    args = build_dpo_config(cfg)
    assert args.fp16 is True and args.bf16 is False, "a T4 has fp16 but no bf16"
    assert args.model_init_kwargs == {"dtype": "float32"}
    assert args.per_device_train_batch_size * args.gradient_accumulation_steps == 16
    assert args.max_length == 512 and args.gradient_checkpointing is True and args.learning_rate == 5e-6
    lora = build_peft_config(cfg)
    assert (lora.r, lora.lora_alpha, lora.target_modules) == (16, 32, "all-linear")
    assert main(["--config", str(CONFIG), "--output-dir", str(tmp_path), "--dry-run"]) == 0


def test_the_notebook_switch_takes_the_same_model(monkeypatch):
    monkeypatch.setenv("DPO_COURSE_MODEL", yaml.safe_load(CONFIG.read_text())["model"])
    assert model_source() == "Qwen/Qwen2.5-0.5B-Instruct"
    monkeypatch.delenv("DPO_COURSE_MODEL")
    assert model_source() == "toy", "the default never touches the network"


def test_colab_config_fits_a_t4_by_estimate():
    cfg = yaml.safe_load(CONFIG.read_text())
    # LoRA r=16 on all seven linear maps of each layer: r * (fan_in + fan_out) parameters per map.
    h, m, kv = QWEN_05B["hidden"], QWEN_05B["intermediate"], QWEN_05B["kv_hidden"]
    lora_params = QWEN_05B["layers"] * cfg["lora_r"] * (2 * (h + h) + 2 * (h + kv) + 3 * (h + m))
    assert lora_params == 8_798_208
    shapes = {k: v for k, v in QWEN_05B.items() if k != "n_params"}
    memory = dpo_memory_breakdown(
        QWEN_05B["n_params"], batch_pairs=cfg["batch_size"], seq_len=cfg["max_length"], dtype_bytes=4,
        lora_params=lora_params, gradient_checkpointing=True, **shapes,
    )  # fmt: skip
    total = sum(memory.values())
    assert memory["reference_weights"] == 0  # the reference is the adapter-off model
    assert total < 0.6 * T4_BYTES, f"{total / 1e9:.1f} GB estimated: too close to a T4's 15 GB"
    run = dpo_training_estimate(
        QWEN_05B["n_params"], num_pairs=cfg["max_rows"], tokens_per_sequence=cfg["max_length"],
        peak_flops=T4_FP16_FLOPS, mfu=0.1, lora=True, lora_params=lora_params,
    )  # fmt: skip
    assert run["hours"] < 1.0, run

"""``dpo-course train`` (dpo_course.train.trl_command): config loading and validation, and a 2-process DDP run."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dpo_course.train import (
    TrainTRLConfig,
    build_dpo_config,
    build_peft_config,
    load_config,
    load_preference_data,
    model_path,
)
from dpo_course.train.trl_command import main

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs"


def test_defaults_are_the_toy_world_with_its_learning_rates():
    cfg = TrainTRLConfig()
    assert (cfg.model, cfg.dataset, cfg.loss_types) == ("toy", "toy", ["sigmoid"])
    assert cfg.lr == 1e-4  # the toy model, full fine-tuning (train.DPOTrainConfig's default)
    assert TrainTRLConfig(lora=True).lr == 1e-3  # an adapter: 10x
    assert TrainTRLConfig(model="Qwen/Qwen2.5-0.5B-Instruct").lr == 5e-7  # a real model: tiny
    assert TrainTRLConfig(model="Qwen/Qwen2.5-0.5B-Instruct", lora=True).lr == 5e-6
    assert TrainTRLConfig(learning_rate=3e-5, lora=True).lr == 3e-5  # given wins
    assert Path(model_path(cfg), "model.safetensors").exists()  # a folder, so ref_model=None can reload it


def test_yaml_then_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("beta: 0.3\nepochs: 3\ndpo_args:\n  warmup_steps: 5\n")
    cfg = load_config(path, {"beta": 0.5, "dpo_args": {"lr_scheduler_type": "constant"}})
    assert cfg.beta == 0.5 and cfg.epochs == 3  # the flag beats the file; the file beats the default
    assert cfg.dpo_args == {"warmup_steps": 5, "lr_scheduler_type": "constant"}  # merged, not replaced


@pytest.mark.parametrize(
    "values, message",
    [
        ({"bogus": 1}, "unknown option"),
        ({"loss_type": "simpo"}, "loss_type"),  # SimPO is CPOTrainer's, not DPOTrainer's
        ({"loss_type": "sigmoid,nope"}, "loss_type"),
        ({"beta": 0}, "beta"),
        ({"beta": float("nan")}, "beta"),  # non-finite values are refused by name like negative ones
        ({"learning_rate": float("inf")}, "learning_rate"),
        ({"epochs": float("inf")}, "epochs"),
        ({"batch_size": 0}, "batch_size"),
        ({"dpo_args": {"max_prompt_length": 256}}, "max_prompt_length"),  # gone in TRL 1.16
        ({"dpo_args": {"evaluation_strategy": "steps"}}, "eval_strategy"),  # renamed
        ({"dpo_args": {"not_a_field": 1}}, "not a field"),
        ({"dpo_args": {"beta": 0.2}}, "its own option"),
    ],
)
def test_bad_options_raise_naming_the_option(values, message):
    with pytest.raises(ValueError, match=message):
        load_config(None, values)


def test_cpu_unfriendly_trl_defaults_are_set_on_purpose(tmp_path):
    args = build_dpo_config(load_config(CONFIGS / "dpo_toy.yaml", {"output_dir": str(tmp_path)}))
    assert args.learning_rate == 1e-4  # TRL's default would be 1e-6
    assert args.gradient_checkpointing is False  # TRL's default is True
    assert args.report_to == [] and args.max_length == 128 and args.eval_strategy == "steps"
    if not __import__("torch").cuda.is_available():
        assert args.bf16 is False and args.use_cpu is True  # TRL would turn bf16 on, even on a CPU


def test_qwen_config_validates_without_downloading(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    raw = yaml.safe_load((CONFIGS / "dpo_qwen_ultrafeedback.yaml").read_text())
    cfg = load_config(CONFIGS / "dpo_qwen_ultrafeedback.yaml", {"output_dir": str(tmp_path)})
    assert cfg.model == raw["model"] == "Qwen/Qwen2.5-0.5B-Instruct"
    assert cfg.dataset == "trl-lib/ultrafeedback_binarized"
    assert cfg.lora and cfg.lr == 5e-6  # an adapter's learning rate, 10x full fine-tuning's 5e-7
    args = build_dpo_config(cfg)
    assert args.gradient_checkpointing is True and args.max_length == 1024
    assert args.per_device_train_batch_size * args.gradient_accumulation_steps == 32
    assert args.model_init_kwargs == {"dtype": "bfloat16"} and args.lr_scheduler_type == "cosine"
    lora = build_peft_config(cfg)
    assert (lora.r, lora.lora_alpha, lora.target_modules) == (16, 32, "all-linear")
    assert main(["--config", str(CONFIGS / "dpo_qwen_ultrafeedback.yaml"), "--dry-run"]) == 0


def test_accelerate_configs_parse():
    kinds = {}
    for name in ("accelerate_ddp", "accelerate_fsdp", "accelerate_zero2"):
        cfg = yaml.safe_load((CONFIGS / f"{name}.yaml").read_text())
        kinds[name] = cfg["distributed_type"]
    assert kinds == {
        "accelerate_ddp": "MULTI_GPU",
        "accelerate_fsdp": "FSDP",
        "accelerate_zero2": "DEEPSPEED",
    }
    assert (
        yaml.safe_load((CONFIGS / "accelerate_zero2.yaml").read_text())["deepspeed_config"]["zero_stage"] == 2
    )


def test_toy_data_is_conversational_so_trl_applies_the_chat_template(sft):
    _, tok = sft
    ds = load_preference_data("toy", "train", max_rows=3, tokenizer=tok)
    assert len(ds) == 3
    assert ds[0]["prompt"][0]["role"] == "user" and ds[0]["chosen"][0]["role"] == "assistant"
    assert isinstance(
        load_preference_data("toy", "test", max_rows=2)[0]["prompt"], str
    )  # no tokenizer: unchanged


def test_local_jsonl_file(tmp_path):
    path = tmp_path / "pairs.jsonl"
    rows = [
        {"prompt": f"What is {i} plus 1?", "chosen": f"{i} plus 1 is {i + 1}.", "rejected": "No idea."}
        for i in range(4)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert load_preference_data(str(path), "train", max_rows=3)["chosen"] == [r["chosen"] for r in rows[:3]]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"prompt": "p", "chosen": "a"}) + "\n")
    with pytest.raises(ValueError, match="rejected"):
        load_preference_data(str(bad), "train")


@pytest.mark.slow
def test_two_process_ddp_run_trains_and_saves(tmp_path):
    """`accelerate launch` with the shipped DDP config, 2 processes on the CPU (gloo): both ranks finish."""
    from transformers import AutoModelForCausalLM

    out = tmp_path / "run"
    launcher = shutil.which("accelerate", path=str(Path(sys.executable).parent)) or shutil.which("accelerate")
    assert launcher, "accelerate's launcher is not installed"
    cmd = [
        launcher, "launch", "--config_file", str(CONFIGS / "accelerate_ddp.yaml"), "--num_processes", "2",
        "--mixed_precision", "no", "-m", "dpo_course.train.trl_command",
        "--max-steps", "6", "--batch-size", "8", "--max-rows", "96", "--learning-rate", "5e-4",
        "--logging-steps", "1", "--output-dir", str(out),
    ]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "", "TQDM_DISABLE": "1"}  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "2 process(es)" in proc.stdout
    for rank in (0, 1):
        assert f"[rank {rank}/2] finished 6 steps" in proc.stdout, proc.stdout[-2000:]
    losses = [r["loss"] for r in json.loads((out / "log_history.json").read_text()) if "loss" in r]
    assert len(losses) == 6 and abs(losses[0] - 0.6931) < 1e-3  # step 1: policy == reference, loss = log 2
    assert sum(losses[-2:]) / 2 < losses[0] - 0.03  # and it falls
    model = AutoModelForCausalLM.from_pretrained(out)
    assert model.config.vocab_size == 768

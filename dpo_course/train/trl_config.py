"""What ``dpo-course train`` runs: `TrainTRLConfig` (YAML file and flags) and the TRL `DPOConfig` built from it.

Taught in 03_training_with_trl. Precedence: the dataclass defaults, then the YAML file, then the flags.
Any other `DPOConfig` field goes in the YAML's ``dpo_args:`` mapping or as ``--dpo-arg name=value``;
every name is checked against TRL 1.16's `DPOConfig`, so a field from an older TRL
(``max_prompt_length``, ``evaluation_strategy``) fails loudly instead of being ignored.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

# Loss types TRL 1.16's DPOTrainer accepts (trl/trainer/dpo_config.py). SimPO and ORPO are other trainers.
TRL_LOSS_TYPES = (
    "sigmoid", "hinge", "ipo", "exo_pair", "nca_pair", "robust", "bco_pair", "sppo_hard", "aot",
    "aot_unpaired", "apo_zero", "apo_down", "discopop", "sft", "sigmoid_norm",
)  # fmt: skip
TOY = "toy"
# Learning rates when none is given: full fine-tuning of a real model needs a tiny one; an adapter about
# 10x more (04_lora_dpo shows why); the 0.9M-parameter toy model trains at 1e-4 (train.DPOTrainConfig).
DEFAULT_LR = {(True, False): 1e-4, (True, True): 1e-3, (False, False): 5e-7, (False, True): 5e-6}


@dataclass
class TrainTRLConfig:
    """What ``dpo-course train`` runs. Taught in 03_training_with_trl (through `train_command`)."""

    model: str = field(
        default=TOY,
        metadata={"help": "'toy' (the toy SFT model), a model folder or a hub id. Start from an SFT model."},
    )
    dataset: str = field(
        default=TOY, metadata={"help": "'toy', a local .json/.jsonl file, or a hub dataset id."}
    )
    split: str = field(
        default="train",
        metadata={"help": "Training split (hub datasets and 'toy'; a local file is one split)."},
    )
    eval_split: str | None = field(
        default=None,
        metadata={"help": "Split to evaluate on every eval_steps, e.g. 'test' for the toy world."},
    )
    max_rows: int | None = field(default=None, metadata={"help": "Keep only the first N training rows."})
    loss_type: str = field(
        default="sigmoid",
        metadata={"help": f"TRL DPO loss; combine with commas, e.g. 'sigmoid,sft'. One of {TRL_LOSS_TYPES}."},
    )
    beta: float = field(
        default=0.1, metadata={"help": "KL strength: higher keeps the policy nearer the reference."}
    )
    learning_rate: float | None = field(
        default=None, metadata={"help": "AdamW lr; default 1e-4 toy, 5e-7 real model, x10 with LoRA."}
    )
    epochs: float = field(
        default=1.0,
        metadata={
            "help": "Passes over the data, TRL's num_train_epochs (a float, as in DPOTrainConfig); ignored when max_steps > 0."
        },
    )
    max_steps: int = field(
        default=-1, metadata={"help": "Stop after this many optimizer steps (-1: use epochs)."}
    )
    batch_size: int = field(default=8, metadata={"help": "Pairs per device per micro-batch."})
    gradient_accumulation_steps: int = field(
        default=1, metadata={"help": "Micro-batches per optimizer step."}
    )
    max_length: int | None = field(
        default=512, metadata={"help": "Prompt + response tokens (TRL 1.16 has no max_prompt_length)."}
    )
    lora: bool = field(
        default=False, metadata={"help": "Train a LoRA adapter; the reference is the base model with it off."}
    )
    lora_r: int = field(default=16, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(
        default=32, metadata={"help": "LoRA scale numerator (the update is alpha/r * B A)."}
    )
    lora_dropout: float = field(default=0.0, metadata={"help": "Dropout on the LoRA input."})
    lora_target_modules: str = field(
        default="all-linear", metadata={"help": "'all-linear' or comma-separated module names."}
    )
    output_dir: str = field(
        default="runs/dpo", metadata={"help": "Where the model (or adapter) and the logs go."}
    )
    seed: int = field(default=0, metadata={"help": "Seeds shuffling, adapter init and everything else."})
    logging_steps: int = field(default=10, metadata={"help": "Log every N optimizer steps."})
    eval_steps: int = field(default=50, metadata={"help": "Evaluate every N steps when eval_split is set."})
    bf16: bool | None = field(
        default=None,
        metadata={
            "help": "bf16 mixed precision; default: on for a CUDA GPU that supports it, off otherwise."
        },
    )
    gradient_checkpointing: bool = field(
        default=False, metadata={"help": "Recompute activations in backward (TRL's default is True)."}
    )
    precompute_ref_log_probs: bool = field(
        default=False, metadata={"help": "Score the reference once up front; no reference model in memory."}
    )
    save: bool = field(
        default=True, metadata={"help": "Save the final model (or adapter) and tokenizer to output_dir."}
    )
    dpo_args: dict = field(
        default_factory=dict, metadata={"help": "Any other DPOConfig field, by its TRL 1.16 name."}
    )

    def __post_init__(self) -> None:
        losses = self.loss_types
        bad = [t for t in losses if t not in TRL_LOSS_TYPES]
        if not losses or bad:
            raise ValueError(
                f"loss_type: unknown {bad or self.loss_type!r}; TRL 1.16's DPOTrainer knows {TRL_LOSS_TYPES}"
            )
        if not 0 < self.beta < math.inf:  # NaN and inf too, by name
            raise ValueError(f"beta must be finite and > 0, got {self.beta}")
        if self.learning_rate is not None and not 0 < self.learning_rate < math.inf:
            raise ValueError(f"learning_rate must be finite and > 0, got {self.learning_rate}")
        if not math.isfinite(self.epochs) or not math.isfinite(self.lora_dropout):
            raise ValueError(
                f"epochs and lora_dropout must be finite, got {self.epochs}, {self.lora_dropout}"
            )
        for name in (
            "batch_size",
            "gradient_accumulation_steps",
            "lora_r",
            "lora_alpha",
            "logging_steps",
            "eval_steps",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_steps <= 0 and not self.epochs > 0:
            raise ValueError("set epochs > 0 or max_steps > 0")
        if self.max_length is not None and self.max_length < 2:
            raise ValueError(f"max_length must be >= 2 or None, got {self.max_length}")
        if not isinstance(self.dpo_args, dict):
            raise TypeError(
                f"dpo_args must be a mapping of DPOConfig fields, got {type(self.dpo_args).__name__}"
            )
        check_dpo_args(self.dpo_args)

    @property
    def loss_types(self) -> list[str]:
        return [t.strip() for t in str(self.loss_type).split(",") if t.strip()]

    @property
    def lr(self) -> float:
        """The learning rate to use: the one given, else a default for this model and LoRA setting."""
        if self.learning_rate is not None:
            return self.learning_rate
        return DEFAULT_LR[(self.model == TOY, self.lora)]


# Fields this module sets itself; passing them through dpo_args would silently fight the flags.
_OWN_DPO_FIELDS = {
    "output_dir", "learning_rate", "beta", "loss_type", "num_train_epochs", "max_steps", "per_device_train_batch_size",
    "per_device_eval_batch_size", "gradient_accumulation_steps", "max_length", "seed", "logging_steps", "eval_steps",
    "eval_strategy", "bf16", "gradient_checkpointing", "activation_checkpointing", "precompute_ref_log_probs", "report_to", "save_strategy",
}  # fmt: skip


def check_dpo_args(dpo_args: dict) -> None:
    """Raise if a key of `dpo_args` is not a TRL 1.16 `DPOConfig` field, naming the old spellings."""
    from trl import DPOConfig

    known = {f.name for f in dataclasses.fields(DPOConfig)}
    renamed = {
        "max_prompt_length": "gone in TRL 1.16: only max_length; filter long prompts yourself",
        "max_completion_length": "gone in TRL 1.16: only max_length",
        "evaluation_strategy": "renamed eval_strategy",
        "rpo_alpha": "gone: add 'sft' to loss_type with loss_weights",
    }
    for key in dpo_args:
        if key in renamed:
            raise ValueError(f"dpo_args: {key!r} is {renamed[key]}")
        if key not in known:
            raise ValueError(f"dpo_args: {key!r} is not a field of TRL's DPOConfig")
        if key in _OWN_DPO_FIELDS:
            raise ValueError(f"dpo_args: set {key!r} with its own option, not through dpo_args")


def load_config(path: str | Path | None = None, overrides: dict | None = None) -> TrainTRLConfig:
    """Defaults, then the YAML file at `path`, then `overrides`; unknown keys raise naming the key."""
    import yaml

    values: dict = {}
    if path is not None:
        loaded = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"{path}: expected a mapping of option: value, got {type(loaded).__name__}")
        values.update(loaded)
    for key, value in (overrides or {}).items():
        if key == "dpo_args":
            values["dpo_args"] = {**values.get("dpo_args", {}), **value}
        else:
            values[key] = value
    names = {f.name for f in dataclasses.fields(TrainTRLConfig)}
    unknown = sorted(set(values) - names)
    if unknown:
        where = f" in {path}" if path else ""
        raise ValueError(
            f"unknown option(s){where}: {unknown}; known: {sorted(names)} (other DPOConfig fields go under dpo_args)"
        )
    return TrainTRLConfig(**values)


def model_path(config: TrainTRLConfig) -> str:
    """The folder or hub id to load: 'toy' is the toy SFT model's folder, so ``ref_model=None`` can reload it."""
    if config.model == TOY:
        from dpo_course.toyworld.models import toy_model_dir

        return str(toy_model_dir("sft"))
    return config.model


def load_preference_data(spec: str, split: str, *, max_rows: int | None = None, tokenizer=None):
    """A `datasets.Dataset` for `DPOTrainer` from 'toy', a .json/.jsonl file or a hub id.

    Plain-text rows (standard format) become conversational when the tokenizer has a chat template:
    `DPOTrainer` applies the chat template to conversational rows only, and a chat model trained on
    prompts without its template learns the wrong context.
    """
    import datasets

    if spec == TOY:
        from dpo_course.toyworld import preference_pairs

        ds = preference_pairs(split)
    elif Path(spec).suffix in (".json", ".jsonl"):
        if not Path(spec).exists():
            raise FileNotFoundError(f"dataset file {spec} does not exist")
        ds = datasets.load_dataset("json", data_files=str(spec), split="train")
    else:
        ds = datasets.load_dataset(spec, split=split)  # a hub id: needs the network
    if len(ds) == 0:
        raise ValueError(f"dataset {spec!r} (split {split!r}) is empty")
    missing = [k for k in ("chosen", "rejected") if k not in ds.column_names]
    if missing:
        raise ValueError(f"dataset {spec!r}: missing field(s) {missing}; it has {ds.column_names}")
    if max_rows is not None:
        ds = ds.select(range(min(max_rows, len(ds))))
    first = ds[0]
    standard = all(isinstance(first.get(k), str) for k in ("prompt", "chosen", "rejected"))
    if standard and tokenizer is not None and getattr(tokenizer, "chat_template", None):
        from dpo_course.data.formats import to_conversational

        ds = ds.map(to_conversational, desc="Converting to conversational format")
    return ds


def build_dpo_config(config: TrainTRLConfig):
    """The TRL `DPOConfig` for `config`, with every CPU-unfriendly TRL default set on purpose."""
    import torch
    from trl import DPOConfig

    from dpo_course._device import get_device

    device = get_device()  # DPO_COURSE_DEVICE=cpu forces the CPU here too
    cuda = device.type == "cuda"
    bf16 = config.bf16 if config.bf16 is not None else bool(cuda and torch.cuda.is_bf16_supported())
    kwargs = dict(
        output_dir=config.output_dir,
        learning_rate=config.lr,  # TRL's default is 1e-6
        beta=config.beta,
        loss_type=config.loss_types,
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        max_length=config.max_length,
        seed=config.seed,
        logging_steps=config.logging_steps,
        eval_strategy="steps" if config.eval_split else "no",
        eval_steps=config.eval_steps,
        save_strategy="no",  # the final model is saved once, below
        bf16=bf16,  # TRL's default is True even on a CPU
        # TRL turns gradient checkpointing on by default; transformers 5 calls it activation_checkpointing
        # (the old name still works but warns), so set the new name.
        activation_checkpointing=config.gradient_checkpointing,
        precompute_ref_log_probs=config.precompute_ref_log_probs,
        report_to=[],
        use_cpu=device.type == "cpu",
        ddp_find_unused_parameters=False,  # every parameter (or adapter) gets a gradient: skip DDP's extra search
    )
    kwargs.update(config.dpo_args)
    return DPOConfig(**kwargs)


def build_peft_config(config: TrainTRLConfig):
    """A `peft.LoraConfig` when ``config.lora``, else None."""
    if not config.lora:
        return None
    from peft import LoraConfig

    targets = config.lora_target_modules
    target_modules = (
        targets if targets == "all-linear" else [t.strip() for t in targets.split(",") if t.strip()]
    )
    return LoraConfig(
        r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
        target_modules=target_modules, task_type="CAUSAL_LM",
    )  # fmt: skip

"""``dpo-course train``: DPO with TRL's `DPOTrainer`, from a YAML file and/or command-line flags.

Taught in 03_training_with_trl (the same settings, by hand, in a notebook) and used again in
09_scaling_up (several GPUs). The script is plain `DPOTrainer` code, so it runs unchanged under
``accelerate launch`` (DDP, FSDP or DeepSpeed: the launcher's config decides, see ``configs/``)::

    dpo-course train --max-steps 20                                   # the toy world, this machine
    dpo-course train --config configs/dpo_toy.yaml --beta 0.2 --lora  # a file, two fields overridden
    accelerate launch --config_file configs/accelerate_ddp.yaml -m dpo_course.train.trl_command \\
        --config configs/dpo_qwen_ultrafeedback.yaml                 # a real model on several GPUs

Precedence: the dataclass defaults, then the YAML file, then the flags. Any other `DPOConfig`
field goes in the YAML's ``dpo_args:`` mapping or as ``--dpo-arg name=value``; every name is
checked against TRL's `DPOConfig`, so a field from an older TRL (``max_prompt_length``,
``evaluation_strategy``) fails loudly instead of being ignored.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import typing
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
    """What ``dpo-course train`` runs. Taught in 03_training_with_trl."""

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
        if not self.beta > 0:
            raise ValueError(f"beta must be > 0, got {self.beta}")
        if self.learning_rate is not None and not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
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


def train(config: TrainTRLConfig):
    """Build and run the `DPOTrainer`; save the model (or adapter); return the trainer."""
    from transformers import AutoTokenizer
    from trl import DPOTrainer

    path = model_path(config)
    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    args = build_dpo_config(config)
    train_ds = load_preference_data(
        config.dataset, config.split, max_rows=config.max_rows, tokenizer=tokenizer
    )
    eval_ds = None
    if config.eval_split:
        eval_ds = load_preference_data(config.dataset, config.eval_split, tokenizer=tokenizer)
    # The model goes in as a path: every process loads it the way its launcher (DDP, FSDP, DeepSpeed) needs,
    # and with ref_model=None TRL loads the reference from the same path (or, with LoRA, turns the adapter off).
    trainer = DPOTrainer(
        model=path, ref_model=None, args=args, train_dataset=train_ds, eval_dataset=eval_ds,
        processing_class=tokenizer, peft_config=build_peft_config(config),
    )  # fmt: skip
    acc = trainer.accelerator
    if acc.is_main_process:
        print(f"DPO on {len(train_ds)} pairs from {config.dataset!r} | model {path} | lr {args.learning_rate:g} | "
              f"beta {config.beta} | loss {config.loss_types} | lora {config.lora} | {acc.num_processes} process(es)")  # fmt: skip
    trainer.train()
    if config.save:
        trainer.save_model(config.output_dir)  # every rank calls it: FSDP and ZeRO gather the weights
    losses = [r["loss"] for r in trainer.state.log_history if "loss" in r]
    if acc.is_main_process:
        out = Path(config.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "log_history.json").write_text(json.dumps(trainer.state.log_history, indent=1))
        (out / "train_config.json").write_text(json.dumps(dataclasses.asdict(config), indent=1))
    last = f"{losses[-1]:.4f}" if losses else "n/a"
    print(
        f"\n[rank {acc.process_index}/{acc.num_processes}] finished {trainer.state.global_step} steps; last logged loss {last}",
        flush=True,
    )
    return trainer


# ------------------------------------------------------------------ command line


def _parse(kind, text: str):
    """Turn a flag's text into the field's type; 'none' means None for optional fields."""
    optional = type(None) in typing.get_args(kind)
    base = next((a for a in typing.get_args(kind) if a is not type(None)), kind) if optional else kind
    if optional and text.lower() in ("none", "null"):
        return None
    if base is bool:
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
    return base(text)


def _parse_dpo_arg(text: str) -> tuple[str, object]:
    import yaml

    if "=" not in text:
        raise argparse.ArgumentTypeError(f"--dpo-arg expects name=value, got {text!r}")
    key, value = text.split("=", 1)
    return key.strip(), yaml.safe_load(value)  # YAML parses numbers, booleans and lists


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="dpo-course train",
        description="DPO with TRL's DPOTrainer. Defaults, then --config FILE, then these flags.",
    )
    p.add_argument("--config", type=Path, help="YAML file of options (see configs/dpo_toy.yaml)")
    p.add_argument("--dpo-arg", action="append", default=[], type=_parse_dpo_arg, metavar="NAME=VALUE",
                   help="any other DPOConfig field, e.g. --dpo-arg warmup_steps=10 (repeatable)")  # fmt: skip
    p.add_argument(
        "--dry-run", action="store_true", help="validate and print the config, then stop (loads nothing)"
    )
    hints = typing.get_type_hints(TrainTRLConfig)
    for f in dataclasses.fields(TrainTRLConfig):
        if f.name == "dpo_args":
            continue
        kind = hints[f.name]
        p.add_argument(
            "--" + f.name.replace("_", "-"), dest=f.name, default=argparse.SUPPRESS,
            type=lambda text, kind=kind: _parse(kind, text), metavar=f.name.upper(), help=f.metadata.get("help"),
        )  # fmt: skip
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``dpo-course train`` and ``python -m dpo_course.train.trl_command``; returns an exit code."""
    args = vars(parser().parse_args(argv))
    path, dry_run = args.pop("config"), args.pop("dry_run")
    dpo_args = dict(args.pop("dpo_arg"))
    if dpo_args:
        args["dpo_args"] = dpo_args
    try:
        config = load_config(path, args)
    except (ValueError, TypeError, FileNotFoundError) as exc:
        print(f"dpo-course train: {exc}", file=sys.stderr)
        return 2
    if dry_run:
        dpo = build_dpo_config(config)
        shown = {
            k: getattr(dpo, k)
            for k in ("learning_rate", "beta", "loss_type", "max_length", "bf16", "gradient_checkpointing")
        }
        print(
            json.dumps(
                {"config": dataclasses.asdict(config), "model_path": model_path(config), "dpo_config": shown},
                indent=1,
                default=str,
            )
        )
        return 0
    train(config)
    return 0


if __name__ == "__main__":
    sys.exit(main())

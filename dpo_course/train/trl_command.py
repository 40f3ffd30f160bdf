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
from pathlib import Path

from dpo_course.train.trl_config import (
    TrainTRLConfig,
    build_dpo_config,
    build_peft_config,
    load_config,
    load_preference_data,
    model_path,
)


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

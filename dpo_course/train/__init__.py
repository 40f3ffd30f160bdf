"""Training: one loop for DPO and its variants and for KTO, one DPO step, and the TRL command.

- config.py: `DPOTrainConfig`, one config object, validated against the loss registry (03, 05);
- loop.py: `batch_plan` (seeded, length-grouped batches) and the loop DPO and KTO share (03);
- step.py: `dpo_forward`, `dpo_step`: the one DPO step the trainer, the benchmarks and 04/09 run;
- dpo.py: `train_dpo`, a from-scratch trainer that logs what TRL logs (03);
- kto.py: `KTOTrainConfig`, `train_kto`, `unpair` (05);
- trl_config.py: `TrainTRLConfig` and the TRL `DPOConfig` built from it (03);
- trl_command.py: `dpo-course train`, TRL's `DPOTrainer` from a YAML file or flags (03, 09).
"""

from dpo_course.train.config import DPOTrainConfig, config_dict
from dpo_course.train.dpo import reference_logps, train_dpo
from dpo_course.train.kto import KTOTrainConfig, train_kto, unpair
from dpo_course.train.loop import batch_plan
from dpo_course.train.step import StepOutput, dpo_forward, dpo_step
from dpo_course.train.trl_command import main as train_command
from dpo_course.train.trl_config import (
    TRL_LOSS_TYPES,
    TrainTRLConfig,
    build_dpo_config,
    build_peft_config,
    check_dpo_args,
    load_config,
    load_preference_data,
    model_path,
)

__all__ = [
    "TRL_LOSS_TYPES",
    "DPOTrainConfig",
    "KTOTrainConfig",
    "StepOutput",
    "TrainTRLConfig",
    "batch_plan",
    "build_dpo_config",
    "build_peft_config",
    "check_dpo_args",
    "config_dict",
    "dpo_forward",
    "dpo_step",
    "load_config",
    "load_preference_data",
    "model_path",
    "reference_logps",
    "train_command",
    "train_dpo",
    "train_kto",
    "unpair",
]

"""Training: one loop for DPO and its variants and for KTO, one DPO step, and the TRL command.

- dpo.py: `DPOTrainConfig`, `train_dpo`, a from-scratch trainer that logs what TRL logs (03);
- step.py: `dpo_step`, the single optimisation step the trainer, the benchmarks and 04/09 run;
- kto.py: `KTOTrainConfig`, `train_kto`, `unpair` (05);
- trl_command.py: `dpo-course train`, TRL's `DPOTrainer` from a YAML file or flags (03).
"""

from dpo_course.train.dpo import DPOTrainConfig, config_dict, reference_logps, train_dpo
from dpo_course.train.kto import KTOTrainConfig, train_kto, unpair
from dpo_course.train.step import dpo_step
from dpo_course.train.trl_command import (
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
    "TrainTRLConfig",
    "build_dpo_config",
    "build_peft_config",
    "check_dpo_args",
    "config_dict",
    "dpo_step",
    "load_config",
    "load_preference_data",
    "model_path",
    "reference_logps",
    "train_dpo",
    "train_kto",
    "unpair",
]

"""A from-scratch DPO trainer: one config object, one loop, the loss looked up by name.

Taught in 02_dpo_loss_from_scratch (one step by hand) and 03_training_with_trl (beside TRL's
`DPOTrainer`). The loop holds no loss math: it scores ``[chosen; rejected]`` in one forward pass
(`concatenated_forward`) and hands the log-probs to ``LOSSES[config.loss_type]``.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, field

import torch
from tqdm.auto import tqdm

from dpo_course._device import eval_mode, get_device, seed_everything
from dpo_course.data.tokenize import PreferenceCollator, tokenize_dataset
from dpo_course.logprobs.forward import concatenated_forward
from dpo_course.losses import LOSSES
from dpo_course.train.loop import batch_plan

# loss_type -> (needs a reference model, log-probs averaged over tokens rather than summed).
# IPO is averaged because TRL feeds it averaged log-probs; SimPO and ORPO are length-normalised.
LOSS_SPECS = {
    "sigmoid": (True, False),
    "ipo": (True, True),
    "hinge": (True, False),
    "simpo": (False, True),
    "orpo": (False, True),
}


@dataclass
class DPOTrainConfig:
    """Everything `train_dpo` needs to know; validated on creation. Taught in 03_training_with_trl."""

    beta: float = field(
        default=0.1, metadata={"help": "KL strength: higher keeps the policy nearer the reference."}
    )
    loss_type: str = field(default="sigmoid", metadata={"help": f"one of {sorted(LOSS_SPECS)}"})
    label_smoothing: float = field(
        default=0.0, metadata={"help": "cDPO's label noise e (sigmoid loss only), in [0, 0.5)."}
    )
    simpo_gamma: float = field(default=1.0, metadata={"help": "SimPO's target margin gamma."})
    orpo_lambda: float = field(default=0.1, metadata={"help": "ORPO's weight on the odds-ratio term."})
    learning_rate: float = field(
        default=1e-4,
        metadata={"help": "AdamW learning rate (toy model, full fine-tuning; real models use ~5e-7..5e-6)."},
    )
    epochs: float = field(
        default=2.0,
        metadata={
            "help": "Passes over the pairs, TRL's num_train_epochs: a float, 1.5 runs the first half of the "
            "second pass (ceil(epochs x batches per epoch) micro-batches)."
        },
    )
    batch_size: int = field(
        default=16, metadata={"help": "Pairs per micro-batch (2x rows in the forward pass)."}
    )
    gradient_accumulation_steps: int = field(
        default=1, metadata={"help": "Micro-batches per optimizer step."}
    )
    max_length: int = field(
        default=128, metadata={"help": "Prompt + response tokens; responses are truncated to fit."}
    )
    max_grad_norm: float = field(default=1.0, metadata={"help": "Gradient clipping norm (0 disables)."})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay."})
    lr_scheduler: str = field(
        default="linear", metadata={"help": "'linear' decay to 0 (TRL's default) or 'constant'."}
    )
    seed: int = field(
        default=0, metadata={"help": "Seeds shuffling and everything else: same seed, same run."}
    )
    device: str | None = field(
        default=None, metadata={"help": "'cpu', 'cuda', 'mps' or None for get_device()."}
    )
    group_by_length: bool = field(
        default=True,
        metadata={
            "help": "Batch pairs of similar length (shuffled within groups of GROUP_BATCHES batches, batch order "
            "shuffled; seeded): far less padding. False: plain shuffled batches."
        },
    )
    precompute_ref_log_probs: bool = field(
        default=True,
        metadata={"help": "Score the reference once before training, so no second model sits in memory."},
    )
    fused: bool = field(
        default=False, metadata={"help": "Use fused log-probs (never holds the (B, T, V) logits)."}
    )
    progress: bool = field(default=True, metadata={"help": "Show a tqdm progress bar."})

    def __post_init__(self) -> None:
        if self.loss_type not in LOSS_SPECS:
            raise ValueError(f"loss_type must be one of {sorted(LOSS_SPECS)}, got {self.loss_type!r}")
        if not self.beta > 0:
            raise ValueError(f"beta must be > 0, got {self.beta}")
        if not 0 <= self.label_smoothing < 0.5:
            raise ValueError(f"label_smoothing must be in [0, 0.5), got {self.label_smoothing}")
        if self.label_smoothing and self.loss_type != "sigmoid":
            raise ValueError("label_smoothing (cDPO) applies to loss_type='sigmoid' only")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        if (
            isinstance(self.epochs, bool)
            or not isinstance(self.epochs, int | float)
            or not 0 < self.epochs < math.inf
        ):
            raise ValueError(f"epochs must be a finite number > 0, got {self.epochs!r}")
        for name in ("batch_size", "gradient_accumulation_steps", "max_length"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if self.lr_scheduler not in ("linear", "constant"):
            raise ValueError(f"lr_scheduler must be 'linear' or 'constant', got {self.lr_scheduler!r}")

    @property
    def needs_reference(self) -> bool:
        return LOSS_SPECS[self.loss_type][0]

    @property
    def average_logps(self) -> bool:
        return LOSS_SPECS[self.loss_type][1]


def compute_loss(config: DPOTrainConfig, policy_chosen, policy_rejected, ref_chosen=None, ref_rejected=None):
    """Per-example losses and the implicit rewards to log, from ``LOSSES[config.loss_type]``."""
    fn = LOSSES[config.loss_type]
    if config.loss_type == "sigmoid":
        return fn(
            policy_chosen,
            policy_rejected,
            ref_chosen,
            ref_rejected,
            beta=config.beta,
            label_smoothing=config.label_smoothing,
        )
    if config.loss_type in ("ipo", "hinge"):
        return fn(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta=config.beta)
    if config.loss_type == "simpo":
        return fn(policy_chosen, policy_rejected, beta=config.beta, gamma=config.simpo_gamma)
    losses, _ = fn(policy_chosen, policy_rejected, lam=config.orpo_lambda)
    # TRL's ORPO logs beta * average log-prob as the "reward"; with lambda in beta's place.
    return losses, config.orpo_lambda * policy_chosen.detach(), config.orpo_lambda * policy_rejected.detach()


@torch.no_grad()
def reference_logps(model, batches, config: DPOTrainConfig) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Reference log-probs of every batch, computed once (the model is the untrained policy)."""
    with eval_mode(model):
        return [
            tuple(
                t.detach()
                for t in concatenated_forward(model, b, average=config.average_logps, fused=config.fused)
            )
            for b in batches
        ]


def _check_finite(step: int, stats: dict[str, torch.Tensor]) -> None:
    for name, value in stats.items():
        if not torch.isfinite(value).all():
            raise FloatingPointError(
                f"step {step}: {name} is {value.flatten()[~torch.isfinite(value.flatten())][0].item()}; "
                "training stopped. Lower the learning rate, check the data for empty responses, "
                "or raise beta."
            )


def train_dpo(policy, tokenizer, dataset, config: DPOTrainConfig | None = None, *, reference=None):
    """Train `policy` on preference pairs with DPO (or a variant); returns ``(policy, history)``.

    Taught in 03_training_with_trl. `dataset` has plain-text prompt/chosen/rejected. The reference
    is a frozen copy of the starting policy (or `reference`, a model of the same tokenizer, when
    given); by default its log-probs are computed once before training. `history` is a list of dicts, one per optimizer step, with what TRL logs: ``loss``,
    ``rewards/chosen``, ``rewards/rejected``, ``rewards/accuracies``, ``rewards/margins``,
    ``logps/chosen``, ``logps/rejected`` (plus ``step``, ``epoch`` and ``learning_rate``).
    """
    config = config or DPOTrainConfig()
    seed_everything(config.seed)
    device = torch.device(config.device) if config.device else get_device()
    policy.to(device)
    features = tokenize_dataset(tokenizer, dataset, max_length=config.max_length)
    if not features:
        raise ValueError("the dataset is empty: nothing to train on")
    collate = PreferenceCollator(tokenizer.pad_token_id)
    lengths = [len(f["prompt_ids"]) + max(len(f["chosen_ids"]), len(f["rejected_ids"])) for f in features]
    plan = batch_plan(
        lengths, config.batch_size, config.epochs, seed=config.seed, group_by_length=config.group_by_length
    )

    def to_batch(idx):
        return {k: v.to(device) for k, v in collate([features[i] for i in idx]).items()}

    # Reference log-probs, keyed by row index, so shuffling cannot mismatch them.
    ref_model = None
    ref_cache: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    if config.needs_reference:
        if reference is not None:
            reference = reference.to(device).eval().requires_grad_(False)
        if config.precompute_ref_log_probs:
            by_length = sorted(range(len(features)), key=lengths.__getitem__)  # little padding
            chunks = [
                by_length[s : s + config.batch_size] for s in range(0, len(by_length), config.batch_size)
            ]
            scored = reference_logps(
                reference if reference is not None else policy, map(to_batch, chunks), config
            )
            for idx, (rc, rr) in zip(chunks, scored):
                for j, i in enumerate(idx):
                    ref_cache[i] = (rc[j], rr[j])
        else:
            ref_model = (
                reference if reference is not None else copy.deepcopy(policy).eval().requires_grad_(False)
            )

    opt = torch.optim.AdamW(policy.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    total_steps = math.ceil(len(plan) / config.gradient_accumulation_steps)
    if config.lr_scheduler == "linear":
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: max(0.0, 1 - s / total_steps))
    else:
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)

    history: list[dict[str, float]] = []
    policy.train()
    bar = tqdm(
        total=total_steps, desc=f"DPO ({config.loss_type})", disable=not config.progress, mininterval=1.0
    )
    step, micro, acc = 0, 0, []
    for micro_index, (epoch, idx) in enumerate(plan):
        batch = to_batch(idx)
        pc, pr = concatenated_forward(policy, batch, average=config.average_logps, fused=config.fused)
        rc = rr = None
        if config.needs_reference:
            if ref_model is not None:
                with torch.no_grad():
                    rc, rr = concatenated_forward(
                        ref_model, batch, average=config.average_logps, fused=config.fused
                    )
            else:
                rc = torch.stack([ref_cache[i][0] for i in idx])
                rr = torch.stack([ref_cache[i][1] for i in idx])
        losses, chosen_r, rejected_r = compute_loss(config, pc, pr, rc, rr)
        loss = losses.mean()
        _check_finite(step + 1, {"loss": loss, "logps/chosen": pc, "logps/rejected": pr})
        (loss / config.gradient_accumulation_steps).backward()
        acc.append(
            {
                "loss": loss.item(),
                "rewards/chosen": chosen_r.mean().item(),
                "rewards/rejected": rejected_r.mean().item(),
                "rewards/accuracies": (chosen_r > rejected_r).float().mean().item(),
                "rewards/margins": (chosen_r - rejected_r).mean().item(),
                "logps/chosen": pc.mean().item(),
                "logps/rejected": pr.mean().item(),
            }
        )
        micro += 1
        last = micro_index == len(plan) - 1
        if micro % config.gradient_accumulation_steps and not last:
            continue
        if config.max_grad_norm:
            grad_norm = torch.nn.utils.clip_grad_norm_(policy.parameters(), config.max_grad_norm)
            _check_finite(step + 1, {"grad_norm": grad_norm})
        lr = sched.get_last_lr()[0]
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        step += 1
        record = {k: sum(a[k] for a in acc) / len(acc) for k in acc[0]}
        record.update(step=step, epoch=epoch, learning_rate=lr)
        history.append(record)
        acc = []
        bar.update(1)
        bar.set_postfix(
            loss=f"{record['loss']:.3f}", margin=f"{record['rewards/margins']:.2f}", refresh=False
        )
    bar.close()
    policy.eval()
    return policy, history


def config_dict(config: DPOTrainConfig) -> dict:
    """The config as a plain dict (for logs, `diagnose`, and saving beside a model)."""
    return asdict(config)

"""Per-step time of `train_dpo` against TRL's `DPOTrainer` on the same toy model, data and settings.

    python benchmarks/toy_step_time.py --steps 30

Both train the toy SFT model on the same 16-pair batches (beta 0.1, lr 1e-4, AdamW, fp32, CPU by default)
with the reference scored live (a second model in memory) and, separately, precomputed. Each step is timed
from the start of the forward pass to the end of the optimizer step; the median over the steps after a
warm-up is reported. Prints a markdown table last.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time

import torch
from datasets import Dataset
from transformers import TrainerCallback

from dpo_course.toyworld import load_sft_model, preference_pairs
from dpo_course.train import DPOTrainConfig, train_dpo


class _StepTimer(TrainerCallback):
    def __init__(self):
        self.times, self._t = [], None

    def on_step_begin(self, args, state, control, **kwargs):
        self._t = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.times.append(time.perf_counter() - self._t)


def time_ours(model, tok, ds, batch, precompute, device) -> list[float]:
    import dpo_course.train.step as train_module  # dpo_forward, the step train_dpo runs

    times, real_step = [], torch.optim.AdamW.step

    # Time a step as TRL's callback does: from the first forward of the step to the optimizer update.
    marks = {"t": None}
    real_forward = train_module.concatenated_forward

    def forward(m, b, **kw):
        if m.training and marks["t"] is None:
            marks["t"] = time.perf_counter()
        return real_forward(m, b, **kw)

    def step(self, *a, **kw):
        out = real_step(self, *a, **kw)
        times.append(time.perf_counter() - marks["t"])
        marks["t"] = None
        return out

    train_module.concatenated_forward, torch.optim.AdamW.step = forward, step
    try:
        cfg = DPOTrainConfig(
            epochs=1, batch_size=batch, precompute_ref_log_probs=precompute, progress=False, device=device
        )
        train_dpo(copy.deepcopy(model), tok, ds, cfg)
    finally:
        train_module.concatenated_forward, torch.optim.AdamW.step = real_forward, real_step
    return times


def time_trl(model, tok, ds, batch, precompute, device) -> list[float]:
    from trl import DPOConfig, DPOTrainer

    conv = Dataset.from_list(
        [
            {
                "prompt": [{"role": "user", "content": r["prompt"]}],
                "chosen": [{"role": "assistant", "content": r["chosen"]}],
                "rejected": [{"role": "assistant", "content": r["rejected"]}],
            }
            for r in ds
        ]
    )
    timer = _StepTimer()
    with tempfile.TemporaryDirectory() as tmp:
        args = DPOConfig(
            output_dir=tmp,
            per_device_train_batch_size=batch,
            num_train_epochs=1,
            learning_rate=1e-4,
            beta=0.1,
            max_length=128,
            logging_steps=1000,
            report_to=[],
            bf16=False,
            use_cpu=device == "cpu",
            gradient_checkpointing=False,
            save_strategy="no",
            precompute_ref_log_probs=precompute,
            dataloader_num_workers=0,
        )
        trainer = DPOTrainer(
            model=copy.deepcopy(model),
            ref_model=copy.deepcopy(model),
            args=args,
            train_dataset=conv,
            processing_class=tok,
            callbacks=[timer],
        )
        trainer.train()
    return timer.times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    model, tok = load_sft_model(args.device)
    ds = preference_pairs("train").select(range(args.steps * args.batch))
    rows = []
    for precompute in (False, True):
        ours = time_ours(model, tok, ds, args.batch, precompute, args.device)[args.warmup :]
        trl = time_trl(model, tok, ds, args.batch, precompute, args.device)[args.warmup :]
        o, t = statistics.median(ours) * 1e3, statistics.median(trl) * 1e3
        rows.append((precompute, o, t))
    print(
        f"\nMedian step time on {args.device} ({torch.get_num_threads()} threads), batch {args.batch} pairs, "
        f"{args.steps - args.warmup} timed steps"
    )
    print("| reference | train_dpo ms | DPOTrainer ms | DPOTrainer / train_dpo |\n|---|---|---|---|")
    for precompute, o, t in rows:
        print(f"| {'precomputed' if precompute else 'live model'} | {o:.1f} | {t:.1f} | {t / o:.2f}x |")


if __name__ == "__main__":
    main()

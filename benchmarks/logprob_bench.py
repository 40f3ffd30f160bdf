"""Benchmark per-token log-probs (forward + backward) and whole DPO steps, on a GPU or a CPU.

    python benchmarks/logprob_bench.py --tokens 8192 --hidden 2048 --vocab 128256 --dtype bf16 --device cuda
    python benchmarks/logprob_bench.py --dpo-step --device cuda            # 16 layers, hidden 2048, 4 x 1024

Log-prob mode scores N tokens through an LM head (H -> V) with each method of
`dpo_course.scaling.LOGPROB_METHODS` and reports the median time of forward + backward (gradients
to the hidden states and to the head, every token's log-prob seeded with gradient 1) and the peak
extra memory of one more forward + backward (`dpo_course.scaling.peak_memory`: on CUDA,
max_memory_allocated minus memory_allocated before, after a reset; on a CPU, the running total of
torch's allocations and frees as torch's profiler records them, so no tracemalloc and no allocator
slack; the hidden/weight gradients count). Times: CUDA events on a GPU, wall time on a CPU.
"max err" is the largest |log p| difference from fp32 logits computed 1024 tokens at a time.

DPO-step mode times a whole step on a random Llama (policy forward and backward over [chosen;
rejected], reference forward, AdamW step): full logits against `concatenated_forward(fused=True)`,
with and without gradient checkpointing, and TRL 1.16 `DPOTrainer` with the same settings.

The markdown table is printed LAST and written, with a JSON copy, under --out (default
benchmarks/results/) with the device in the file name and the table header.
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from dpo_course.scaling import (
    LOGPROB_METHODS,
    count_params,
    device_name,
    dpo_step_flops,
    enable_checkpointing,
    peak_memory,
    random_llama,
    random_preference_batch,
    time_and_memory,
)
from dpo_course.train import dpo_step

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
MIB = 2**20


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tokens", type=int, default=8192, help="scored tokens N (log-prob mode)")
    p.add_argument("--hidden", type=int, default=2048, help="hidden size H")
    p.add_argument("--vocab", type=int, default=128256, help="vocabulary size V")
    p.add_argument(
        "--dtype", choices=[*DTYPES, "auto"], default="auto", help="auto: bf16 on CUDA, fp32 on CPU"
    )
    p.add_argument("--repeats", type=int, default=5, help="timed repeats (the median is reported)")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:i]")
    p.add_argument("--methods", nargs="*", help="substrings of method names to run (default: all)")
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dpo-step", action="store_true", help="time whole DPO steps instead")
    p.add_argument("--layers", type=int, default=16, help="decoder layers (DPO-step mode)")
    p.add_argument("--intermediate", type=int, default=None, help="MLP size (default 4 * hidden)")
    p.add_argument("--pairs", type=int, default=4, help="preference pairs per step (DPO-step mode)")
    p.add_argument("--seq-len", type=int, default=1024, help="tokens per sequence, prompt + response")
    p.add_argument("--no-trl", action="store_true", help="skip TRL's DPOTrainer in DPO-step mode")
    p.add_argument("--no-checkpointing", action="store_true", help="skip the gradient-checkpointing runs")
    args = p.parse_args(argv)
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    args.device = torch.device(args.device)
    if args.dtype == "auto":
        args.dtype = "bf16" if args.device.type == "cuda" else "fp32"
    for name in ("tokens", "hidden", "vocab", "repeats", "layers", "pairs", "seq_len"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    return args


def load_note(device: torch.device) -> str:
    """On a CPU, the 1-minute load average: timings on a shared machine are only as good as it is quiet."""
    if device.type != "cpu" or not hasattr(os, "getloadavg"):
        return ""
    return f" Load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores."


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()[:60]


def fmt_time(seconds, error: str | None = "OOM") -> str:
    return (error if error == "OOM" else "error") if seconds is None else f"{seconds * 1000:.1f}"


def fmt_mib(n, error: str | None = "OOM") -> str:
    return (error if error == "OOM" else "error") if n is None else f"{n / MIB:.0f}"


def free(device: torch.device) -> None:
    gc.collect()  # a trainer or model caught in a reference cycle would keep its GPU memory
    if device.type == "cuda":
        torch.cuda.empty_cache()


# ------------------------------------------------------------------------------ log-prob mode


@torch.no_grad()
def reference_logps(hidden, weight, targets, chunk: int = 1024) -> torch.Tensor:
    out = []
    w = weight.float()
    for s in range(0, hidden.shape[0], chunk):
        z = hidden[s : s + chunk].float() @ w.t()  # (chunk, V) fp32
        out.append(z.log_softmax(-1).gather(-1, targets[s : s + chunk, None]).squeeze(-1))
    return torch.cat(out)


def run_logprobs(args) -> tuple[list[dict], str]:
    dev, dtype = args.device, DTYPES[args.dtype]
    gen = torch.Generator().manual_seed(args.seed)
    hidden = torch.randn(args.tokens, args.hidden, generator=gen).to(dev, dtype).requires_grad_()  # (N, H)
    weight = (
        (torch.randn(args.vocab, args.hidden, generator=gen) * 0.02).to(dev, dtype).requires_grad_()
    )  # (V, H)
    targets = torch.randint(0, args.vocab, (args.tokens,), generator=gen).to(dev)  # (N,)
    exact = reference_logps(hidden, weight, targets)
    rows = []
    for name, fn in LOGPROB_METHODS.items():
        if args.methods and not any(m.lower() in name.lower() for m in args.methods):
            continue
        free(dev)
        row = {"method": name}
        try:
            r = time_and_memory(fn, hidden, weight, targets, repeats=args.repeats, warmup=args.warmup)
            row.update(seconds=r["seconds"], peak_bytes=r["peak_bytes"])
            if not name.startswith("floor"):
                row["max_err"] = (r["values"].float() - exact).abs().max().item()
        except torch.cuda.OutOfMemoryError:
            row.update(seconds=None, peak_bytes=None, error="OOM")
        except Exception as err:  # one broken method must not lose the others' numbers
            row.update(seconds=None, peak_bytes=None, error=f"{type(err).__name__}: {err}"[:300])
            print(f"  {name}: {row['error']}", flush=True)
        hidden.grad = weight.grad = None
        print(f"  {name:28s} {fmt_time(row['seconds'])} ms  {fmt_mib(row['peak_bytes'])} MiB", flush=True)
        rows.append(row)
    logits = args.tokens * args.vocab
    header = (
        f"Per-token log-probs, forward + backward, on {device_name(dev)}: N={args.tokens} tokens, "
        f"H={args.hidden}, V={args.vocab}, {args.dtype}, median of {args.repeats}. "
        f"One (N, V) logits tensor: {logits * 4 / MIB:.0f} MiB in fp32, {logits * 2 / MIB:.0f} MiB in bf16."
        + load_note(dev)
    )
    lines = [header, "", "| method | median ms | peak extra MiB | max err vs fp32 |", "|---|---:|---:|---:|"]
    for r in rows:
        err = f"{r['max_err']:.1e}" if r.get("max_err") is not None else "-"
        lines.append(
            f"| {r['method']} | {fmt_time(r['seconds'], r.get('error'))} | {fmt_mib(r['peak_bytes'], r.get('error'))} | {err} |"
        )
    return rows, "\n".join(lines)


# ------------------------------------------------------------------------------ DPO-step mode


def clock(dev) -> float:
    """A time stamp (s) taken once the device has finished the work queued on it: wall time for GPU work too."""
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    return time.perf_counter()


def policy_and_reference(args):
    """The random Llama both DPO-step timers train (shape, dtype, device and seed from `args`), and a frozen copy
    of it as the reference."""
    policy = random_llama(
        hidden=args.hidden,
        layers=args.layers,
        vocab=args.vocab,
        intermediate=args.intermediate,
        dtype=DTYPES[args.dtype],
        device=args.device,
        seed=args.seed,
    )
    return policy, copy.deepcopy(policy).eval().requires_grad_(False)


def peak_allocated(dev) -> int | None:
    """All memory allocated at the peak since the last reset (CUDA only; None on a CPU)."""
    return torch.cuda.max_memory_allocated(dev) if dev.type == "cuda" else None


def time_our_step(args, fused: bool, checkpointing: bool) -> dict:
    dev = args.device
    policy, reference = policy_and_reference(args)
    if checkpointing:
        enable_checkpointing(policy)
    opt = torch.optim.AdamW(policy.parameters(), lr=1e-6)
    batch = random_preference_batch(args.pairs, args.seq_len, args.vocab, device=dev, seed=args.seed)
    n = count_params(policy, exclude_embeddings=True)
    for _ in range(args.warmup):  # also creates AdamW's state
        dpo_step(policy, opt, batch, reference=reference, fused=fused)
    times = []
    for _ in range(args.repeats):
        t0 = clock(dev)
        dpo_step(policy, opt, batch, reference=reference, fused=fused)
        times.append(clock(dev) - t0)
    _, peak = peak_memory(dpo_step, policy, opt, batch, reference=reference, fused=fused, device=dev)
    total = peak_allocated(dev)
    del policy, reference, opt
    free(dev)
    return {"seconds": statistics.median(times), "peak_extra": peak, "peak_total": total, "n_params": n}


def _word_tokenizer(vocab: int):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = {"<pad>": 0, "<eos>": 1, **{f"w{i}": i for i in range(2, vocab)}}
    tok = Tokenizer(models.WordLevel(words, unk_token="<pad>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>")


def time_trl_step(args, checkpointing: bool) -> dict:
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import DPOConfig, DPOTrainer

    dev, dtype = args.device, DTYPES[args.dtype]
    steps = args.warmup + args.repeats
    batch = random_preference_batch(args.pairs * steps, args.seq_len, args.vocab, seed=args.seed)
    ids, p_len = batch["input_ids"].tolist(), args.seq_len // 2
    half = len(ids) // 2

    def text(row):
        return " ".join(f"w{i}" for i in row)

    rows = [
        {
            "prompt": text(ids[i][:p_len]),
            "chosen": " " + text(ids[i][p_len:-1]),
            "rejected": " " + text(ids[half + i][p_len:-1]),
        }
        for i in range(half)
    ]  # the trainer appends <eos>: seq_len tokens per sequence
    policy, reference = policy_and_reference(args)
    times: list[float] = []

    class Clock(TrainerCallback):
        def on_step_begin(self, *a, **k):
            self.t0 = clock(dev)

        def on_step_end(self, *a, **k):
            times.append(clock(dev) - self.t0)

    with tempfile.TemporaryDirectory() as out:
        config = DPOConfig(
            output_dir=out,
            per_device_train_batch_size=args.pairs,
            max_steps=steps,
            learning_rate=1e-6,
            max_length=args.seq_len,
            gradient_checkpointing=checkpointing,
            bf16=dtype == torch.bfloat16,
            fp16=dtype == torch.float16,
            use_cpu=dev.type == "cpu",
            report_to="none",
            save_strategy="no",
            logging_strategy="no",
            disable_tqdm=True,
            dataloader_num_workers=0,
            seed=args.seed,
        )
        trainer = DPOTrainer(
            policy,
            ref_model=reference,
            args=config,
            train_dataset=Dataset.from_list(rows),
            processing_class=_word_tokenizer(args.vocab),
            callbacks=[Clock()],
        )
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)
        trainer.train()
    total = peak_allocated(dev)
    del trainer, policy, reference
    free(dev)
    return {"seconds": statistics.median(times[args.warmup :]), "peak_extra": None, "peak_total": total}


def run_dpo_steps(args) -> tuple[list[dict], str]:
    runs = [("dpo_course, full logits", False, False), ("dpo_course, fused log-probs", True, False)]
    if not args.no_checkpointing:
        runs += [
            ("dpo_course, full logits + checkpointing", False, True),
            ("dpo_course, fused + checkpointing", True, True),
        ]
    trl_runs = (
        []
        if args.no_trl
        else [("TRL DPOTrainer", False)]
        + ([] if args.no_checkpointing else [("TRL DPOTrainer + checkpointing", True)])
    )
    rows, n = [], None
    tokens = args.pairs * args.seq_len
    for name, fused, ckpt in runs + [(name, None, ckpt) for name, ckpt in trl_runs]:
        try:
            r = time_trl_step(args, ckpt) if fused is None else time_our_step(args, fused, ckpt)
            n = r.get("n_params", n)
        except torch.cuda.OutOfMemoryError:
            r = {"seconds": None, "peak_extra": None, "peak_total": None, "error": "OOM"}
            free(args.device)
        except Exception as err:  # e.g. a TRL API change: keep the other runs' numbers
            r = {
                "seconds": None,
                "peak_extra": None,
                "peak_total": None,
                "error": f"{type(err).__name__}: {err}"[:300],
            }
            print(f"  {name}: {r['error']}", flush=True)
            free(args.device)
        r["method"] = name
        rows.append(r)
        print(f"  {name:40s} {fmt_time(r['seconds'], r.get('error'))} ms", flush=True)
    flops = dpo_step_flops(n, tokens, tokens) if n else None
    for r in rows:
        r["tflops_per_s"] = flops / r["seconds"] / 1e12 if flops and r["seconds"] else None
    header = (
        f"DPO step on {device_name(args.device)}: random Llama, {args.layers} layers, hidden {args.hidden}, "
        f"vocab {args.vocab}, {args.pairs} pairs x {args.seq_len} tokens, {args.dtype}, AdamW, median of "
        f"{args.repeats}. Model FLOPs per step (6N + 2N per token, N = {n:,} without the input embedding): "
        f"{flops / 1e12:.2f} TFLOP (recomputation under checkpointing not counted)."
        if n
        else "DPO step: every run failed"
    )
    header += load_note(args.device) + (
        " Peak extra: one step after warm-up (AdamW state already there), beyond what was allocated before it;"
        " peak allocated (CUDA only): all memory at that step's peak, or over the whole run for TRL."
    )
    lines = [
        header,
        "",
        "| run | median ms/step | achieved TFLOP/s | peak extra MiB | peak allocated MiB |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        tf = f"{r['tflops_per_s']:.3g}" if r["tflops_per_s"] else "-"
        failed = fmt_time(None, r.get("error"))
        extra = (
            fmt_mib(r["peak_extra"])
            if r["peak_extra"] is not None
            else (failed if r["seconds"] is None else "-")
        )
        total = (
            fmt_mib(r["peak_total"])
            if r["peak_total"] is not None
            else (failed if r["seconds"] is None else "-")
        )
        lines.append(
            f"| {r['method']} | {fmt_time(r['seconds'], r.get('error'))} | {tf} | {extra} | {total} |"
        )
    return rows, "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.manual_seed(args.seed)
    name = device_name(args.device)
    print(f"device: {name} | torch {torch.__version__}", flush=True)
    if args.dpo_step:
        rows, table = run_dpo_steps(args)
        stem = f"dpo_step_{slug(name)}_{args.dtype}_L{args.layers}_H{args.hidden}_V{args.vocab}_B{args.pairs}_T{args.seq_len}"
    else:
        rows, table = run_logprobs(args)
        stem = f"logprob_{slug(name)}_{args.dtype}_N{args.tokens}_H{args.hidden}_V{args.vocab}"
    args.out.mkdir(parents=True, exist_ok=True)
    settings = {k: str(v) if isinstance(v, (Path, torch.device)) else v for k, v in vars(args).items()}
    (args.out / f"{stem}.md").write_text(table + "\n")
    (args.out / f"{stem}.json").write_text(
        json.dumps(
            {"device": name, "torch": torch.__version__, "settings": settings, "results": rows}, indent=2
        )
        + "\n"
    )
    print(f"wrote {args.out / stem}.md and .json\n", flush=True)
    print(table)
    return int(any(r.get("error") not in (None, "OOM") for r in rows))  # a broken method fails the run


if __name__ == "__main__":
    sys.exit(main())

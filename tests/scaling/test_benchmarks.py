"""Smoke test of benchmarks/logprob_bench.py at tiny sizes on the CPU: it runs, prints its table last, writes files."""

import importlib.util
import json
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "logprob_bench.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("logprob_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny ops: one thread is fastest on a busy runner
    yield module
    torch.set_num_threads(threads)


def _last_table(text: str) -> list[str]:
    lines = text.strip().splitlines()
    assert lines[-1].startswith("|"), "the markdown table must be printed last"
    table = []
    for line in reversed(lines):
        if not line.startswith("|"):
            break
        table.insert(0, line)
    return table


def test_logprob_mode_tiny(bench, tmp_path, capsys):
    argv = [
        "--tokens",
        "64",
        "--hidden",
        "16",
        "--vocab",
        "500",
        "--repeats",
        "1",
        "--device",
        "cpu",
        "--out",
        str(tmp_path),
    ]
    assert bench.main(argv) == 0
    table = _last_table(capsys.readouterr().out)
    assert len(table) == 2 + len(bench.LOGPROB_METHODS)  # header, rule, one row per method
    (md,) = tmp_path.glob("logprob_cpu*_fp32_N64_H16_V500.md")
    data = json.loads(md.with_suffix(".json").read_text())
    assert data["device"].startswith("cpu") and "cpu" in md.read_text().split("\n")[0]
    errors = [r["max_err"] for r in data["results"] if "max_err" in r]
    assert len(errors) == len(bench.LOGPROB_METHODS) - 1 and max(errors) < 1e-4  # every method agrees (fp32)
    assert all(r["seconds"] > 0 and r["peak_bytes"] >= 0 for r in data["results"])


def test_dpo_step_mode_tiny_with_trl(bench, tmp_path, capsys):
    argv = [
        "--dpo-step",
        "--layers",
        "1",
        "--hidden",
        "32",
        "--vocab",
        "128",
        "--pairs",
        "1",
        "--seq-len",
        "16",
        "--repeats",
        "1",
        "--device",
        "cpu",
        "--no-checkpointing",
        "--out",
        str(tmp_path),
    ]
    assert bench.main(argv) == 0
    table = _last_table(capsys.readouterr().out)
    assert [row.split("|")[1].strip() for row in table[2:]] == [
        "dpo_course, full logits",
        "dpo_course, fused log-probs",
        "TRL DPOTrainer",
    ]
    (js,) = tmp_path.glob("dpo_step_cpu*.json")
    rows = json.loads(js.read_text())["results"]
    assert all(r["seconds"] and r["seconds"] > 0 for r in rows)

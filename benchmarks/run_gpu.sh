#!/usr/bin/env bash
# The GPU checks of issue 9 in one short run (about 3-4 minutes on an H100; every step has a timeout,
# 7.5 minutes in all):
#   1. the GPU tests:            pytest -m gpu tests/
#   2. per-token log-probs:      N=8192 tokens, H=2048, V=128256, bf16, forward + backward
#   3. whole DPO steps:          random Llama 3.2 1B shape (16 layers, hidden 2048, V=128256),
#                                4 pairs x 1024 tokens, bf16: full logits vs fused, +/- checkpointing, TRL
# Needs the course installed with a CUDA build of torch (`make setup TORCH_SPEC=torch`); no network.
# Results (markdown + JSON + logs) go to $OUT when it is set, else to benchmarks/results/.
# Exit status: non-zero if any step failed (the later steps still run).
set -uo pipefail
cd "$(dirname "$0")/.."
DEST="${OUT:-benchmarks/results}"
PY="${PYTHON:-python}"
mkdir -p "$DEST"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 MPLBACKEND=Agg TOKENIZERS_PARALLELISM=false
status=0

step() {  # step NAME SECONDS COMMAND...: run with a timeout, log to $DEST/NAME.log, remember a failure
    local name=$1 limit=$2
    shift 2
    echo "=== $name (timeout ${limit}s): $*"
    timeout "$limit" "$@" 2>&1 | tee "$DEST/$name.log"
    local rc=${PIPESTATUS[0]}
    if [ "$rc" -ne 0 ]; then
        echo "=== $name FAILED with exit status $rc"
        status=1
    fi
}

step environment 60 bash -c "nvidia-smi; $PY -c 'import torch, transformers, trl; print(torch.__version__, torch.version.cuda, transformers.__version__, trl.__version__, torch.cuda.get_device_name())'"
step pytest_gpu 150 "$PY" -m pytest -m gpu tests/ -q -p no:cacheprovider
step logprob_bench 90 "$PY" benchmarks/logprob_bench.py --tokens 8192 --hidden 2048 --vocab 128256 --dtype bf16 \
    --repeats 10 --warmup 2 --device cuda --out "$DEST"
step dpo_step_bench 210 "$PY" benchmarks/logprob_bench.py --dpo-step --layers 16 --hidden 2048 --vocab 128256 \
    --pairs 4 --seq-len 1024 --dtype bf16 --repeats 5 --warmup 2 --device cuda --out "$DEST"
echo "=== results in $DEST"
exit $status

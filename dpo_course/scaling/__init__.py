"""Scaling DPO up: what a step costs, measured and estimated. Taught in 09_scaling_up.

- estimates.py: parameter counts, FLOPs per step, the memory breakdown, sharding, a whole-run estimate;
- measure.py: peak memory (CUDA or a Linux CPU), saved activations, timed steps, device names;
- fixtures.py: random Llamas and preference batches of any shape (no download);
- logprob_methods.py: the per-token log-prob implementations the benchmarks compare;
- quantize.py: NF4, QLoRA's 4-bit base, in plain torch (its numerics on any device; taught in 04_lora_dpo).
"""

from dpo_course.scaling.estimates import (
    PEAK_BF16_FLOPS,
    STRATEGIES,
    count_params,
    dpo_memory_breakdown,
    dpo_step_flops,
    dpo_training_estimate,
    shard_per_gpu,
)
from dpo_course.scaling.fixtures import enable_checkpointing, random_llama, random_preference_batch
from dpo_course.scaling.logprob_methods import (
    LOGPROB_METHODS,
    floor_logps,
    fused_logps,
    naive_fp32_logps,
    naive_lowp_logps,
    trl_chunked_logps,
    trl_selective_logps,
)
from dpo_course.scaling.measure import (
    SavedTensorMeter,
    cpu_name,
    device_name,
    peak_memory,
    peak_rss,
    saved_tensor_bytes,
    time_and_memory,
)
from dpo_course.scaling.quantize import (
    NF4_CODE,
    NF4Tensor,
    dequantize_nf4,
    nf4_bits_per_param,
    nf4_round_trip,
    normal_float_code,
    quantize_nf4,
    simulate_nf4_base_,
)

__all__ = [
    "LOGPROB_METHODS",
    "NF4_CODE",
    "NF4Tensor",
    "PEAK_BF16_FLOPS",
    "STRATEGIES",
    "SavedTensorMeter",
    "count_params",
    "cpu_name",
    "dequantize_nf4",
    "device_name",
    "dpo_memory_breakdown",
    "dpo_step_flops",
    "dpo_training_estimate",
    "enable_checkpointing",
    "floor_logps",
    "fused_logps",
    "naive_fp32_logps",
    "naive_lowp_logps",
    "nf4_bits_per_param",
    "nf4_round_trip",
    "normal_float_code",
    "peak_memory",
    "peak_rss",
    "quantize_nf4",
    "random_llama",
    "random_preference_batch",
    "saved_tensor_bytes",
    "shard_per_gpu",
    "simulate_nf4_base_",
    "time_and_memory",
    "trl_chunked_logps",
    "trl_selective_logps",
]

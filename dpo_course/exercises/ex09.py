"""Exercises of 09_scaling_up: the bytes of the logits (9.1), the FLOPs of a step (9.2), a memory budget (9.3)."""

from __future__ import annotations

from dpo_course.exercises.framework import Case, Exercise, Mistake
from dpo_course.scaling.estimates import dpo_step_flops

_BYTES = {"fp32": 4, "bf16": 2}


def _step_flops(n_params, chosen_tokens, rejected_tokens, precomputed_reference=False):
    return dpo_step_flops(
        n_params, chosen_tokens, rejected_tokens, precomputed_reference=precomputed_reference
    )


def _logits_bytes(batch_pairs, seq_len, vocab, dtype):
    if dtype not in _BYTES:
        raise ValueError(f"dtype must be one of {sorted(_BYTES)}, got {dtype!r}")
    return 2 * batch_pairs * seq_len * vocab * _BYTES[dtype]


q1 = Exercise(
    name="Exercise 9.1 (memory of the logits)",
    prompt=(
        "Write logits_bytes(batch_pairs, seq_len, vocab, dtype): the bytes of the logits tensor of one DPO "
        "forward pass over a batch of batch_pairs pairs, dtype 'fp32' or 'bf16'."
    ),
    reference=_logits_bytes,
    cases=[
        Case((4, 1024, 128256, "bf16"), label="4 pairs x 1024 tokens, Llama 3 vocabulary, bf16"),
        Case((1, 10, 100, "fp32"), label="1 pair x 10 tokens, V = 100, fp32"),
    ],
    hints=[
        "The forward pass scores [chosen; rejected]: how many rows does the logits tensor have?",
        "Shape (2B, T, V); an fp32 number takes 4 bytes, a bf16 number 2.",
        "2 * batch_pairs * seq_len * vocab * {'fp32': 4, 'bf16': 2}[dtype]",
    ],
    solution_code="""
def logits_bytes(batch_pairs, seq_len, vocab, dtype):
    bytes_per_element = {"fp32": 4, "bf16": 2}[dtype]
    return 2 * batch_pairs * seq_len * vocab * bytes_per_element  # (2B, T, V)
""",
    answer_name="logits_bytes",
    mistakes=[
        Mistake(
            "one half",
            lambda b, t, v, d: b * t * v * _BYTES[d],
            "That is (B, T, V): the batch stacks chosen and rejected, so the logits are (2B, T, V).",
        ),
        Mistake(
            "bits",
            lambda b, t, v, d: 2 * b * t * v * _BYTES[d] * 8,
            "That is bits: fp32 is 4 bytes (32 bits) per element, bf16 2 bytes.",
        ),
        Mistake(
            "always fp32",
            lambda b, t, v, d: 2 * b * t * v * 4,
            "bf16 takes 2 bytes per element, not 4.",
        ),
    ],
)


q2 = Exercise(
    name="Exercise 9.2 (FLOPs of a DPO step)",
    prompt=(
        "Write step_flops(n_params, chosen_tokens, rejected_tokens, precomputed_reference=False): the FLOPs of "
        "one full-fine-tuning DPO step, policy forward + backward and reference forward."
    ),
    reference=_step_flops,
    cases=[
        Case((1_000_000, 100, 80), label="N = 1M, 100 chosen and 80 rejected tokens"),
        Case(
            (1_000_000, 100, 80),
            {"precomputed_reference": True},
            label="the same, reference log-probs precomputed",
        ),
        Case((1_235_814_400, 4096, 4096), label="Llama 3.2 1B, 4 pairs of 1024 tokens"),
    ],
    hints=[
        "Per token: the policy costs 2N forward and 4N backward; the reference only runs forward.",
        "Every token of the chosen AND the rejected sequences goes through both models.",
        "(6 + (0 if precomputed_reference else 2)) * n_params * (chosen_tokens + rejected_tokens)",
    ],
    solution_code="""
def step_flops(n_params, chosen_tokens, rejected_tokens, precomputed_reference=False):
    tokens = chosen_tokens + rejected_tokens          # both halves of [chosen; rejected]
    policy = 6 * n_params * tokens                    # 2N forward + 4N backward per token
    reference = 0 if precomputed_reference else 2 * n_params * tokens  # forward only
    return policy + reference
""",
    answer_name="step_flops",
    mistakes=[
        Mistake(
            "chosen only",
            lambda n, c, r, precomputed_reference=False: (6 if precomputed_reference else 8) * n * c,
            "You counted the chosen tokens only: the rejected sequences go through both models too.",
        ),
        Mistake(
            "reference backward",
            lambda n, c, r, precomputed_reference=False: (6 if precomputed_reference else 12) * n * (c + r),
            "The reference is frozen: it runs forward only (2N per token), never backward.",
        ),
        Mistake(
            "no reference",
            lambda n, c, r, precomputed_reference=False: 6 * n * (c + r),
            "6N per token is the policy alone (the lesson's formula): add 2N per token for the reference's forward.",
        ),
        Mistake(
            "ignores precomputed",
            lambda n, c, r, precomputed_reference=False: 8 * n * (c + r),
            "With precomputed_reference=True the reference's log-probs are already known: no reference forward.",
        ),
    ],
)


# ------------------------------------------------------------------ q3: a memory budget


def _state_bytes(n_params, lora_params=0, precomputed_reference=False):
    if lora_params:  # frozen bf16 base (it is also the reference, adapter off) + fp32 adapters with AdamW
        return 2 * n_params + 16 * lora_params
    reference = 0 if precomputed_reference else 2 * n_params
    return 16 * n_params + reference  # 2 bf16 weights + 2 bf16 grads + 12 fp32 master, m, v; + bf16 reference


q3 = Exercise(
    name="Exercise 9.3 (a memory budget)",
    prompt=(
        "Write state_bytes(n_params, lora_params=0, precomputed_reference=False): the bytes of weights, "
        "gradients, optimizer state and reference of a DPO job trained the way real jobs are, in mixed "
        "precision. Full fine-tuning (lora_params=0): bf16 weights and gradients, an fp32 master copy and fp32 "
        "AdamW moments, and a bf16 reference copy unless its log-probs were precomputed. LoRA (lora_params > 0): "
        "the base stays frozen in bf16 and is also the reference (adapter off); the adapters train in fp32 "
        "(PEFT's default) with fp32 gradients and AdamW moments."
    ),
    reference=_state_bytes,
    cases=[
        Case((8_030_261_248,), label="Llama 3.1 8B, full fine-tuning with a reference copy"),
        Case(
            (8_030_261_248,),
            {"precomputed_reference": True},
            label="the same, reference log-probs precomputed",
        ),
        Case((8_030_261_248, 41_943_040), label="the same model, rank-16 LoRA on every linear layer"),
        Case((1_000_000, 10_000), {"precomputed_reference": True}, label="LoRA, precomputed flag set too"),
    ],
    hints=[
        "Count bytes per parameter. Full fine-tuning: weights 2 + gradients 2 + fp32 master 4 + two fp32 moments "
        "4 + 4, and the reference 2. LoRA: every base weight 2 (no gradient, no state, no second copy); every "
        "adapter weight 4 + gradient 4 + moments 4 + 4.",
        "full: 16 * n_params + (0 if precomputed_reference else 2 * n_params), 18 bytes per parameter with the "
        "reference; LoRA: 2 * n_params + 16 * lora_params.",
    ],
    solution_code="""
def state_bytes(n_params, lora_params=0, precomputed_reference=False):
    if lora_params:                      # the frozen base is also the reference: adapter off
        return 2 * n_params + 16 * lora_params       # adapters: fp32 weight 4 + grad 4 + AdamW m 4 + v 4
    reference = 0 if precomputed_reference else 2 * n_params
    return (2 + 2 + 12) * n_params + reference      # bf16 weight, bf16 grad, fp32 master + m + v
""",
    answer_name="state_bytes",
    mistakes=[
        Mistake(
            "pure bf16 AdamW",
            lambda n, lora_params=0, precomputed_reference=False: (
                2 * n + 8 * lora_params if lora_params else (8 if precomputed_reference else 10) * n
            ),
            "That is pure bf16 training (2 + 2 + 4 bytes, and 2 for the reference): at DPO's learning rates bf16 "
            "weights cannot move (09, section 6). Real jobs keep an fp32 master copy and fp32 moments: 12 bytes.",
        ),
        Mistake(
            "no master copy",
            lambda n, lora_params=0, precomputed_reference=False: (
                2 * n + 16 * lora_params if lora_params else (12 if precomputed_reference else 14) * n
            ),
            "You kept fp32 moments but no fp32 master copy of the weights: mixed precision needs it (4 bytes), "
            "because the bf16 weights are what cannot take a tiny update.",
        ),
        Mistake(
            "LoRA reference copy",
            lambda n, lora_params=0, precomputed_reference=False: (
                4 * n + 16 * lora_params if lora_params else (16 if precomputed_reference else 18) * n
            ),
            "With LoRA the reference is the base model with the adapter switched off: no second copy of the weights.",
        ),
        Mistake(
            "reference ignored",
            lambda n, lora_params=0, precomputed_reference=False: (
                2 * n + 16 * lora_params if lora_params else 16 * n
            ),
            "Without precomputed log-probs, full fine-tuning keeps a frozen bf16 reference copy: 2 more bytes per "
            "parameter.",
        ),
    ],
)

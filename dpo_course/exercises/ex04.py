"""Exercises of 04_lora_dpo: a LoRA adapter's parameters, the memory a training step holds, and how much
smaller an adapter's first update to W is than full fine-tuning's (the reason for its larger learning rate)."""

from __future__ import annotations

import math

from dpo_course.exercises.framework import Case, Exercise, Mistake

# ------------------------------------------------------------------ q1: LoRA's trainable parameters


def _lora_params(shapes: list[tuple[int, int]], r: int) -> int:
    # W (d_out, d_in) gets B (d_out, r) and A (r, d_in): r * (d_in + d_out) new weights.
    return sum(r * (d_out + d_in) for d_out, d_in in shapes)


# The toy Llama's linear layers per decoder layer: q, k, v, o (128 x 128), gate and up (352 x 128), down (128 x 352).
_TOY_LAYER = [(128, 128)] * 4 + [(352, 128), (352, 128), (128, 352)]
_TOY = _TOY_LAYER * 4  # 4 decoder layers
_MIXED = [(4096, 4096), (1024, 4096), (11008, 4096), (4096, 11008)]

q1 = Exercise(
    name="Exercise 4.1 (LoRA's trainable parameters)",
    prompt=(
        "Write lora_params(shapes, r): the number of trainable parameters LoRA of rank r adds to linear layers "
        "whose weights have the given shapes, each (d_out, d_in) as in nn.Linear.weight."
    ),
    reference=_lora_params,
    cases=[
        Case(([(128, 128)], 8), label="one 128 x 128 projection, r = 8"),
        Case((_TOY, 8), label="every linear layer of the toy model (28), r = 8"),
        Case((_MIXED, 16), label="Llama-7B-sized q, k-like, gate and down projections, r = 16"),
    ],
    hints=[
        "LoRA freezes W (d_out, d_in) and learns W + (alpha / r) B A with B of shape (d_out, r) and A of shape "
        "(r, d_in). Count the entries of B and A; alpha adds no parameters.",
        "One matrix of shape (d_out, d_in) gets d_out * r + r * d_in new weights; add that up over the shapes "
        "(they are not all square).",
        "return sum(r * (d_out + d_in) for d_out, d_in in shapes)",
    ],
    solution_code="""
def lora_params(shapes, r):
    # B is (d_out, r), A is (r, d_in): r * (d_out + d_in) per adapted matrix
    return sum(r * (d_out + d_in) for d_out, d_in in shapes)
""",
    answer_name="lora_params",
    mistakes=[
        Mistake(
            "full rank",
            lambda shapes, r: sum(r * d_out * d_in for d_out, d_in in shapes),
            "r * d_out * d_in is r copies of the whole matrix. LoRA's point is that B (d_out x r) and A (r x d_in) "
            "are thin: r * (d_out + d_in) per matrix.",
        ),
        Mistake(
            "A only",
            lambda shapes, r: sum(r * d_in for _, d_in in shapes),
            "You counted A (r x d_in) only. B (d_out x r) is trainable too; it starts at zero so the adapter "
            "starts as a no-op.",
        ),
        Mistake(
            "square",
            lambda shapes, r: sum(2 * r * d_in for _, d_in in shapes),
            "You assumed square matrices (2 r d_in). The MLP projections are not square: use d_out + d_in.",
        ),
    ],
)

# ------------------------------------------------------------------ q2: bytes held by training


def _training_bytes(n_trainable: int, n_frozen: int, bytes_per_value: int = 4) -> int:
    weights = (n_trainable + n_frozen) * bytes_per_value
    gradients = n_trainable * bytes_per_value
    adamw = 2 * n_trainable * bytes_per_value  # first and second moments
    return weights + gradients + adamw


q2 = Exercise(
    name="Exercise 4.2 (weights, gradients and AdamW state)",
    prompt=(
        "Write training_bytes(n_trainable, n_frozen, bytes_per_value=4): the bytes that the weights, the gradients "
        "and torch's AdamW state take during training (activations and the reference model aside). Every value "
        "(weight, gradient, moment) takes bytes_per_value bytes."
    ),
    reference=_training_bytes,
    cases=[
        Case((1000, 0), label="full fine-tuning of 1,000 weights"),
        Case((100, 900), label="an adapter of 100 weights on 900 frozen ones"),
        Case((10, 90, 2), label="the same, all in bf16"),
    ],
    hints=[
        "Every weight is stored. Only trainable weights get a gradient. torch's AdamW keeps two moments (exp_avg "
        "and exp_avg_sq) per trainable weight, in the weight's dtype.",
        "Three terms: weights (trainable + frozen), gradients (trainable only), AdamW (2 per trainable), each "
        "times bytes_per_value.",
        "return (n_trainable + n_frozen) * bytes_per_value + n_trainable * bytes_per_value + 2 * n_trainable * bytes_per_value",
    ],
    solution_code="""
def training_bytes(n_trainable, n_frozen, bytes_per_value=4):
    weights = (n_trainable + n_frozen) * bytes_per_value   # all weights are kept
    gradients = n_trainable * bytes_per_value              # frozen weights get none
    adamw = 2 * n_trainable * bytes_per_value              # exp_avg and exp_avg_sq
    return weights + gradients + adamw
""",
    answer_name="training_bytes",
    mistakes=[
        Mistake(
            "one moment",
            lambda t, f, b=4: (t + f) * b + t * b + t * b,
            "AdamW keeps TWO moments per trainable weight (the running mean of the gradient and of its square).",
        ),
        Mistake(
            "frozen get gradients",
            lambda t, f, b=4: (t + f) * b * 2 + 2 * t * b,
            "Frozen weights (requires_grad=False) get no gradient: only the trainable ones do.",
        ),
        Mistake(
            "frozen weights forgotten",
            lambda t, f, b=4: t * b * 4,
            "The frozen weights still sit in memory: the forward pass needs them. Count all weights once.",
        ),
    ],
)

# ------------------------------------------------------------------ q3: the size of the first update


def _update_ratio(d_in: int, r: int, alpha: float, rslora: bool = False) -> float:
    # Adam's first step moves every trainable entry by lr. Full FT: ||dW||_F = lr sqrt(d_out d_in).
    # LoRA (B = 0): only B moves, dW = s B A with A ~ U(+-1/sqrt(d_in)) (variance 1/(3 d_in)), so
    # ||dW||_F ~= s lr sqrt(d_out r / 3). The ratio is sqrt(3 d_in / r) / s, with s = alpha/r (or alpha/sqrt(r)).
    scale = alpha / math.sqrt(r) if rslora else alpha / r
    return math.sqrt(3 * d_in / r) / scale


q3 = Exercise(
    name="Exercise 4.3 (how much smaller is an adapter's first step?)",
    prompt=(
        "Write update_ratio(d_in, r, alpha, rslora=False): ||dW||_F of full fine-tuning's first AdamW step divided "
        "by LoRA's, for one matrix W (d_out, d_in), at the same learning rate. Use: Adam's first step moves every "
        "trainable entry by exactly lr; LoRA starts with B = 0 and A drawn by PEFT's kaiming_uniform_(a=sqrt(5)), "
        "i.e. uniform in +-1/sqrt(d_in), variance 1/(3 d_in); the adapter's scale is s = alpha / r (rsLoRA: "
        "alpha / sqrt(r)). Treat the signs of B's step as unrelated to A."
    ),
    reference=_update_ratio,
    rtol=1e-6,
    cases=[
        Case((128, 8, 16), label="the toy's 128-wide attention, r=8, alpha=16"),
        Case((4096, 16, 32), label="a 7B model's attention, r=16, alpha=32"),
        Case((4096, 64, 16), label="r=64, alpha=16"),
        Case((4096, 64, 16, True), label="r=64, alpha=16, rsLoRA"),
    ],
    hints=[
        "Full fine-tuning: every one of the d_out * d_in entries moves by lr, so ||dW||_F = lr * sqrt(d_out * d_in). "
        "For LoRA, which of B and A gets a non-zero gradient at the first step, when B = 0?",
        "Only B moves (A's gradient is s * B^T G = 0): every entry of B becomes +-lr, and dW = s * B @ A. Row i of "
        "dW is s times a sum of r rows of A with signs +-lr; with unrelated signs its squared norm is lr^2 times "
        "the sum of those rows' squared norms, r * d_in / (3 d_in) = r / 3.",
        "||dW_LoRA||_F = s * lr * sqrt(d_out * r / 3), so the ratio is sqrt(3 * d_in / r) / s: "
        "return math.sqrt(3 * d_in / r) / (alpha / math.sqrt(r) if rslora else alpha / r)",
    ],
    solution_code="""
import math

def update_ratio(d_in, r, alpha, rslora=False):
    scale = alpha / math.sqrt(r) if rslora else alpha / r     # the adapter's multiplier
    full = math.sqrt(d_in)                                     # lr * sqrt(d_out * d_in), per sqrt(d_out) * lr
    lora = scale * math.sqrt(r / 3)                            # s * lr * sqrt(d_out * r / 3), the same units
    return full / lora
""",
    answer_name="update_ratio",
    mistakes=[
        Mistake(
            "parameter count ratio",
            lambda d_in, r, alpha, rslora=False: d_in / (2 * r),
            "That is (nearly) the ratio of trainable parameters. Adam moves each trainable entry by lr, but the "
            "update to W is s * B @ A: its size depends on A's entries and on s, not only on how many weights move.",
        ),
        Mistake(
            "scale forgotten",
            lambda d_in, r, alpha, rslora=False: math.sqrt(3 * d_in / r),
            "You left out the adapter's scale s = alpha / r (alpha / sqrt(r) with rsLoRA): the forward pass adds "
            "s * B @ A, not B @ A.",
        ),
        Mistake(
            "A of unit entries",
            lambda d_in, r, alpha, rslora=False: (
                math.sqrt(d_in / r) / (alpha / math.sqrt(r) if rslora else alpha / r)
            ),
            "You gave A's entries variance 1/d_in. PEFT draws them uniform in +-1/sqrt(d_in), and a uniform "
            "distribution on +-b has variance b^2 / 3: 1/(3 d_in). That is where the 3 comes from.",
        ),
    ],
)

"""Log-probabilities of completions: the quantity every preference loss is built from.

- `sequence_logps` (sequence.py): from full (B, T, V) logits, summed or averaged over the completion. Taught in 02.
- `fused_sequence_logps`, `fused_token_logps` (fused.py): from hidden states and the LM head, tiled over the
  vocabulary so the logits never exist at once (Triton kernels on CUDA). Taught in 09.
- `concatenated_forward` (forward.py): one forward pass over a ``[chosen; rejected]`` batch. Taught in 02.
  `completion_lengths` and `ld_weights` (LD-DPO's token weights) read the same batch. Taught in 05.
"""

from dpo_course.logprobs.forward import completion_lengths, concatenated_forward, ld_weights
from dpo_course.logprobs.fused import DEFAULT_CHUNK_SIZE, fused_sequence_logps, fused_token_logps
from dpo_course.logprobs.sequence import sequence_logps

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "completion_lengths",
    "concatenated_forward",
    "fused_sequence_logps",
    "fused_token_logps",
    "ld_weights",
    "sequence_logps",
]

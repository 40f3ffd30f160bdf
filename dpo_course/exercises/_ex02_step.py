"""The tiny fixed model, batch and step variants behind exercise 2.4 (`ex02.q4`), a whole DPO training step.

Behind exercise 2.4 of 02_dpo_loss_from_scratch. Scores use the package's `sequence_logps` and `dpo_loss`
(02 checks them equal to what exercises 2.1 and 2.2 ask for); the frozen expected tensors of `ex02.q4` are
pinned by tests/exercises/test_framework.py.
"""

from __future__ import annotations

from types import SimpleNamespace

import torch

from dpo_course.logprobs import sequence_logps as _sequence_logps
from dpo_course.losses import dpo_loss


def _dpo_loss(pc, pr, rc, rr, beta):
    return dpo_loss(pc, pr, rc, rr, beta=beta)[0]  # (B,)


class _TinyLM(torch.nn.Module):
    """A fixed bigram language model in float64 (logits = embed[ids] @ head): small enough to freeze numbers."""

    def __init__(self, seed: int, noise: float = 0.0, vocab: int = 6, dim: int = 4) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.embed = torch.nn.Parameter(torch.randn(vocab, dim, generator=g, dtype=torch.float64))
        self.head = torch.nn.Parameter(torch.randn(dim, vocab, generator=g, dtype=torch.float64))
        with torch.no_grad():  # the policy: the reference after some training (so the loss is not log 2)
            g = torch.Generator().manual_seed(seed + 100)
            for p in self.parameters():
                p.add_(noise * torch.randn(p.shape, generator=g, dtype=torch.float64))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None):
        return SimpleNamespace(logits=self.embed[input_ids] @ self.head)  # (B, T, V)


# two pairs, [chosen; chosen; rejected; rejected], prompts of 2 and 3 tokens, right padding with id 0
_STEP_IDS = torch.tensor([[1, 2, 3, 4, 5, 0], [2, 1, 1, 3, 0, 0], [1, 2, 5, 5, 5, 5], [2, 1, 1, 4, 4, 3]])
_STEP_ATT = torch.tensor([[1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1]])
_STEP_COMP = torch.tensor([[0, 0, 1, 1, 1, 0], [0, 0, 0, 1, 0, 0], [0, 0, 1, 1, 1, 1], [0, 0, 0, 1, 1, 1]])


def _step_inputs(beta: float, lr: float) -> tuple[tuple, dict]:
    """Fresh (policy, reference, batch, optimizer, beta). SGD, so a loss twice too big moves twice as far;
    the policy holds a stale gradient from a 'previous step', as a real loop would."""
    policy, reference = _TinyLM(0, noise=0.3), _TinyLM(0).requires_grad_(False)
    for p in policy.parameters():
        p.grad = torch.full_like(p, 0.25)
    batch = {
        "input_ids": _STEP_IDS.clone(),
        "attention_mask": _STEP_ATT.clone(),
        "completion_mask": _STEP_COMP.clone(),
    }
    return (policy, reference, batch, torch.optim.SGD(policy.parameters(), lr=lr), beta), {}


def _step_outcome(returned, args, kwargs):
    """What is compared: the returned loss, and the policy's log-probs of the batch AFTER the step."""
    if returned is None:
        return None
    policy, _, batch, _, _ = args
    with torch.no_grad():
        logits = policy(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        after = _sequence_logps(logits, _STEP_IDS, _STEP_COMP)  # (2B,)
    try:  # a float is fine too; anything else is compared as it is (and named: "expected a tensor, got ...")
        loss = torch.as_tensor(
            returned.detach() if isinstance(returned, torch.Tensor) else returned, dtype=torch.float64
        )
    except (TypeError, ValueError, RuntimeError):
        loss = returned
    return (loss, after[:2], after[2:])


def _step(policy, reference, batch, optimizer, beta, *, combine="mean", average=False, zero=True, step=True,
          swap=False, ref_is_policy=False, loss_after=False):  # fmt: skip
    ids, mask = batch["input_ids"], batch["completion_mask"]
    B = ids.shape[0] // 2

    def scores(net):
        seq = _sequence_logps(net(input_ids=ids, attention_mask=batch["attention_mask"]).logits, ids, mask)
        if average:
            seq = seq / mask[:, 1:].sum(-1)
        return (seq[B:], seq[:B]) if swap else (seq[:B], seq[B:])

    with torch.no_grad():
        ref_chosen, ref_rejected = scores(policy if ref_is_policy else reference)
    chosen, rejected = scores(policy)
    losses = _dpo_loss(chosen, rejected, ref_chosen, ref_rejected, beta)  # (B,)
    loss = losses.mean() if combine == "mean" else losses.sum()
    if zero:
        optimizer.zero_grad()
    loss.backward()
    if step:
        optimizer.step()
    if loss_after:
        with torch.no_grad():
            c, r = scores(policy)
            return _dpo_loss(c, r, ref_chosen, ref_rejected, beta).mean()
    return loss.detach()

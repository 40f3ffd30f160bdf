"""How the exercise checker compares, shows and copies values (taught in 00_welcome, used by `framework`).

Every function here is total: it returns an answer for any input (bf16, another device, string
arrays, partial dicts) and never raises, because `check()` must never crash a learner's notebook.
"""

from __future__ import annotations

import numpy as np
import torch


def _float64(x) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach().to("cpu", torch.float64)  # bf16, fp16, ints, another device: all comparable
    return torch.as_tensor(np.asarray(x), dtype=torch.float64)


def _close(a, b, rtol: float, atol: float) -> bool:
    """Values equal within a tolerance, through tuples, lists and dicts; never raises."""
    try:
        if isinstance(a, dict) or isinstance(b, dict):
            same = isinstance(a, dict) and isinstance(b, dict) and a.keys() == b.keys()
            return same and all(_close(a[k], b[k], rtol, atol) for k in a)
        if isinstance(a, (tuple, list)) or isinstance(b, (tuple, list)):
            same = isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)) and len(a) == len(b)
            return same and all(_close(x, y, rtol, atol) for x, y in zip(a, b))
        if isinstance(a, str) or isinstance(b, str):
            return isinstance(a, str) and isinstance(b, str) and a == b
        try:
            ta, tb = _float64(a), _float64(b)
        except (TypeError, ValueError, RuntimeError):
            return bool(a == b)
        return ta.shape == tb.shape and bool(torch.allclose(ta, tb, rtol=rtol, atol=atol, equal_nan=True))
    except Exception:
        return False


def _article(name: str) -> str:
    return ("an " if name[0] in "aeiou" or name == "ndarray" else "a ") + name


def _kind(value) -> str:
    return _article("tensor" if isinstance(value, torch.Tensor) else type(value).__name__)


def _family(value) -> str:
    if isinstance(value, (tuple, list)):
        return "sequence"
    if isinstance(value, (dict, str)) or value is None:
        return type(value).__name__
    if isinstance(value, np.ndarray) and value.dtype.kind in "USO":
        return "array of text"
    return "number"


def _type_note(got, expected) -> str:
    """What differs beyond the values: the type, the shape, a low-precision dtype."""
    if _family(got) != _family(expected) or type(got) in (tuple, list) and type(got) is not type(expected):
        return f"\n   expected {_kind(expected)}, got {_kind(got)}."
    try:
        shapes = tuple(_float64(got).shape), tuple(_float64(expected).shape)
    except Exception:
        return ""
    if shapes[0] != shapes[1]:
        return f"\n   expected shape {shapes[1]}, got shape {shapes[0]}."
    if isinstance(got, torch.Tensor) and got.dtype in (torch.bfloat16, torch.float16):
        return (
            f"\n   your result is {got.dtype}, which keeps about 3 digits: compute in float32 (`.float()`)."
        )
    return ""


def _show(value, limit: int = 300) -> str:
    try:
        if isinstance(value, torch.Tensor):
            where = "" if value.device.type == "cpu" and value.dtype in (torch.float32, torch.float64) else (
                f" ({value.dtype}, {value.device})")  # fmt: skip
            numbers = _float64(value).numpy().round(4).tolist()
            text = f"tensor of shape {tuple(value.shape)}{where}: {numbers}"
        elif isinstance(value, (tuple, list)) and any(isinstance(v, torch.Tensor) for v in value):
            text = "(" + ", ".join(_show(v, limit) for v in value) + ")"
        else:
            text = repr(value)
    except Exception:  # e.g. a tensor on the meta device has no values to show
        text = f"<{_kind(value)} {getattr(value, 'dtype', '')} on {getattr(value, 'device', '?')}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _has_grad(value) -> bool:
    if isinstance(value, torch.Tensor):
        return value.requires_grad
    return isinstance(value, (tuple, list)) and any(_has_grad(v) for v in value)


def _clone(obj, grad: bool = False):
    """Fresh copies (floating tensors with requires_grad when `grad`), so an answer cannot change the cases."""
    if isinstance(obj, torch.Tensor):
        copy = obj.detach().clone()
        return copy.requires_grad_(True) if grad and copy.is_floating_point() else copy
    if isinstance(obj, np.ndarray):
        return obj.copy()
    if isinstance(obj, (tuple, list)):
        return type(obj)(_clone(o, grad) for o in obj)
    if isinstance(obj, dict):
        return {k: _clone(v, grad) for k, v in obj.items()}
    return obj


def _changed(before, after) -> bool:
    """True when `after` (what the answer was given) no longer equals `before` (a copy taken first)."""
    try:
        if isinstance(before, torch.Tensor):
            a = after.detach()
            return a.shape != before.shape or not torch.allclose(a, before, rtol=0, atol=0, equal_nan=True)
        if isinstance(before, np.ndarray):
            return not np.array_equal(before, after)
        if isinstance(before, (tuple, list)):
            return len(before) != len(after) or any(_changed(b, a) for b, a in zip(before, after))
        if isinstance(before, dict):
            return before.keys() != after.keys() or any(_changed(before[k], after[k]) for k in before)
        return bool(before != after)
    except Exception:
        return False

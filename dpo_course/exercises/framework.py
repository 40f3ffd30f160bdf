"""Auto-checked exercises in the spirit of Kaggle's learntools: ``q.check()``, ``q.hint()``, ``q.solution()``.

Taught in 00_welcome. `check()` never crashes the notebook: an untouched stub is "not attempted
yet"; a wrong answer shows the input that broke it, what was expected and what came back, plus a
targeted hint when the answer matches a known mistake. With ``DPO_COURSE_STRICT=1`` a failed
check raises `ExerciseFailed`, so a wrong solution notebook fails CI.
"""

from __future__ import annotations

import json
import os
import textwrap
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

# When set (by `dpo-course progress`), every check() appends {"exercise": name, "status": status} to this file.
PROGRESS_LOG_ENV = "DPO_COURSE_PROGRESS_LOG"
NOT_ATTEMPTED = "not attempted"
CORRECT = "correct"
WRONG = "wrong"


class ExerciseFailed(AssertionError):
    """Raised by a failed `check()` when ``DPO_COURSE_STRICT=1``."""


@dataclass
class Case:
    """One input to a function exercise: positional and keyword arguments, and a short label."""

    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    label: str = ""


@dataclass
class Mistake:
    """A known wrong answer: a function computing it, and the hint shown when an answer matches it."""

    name: str
    compute: Callable[..., Any]
    hint: str


@dataclass
class Result:
    status: str
    message: str

    def __bool__(self) -> bool:
        return self.status == CORRECT


def _close(a, b, rtol: float, atol: float) -> bool:
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(_close(x, y, rtol, atol) for x, y in zip(a, b))
    if isinstance(a, (tuple, list)) or isinstance(b, (tuple, list)):
        return False
    try:
        ta = torch.as_tensor(
            a.detach() if isinstance(a, torch.Tensor) else np.asarray(a), dtype=torch.float64
        )
        tb = torch.as_tensor(
            b.detach() if isinstance(b, torch.Tensor) else np.asarray(b), dtype=torch.float64
        )
    except (TypeError, ValueError, RuntimeError):
        return a == b
    if ta.shape != tb.shape:
        return False
    return bool(torch.allclose(ta, tb, rtol=rtol, atol=atol, equal_nan=False))


def _show(value, limit: int = 300) -> str:
    if isinstance(value, torch.Tensor):
        text = f"tensor of shape {tuple(value.shape)}: {value.detach().cpu().numpy().round(4).tolist()}"
    elif isinstance(value, (tuple, list)) and any(isinstance(v, torch.Tensor) for v in value):
        text = "(" + ", ".join(_show(v, limit) for v in value) + ")"
    else:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _log_progress(name: str, status: str) -> None:
    """Append one verdict to ``$DPO_COURSE_PROGRESS_LOG`` (a JSON line); never disturbs the notebook."""
    path = os.environ.get(PROGRESS_LOG_ENV)
    if not path:
        return
    try:
        with open(path, "a", encoding="utf-8") as log:
            log.write(json.dumps({"exercise": name, "status": status}) + "\n")
    except OSError:
        pass


def _strict() -> bool:
    return os.environ.get("DPO_COURSE_STRICT", "") not in ("", "0", "false", "False")


@dataclass
class Exercise:
    """One exercise. `reference` computes the expected answer; `cases` are the inputs it is checked on.

    `solution_code` is self-contained (its own imports) and defines `answer_name`; the test suite
    runs it and checks it passes, that a stub is "not attempted", and that every `Mistake` fails
    with its hint.

    For a function exercise, `check(fn)` calls `fn(*case.args, **case.kwargs)` on every case. For a
    value exercise (``cases=None``), `check(value)` compares `value` with ``reference()``.
    """

    name: str
    prompt: str
    reference: Callable[..., Any]
    hints: Sequence[str]
    solution_code: str
    answer_name: str  # the name the solution code defines (the function or the value)
    cases: Sequence[Case] | None = None
    mistakes: Sequence[Mistake] = ()
    rtol: float = 1e-4
    atol: float = 1e-5
    _hint_index: int = 0

    # ------------------------------------------------------------------ the learner's calls

    def check(self, answer=None) -> Result:
        """Check an answer; prints a verdict and returns a `Result` (truthy when correct)."""
        result = self.evaluate(answer)
        icon = {CORRECT: "✅", WRONG: "❌", NOT_ATTEMPTED: "📝"}[result.status]
        print(f"{icon} {self.name}: {result.message}")
        _log_progress(self.name, result.status)
        if result.status == WRONG and _strict():
            raise ExerciseFailed(f"{self.name}: {result.message}")
        return result

    def hint(self) -> None:
        """Print the next hint (they get more specific each time)."""
        text = self.hints[min(self._hint_index, len(self.hints) - 1)]
        self._hint_index += 1
        print(f"💡 Hint for {self.name}: {text}")

    def solution(self) -> None:
        """Print a worked solution."""
        print(f"Solution for {self.name}:\n\n{textwrap.dedent(self.solution_code).strip()}")

    def use(self, answer):
        """Return `answer` if it passes, else the course's reference, so later cells still run."""
        if self.evaluate(answer).status == CORRECT:
            return answer
        print(f"↪ {self.name} is not solved yet: the cells below use the course's reference instead.")
        return self.reference if self.cases is not None else self.reference()

    # ------------------------------------------------------------------ checking

    def evaluate(self, answer) -> Result:
        """The verdict without printing or raising (what tests and `dpo-course progress` call)."""
        if self.cases is None:
            return self._evaluate_value(answer)
        return self._evaluate_function(answer)

    def _evaluate_value(self, answer) -> Result:
        if answer is None or answer is Ellipsis:
            return Result(NOT_ATTEMPTED, "not attempted yet. Replace the placeholder with your answer.")
        expected = self.reference()
        if _close(answer, expected, self.rtol, self.atol):
            return Result(CORRECT, "correct!")
        return Result(
            WRONG,
            f"not quite.\n   expected: {_show(expected)}\n   got:      {_show(answer)}"
            + self._diagnose(answer, (), {}),
        )

    def _evaluate_function(self, fn) -> Result:
        if fn is None or fn is Ellipsis:
            return Result(NOT_ATTEMPTED, "not attempted yet. Write the function, then run this cell again.")
        if not callable(fn):
            return Result(WRONG, f"expected a function, got {type(fn).__name__}.")
        for i, case in enumerate(self.cases):
            label = case.label or f"case {i + 1}"
            got = self._call(fn, case, label)
            if isinstance(got, Result):
                return got
            failure = self._compare(
                got, self.reference(*_clone(case.args), **_clone(case.kwargs)), case, label
            )
            if failure is not None:
                return failure
        return Result(CORRECT, f"correct on all {len(self.cases)} cases!")

    def _call(self, fn, case: Case, label: str):
        """The learner's answer on one case, or the `Result` that explains why there is none."""
        try:
            got = fn(*_clone(case.args), **_clone(case.kwargs))
        except NotImplementedError:
            return Result(
                NOT_ATTEMPTED, "not attempted yet. Replace `raise NotImplementedError` with your code."
            )
        except Exception as exc:  # the learner's code: report, never crash the notebook
            where = traceback.extract_tb(exc.__traceback__)[-1]
            return Result(
                WRONG,
                f"your function raised {type(exc).__name__}: {exc}\n   on {label}: {self._describe(case)}\n"
                f"   (line {where.lineno}: {where.line})",
            )
        if got is None:
            return Result(WRONG, f"your function returned None on {label}. Did you forget `return`?")
        return got

    def _compare(self, got, expected, case: Case, label: str) -> Result | None:
        """None when `got` matches `expected`, else the WRONG `Result` to show (subclasses compare otherwise)."""
        if _close(got, expected, self.rtol, self.atol):
            return None
        return Result(
            WRONG,
            f"wrong on {label}.\n   input:    {self._describe(case)}\n   expected: {_show(expected)}\n"
            f"   got:      {_show(got)}" + self._diagnose(got, case.args, case.kwargs),
        )

    def _diagnose(self, got, args, kwargs) -> str:
        for mistake in self.mistakes:
            try:
                wrong = mistake.compute(*_clone(args), **_clone(kwargs))
            except Exception:
                continue
            if _close(got, wrong, self.rtol, self.atol):
                return f"\n   💡 {mistake.hint}"
        return ""

    @staticmethod
    def _describe(case: Case) -> str:
        parts = [_show(a, 160) for a in case.args] + [f"{k}={_show(v, 160)}" for k, v in case.kwargs.items()]
        return ", ".join(parts)


def _clone(obj):
    """Fresh copies of tensors so a learner's in-place edit cannot change the expected answer."""
    if isinstance(obj, torch.Tensor):
        return obj.clone()
    if isinstance(obj, tuple):
        return tuple(_clone(o) for o in obj)
    if isinstance(obj, list):
        return [_clone(o) for o in obj]
    if isinstance(obj, dict):
        return {k: _clone(v) for k, v in obj.items()}
    return obj

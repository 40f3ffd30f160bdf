"""Auto-checked exercises in the spirit of Kaggle's learntools: ``q.check()``, ``q.hint()``, ``q.solution()``.

Taught in 00_welcome. `check()` never raises, whatever the answer returns or does: an untouched stub
is "not attempted yet"; a wrong answer shows the input that broke it, what was expected and what came
back, and a catalogued mistake's hint when that mistake explains the answer on every case. It also
catches answers that edit their inputs in place, cut the gradient where the notebook trains through
them, print (captured, not shown) or run too long. Its return value displays as one short line. With
``DPO_COURSE_STRICT=1`` a failed check raises `ExerciseFailed`, so a wrong solution notebook fails CI.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import json
import os
import signal
import sysconfig
import textwrap
import threading
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import torch

from dpo_course.exercises._values import (
    _article,
    _changed,
    _clone,
    _close,
    _has_grad,
    _kind,
    _show,
    _type_note,
)

# When set (by `dpo-course progress`), every check() appends {"exercise": name, "status": status} to this file.
PROGRESS_LOG_ENV = "DPO_COURSE_PROGRESS_LOG"
NOT_ATTEMPTED = "not attempted"
CORRECT = "correct"
WRONG = "wrong"
_ICONS = {CORRECT: "✅", WRONG: "❌", NOT_ATTEMPTED: "📝"}
# Frames in these folders are library code: a traceback points at the last frame outside them (the learner's).
_LIBRARY_DIRS = tuple(
    {sysconfig.get_paths()[k] for k in ("stdlib", "purelib", "platlib")} | {str(Path(__file__).parents[1])}
)


class ExerciseFailed(AssertionError):
    """Raised by a failed `check()` when ``DPO_COURSE_STRICT=1``."""


class _TimeUp(BaseException):  # a BaseException, so a learner's `except Exception` cannot swallow it
    pass


@dataclass
class Case:
    """One input to a function exercise: positional and keyword arguments, and a short label.

    `expected` freezes the answer (else the exercise's reference computes it); `make` builds fresh
    ``(args, kwargs)`` for every call, for inputs an answer changes on purpose (a model, an optimizer).
    """

    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    label: str = ""
    expected: Any = None
    make: Callable[[], tuple[tuple, dict]] | None = None


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
    exercise: str = ""

    def __bool__(self) -> bool:
        return self.status == CORRECT

    def __repr__(self) -> str:  # what a notebook cell shows as its value: one line (the verdict was printed)
        return f"<{_ICONS.get(self.status, '')} {self.exercise or 'exercise'}: {self.status}>"

    def _repr_pretty_(self, printer, cycle) -> None:
        printer.text(repr(self))


class _Run(NamedTuple):
    got: Any
    printed: str


def _learner_line(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)[1:]  # [0] is the framework's own call
    mine = [f for f in frames if not f.filename.startswith(_LIBRARY_DIRS)]
    where = (mine or frames or [None])[-1]
    if where is None:
        return ""
    return f"\n   (line {where.lineno} of your code" + (f": {where.line.strip()})" if where.line else ")")


@contextlib.contextmanager
def _time_limit(seconds: float | None):
    """Interrupt the body after `seconds` (main thread, POSIX, and no other alarm running); else no limit."""
    usable = (
        seconds and hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
        and signal.getitimer(signal.ITIMER_REAL)[0] == 0
    )  # fmt: skip
    if not usable:
        yield
        return

    def _raise(signum, frame):
        raise _TimeUp

    previous = signal.signal(signal.SIGALRM, _raise)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


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

    For a function exercise, `check(fn)` calls `fn(*case.args, **case.kwargs)` on every case (on
    copies; `needs_grad` passes floating tensors with ``requires_grad`` and asks the answer to keep its
    ``grad_fn``; `outcome(returned, args, kwargs)`, when set, is what gets compared, e.g. a model's
    scores after the answer's training step). For a value exercise (``cases=None``), `check(value)`
    compares `value` with ``reference()``. `expect_type`, when the type is the lesson, rejects others.
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
    needs_grad: bool = False
    outcome: Callable[..., Any] | None = None
    expect_type: type | tuple[type, ...] | None = None
    show_expected: bool | None = None  # None: hidden for a str answer (multiple choice), shown otherwise
    time_limit: float | None = 20.0  # seconds per call of the learner's function
    _hint_index: int = 0

    # ------------------------------------------------------------------ the learner's calls

    def check(self, answer=None) -> Result:
        """Check an answer; prints a verdict and returns a `Result` (truthy when correct)."""
        result = self.evaluate(answer)
        print(f"{_ICONS[result.status]} {self.name}: {result.message}")
        _log_progress(self.name, result.status)
        if result.status == WRONG and _strict():
            raise ExerciseFailed(f"{self.name}: {result.message}")
        return result

    def hint(self) -> None:
        """Print the next hint (they get more specific each time)."""
        text = self.hints[min(self._hint_index, len(self.hints) - 1)]
        self._hint_index += 1
        step = f" ({min(self._hint_index, len(self.hints))} of {len(self.hints)})"
        print(f"💡 Hint for {self.name}{step}: {text}")

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
        try:
            result = self._evaluate_value(answer) if self.cases is None else self._evaluate_function(answer)
        except Exception as exc:  # a checker must never crash the notebook, even on its own bug
            result = Result(WRONG, f"the checker could not handle your answer ({type(exc).__name__}: {exc}).")
        result.exercise = self.name
        return result

    def _evaluate_value(self, answer) -> Result:
        if answer is None or answer is Ellipsis:
            return Result(NOT_ATTEMPTED, "not attempted yet. Replace the placeholder with your answer.")
        expected = self.reference()
        if self._type_ok(answer) and _close(answer, expected, self.rtol, self.atol):
            return Result(CORRECT, "correct!")
        reveal = self.show_expected if self.show_expected is not None else not isinstance(expected, str)
        shown = f"\n   expected: {_show(expected)}" if reveal else ""
        hint = next((f"\n   💡 {m.hint}" for m in self.mistakes if self._explains_value(m, answer)), "")
        return Result(
            WRONG,
            f"not quite.{self._type_message(answer, expected)}{shown}\n   got:      {_show(answer)}{hint}",
        )

    def _evaluate_function(self, fn) -> Result:
        if fn is None or fn is Ellipsis:
            return Result(NOT_ATTEMPTED, "not attempted yet. Write the function, then run this cell again.")
        if not callable(fn):
            return Result(WRONG, f"expected a function, got {_kind(fn)}.")
        runs, failure, passed = [], None, 0
        for i, case in enumerate(self.cases):
            label = case.label or f"case {i + 1}"
            run = self._call(fn, case, label, passed)
            if isinstance(run, Result):  # raised, timed out, changed its inputs, returned None
                return run if run.status == NOT_ATTEMPTED or failure is None else failure
            runs.append(run)
            if failure is None:
                failure = self._compare_safely(run.got, self._expected(case), case, label)
                passed += failure is None
        if failure is None:
            return Result(CORRECT, f"correct on all {len(self.cases)} cases!")
        if "💡" not in failure.message:
            failure.message += self._hint_for(runs)
        printed = next((r.printed for r in runs if r.printed), "")
        if printed:
            lines = printed.splitlines()
            failure.message += (
                f"\n   (your function printed {len(lines)} line(s), the first: {lines[0][:120]!r})"
            )
        return failure

    def _inputs(self, case: Case) -> tuple[tuple, dict]:
        if case.make is not None:
            return case.make()
        return _clone(case.args, self.needs_grad), _clone(case.kwargs, self.needs_grad)

    def _produce(self, fn, case: Case):
        """`fn`'s answer on fresh inputs (through `outcome`): how the reference and mistakes are computed."""
        args, kwargs = self._inputs(case)
        got = fn(*args, **kwargs)
        return self.outcome(got, args, kwargs) if self.outcome is not None else got

    def _expected(self, case: Case):
        return case.expected if case.expected is not None else self._produce(self.reference, case)

    def _call(self, fn, case: Case, label: str, passed: int) -> _Run | Result:
        """The learner's answer on one case, or the `Result` that explains why there is none."""
        args, kwargs = self._inputs(case)
        before = None if case.make is not None else _clone((args, kwargs))
        printed = io.StringIO()
        try:
            with contextlib.redirect_stdout(printed), _time_limit(self.time_limit):
                got = fn(*args, **kwargs)
            got = self.outcome(got, args, kwargs) if self.outcome is not None else got
        except NotImplementedError as exc:
            if passed == 0:
                return Result(
                    NOT_ATTEMPTED, "not attempted yet. Replace `raise NotImplementedError` with your code."
                )
            return Result(WRONG, f"your function passed {passed} case(s), then raised NotImplementedError on "
                          f"{label}: a branch is unfinished.{_learner_line(exc)}")  # fmt: skip
        except _TimeUp:
            return Result(WRONG, f"your function ran longer than {self.time_limit:g} s on {label} and was stopped. "
                          "A Python loop over tokens or rows? Use tensor operations.")  # fmt: skip
        except (Exception, SystemExit) as exc:  # the learner's code (even exit()): report, never crash
            note = (
                " It changed a tensor in place: compute a new one instead." if "in-place" in str(exc) else ""
            )
            return Result(WRONG, f"your function raised {type(exc).__name__}: {str(exc)[:300]}\n   on {label}: "
                          f"{self._describe(case)}{_learner_line(exc)}{note}")  # fmt: skip
        if before is not None and _changed(before, (args, kwargs)):
            return Result(WRONG, f"your function changed its input {self._changed_name(fn, before, args, kwargs)} "
                          f"in place on {label} (`x -= ...`, `x[...] = ...`, `.add_()`...). Later cells reuse "
                          "their inputs: compute new tensors instead.")  # fmt: skip
        if got is None:
            return Result(WRONG, f"your function returned None on {label}. Did you forget `return`?")
        return _Run(got, printed.getvalue())

    @staticmethod
    def _changed_name(fn, before, args, kwargs) -> str:
        try:
            names = list(inspect.signature(fn).parameters)
        except (TypeError, ValueError):
            names = []
        for i, (b, a) in enumerate(zip(before[0], args)):
            if _changed(b, a):
                return f"`{names[i]}`" if i < len(names) else f"number {i + 1}"
        return next((f"`{k}`" for k in before[1] if _changed(before[1][k], kwargs[k])), "")

    def _type_ok(self, got) -> bool:
        return self.expect_type is None or isinstance(got, self.expect_type)

    def _type_message(self, got, expected) -> str:
        if not self._type_ok(got):
            types = self.expect_type if isinstance(self.expect_type, tuple) else (self.expect_type,)
            wanted = " or ".join(_article("tensor" if t is torch.Tensor else t.__name__) for t in types)
            return f"\n   expected {wanted}, got {_kind(got)}."
        return _type_note(got, expected)

    def _compare_safely(self, got, expected, case: Case, label: str) -> Result | None:
        try:
            failure = self._compare(got, expected, case, label)
        except Exception as exc:
            failure = Result(
                WRONG, f"wrong on {label}: your answer could not be compared ({type(exc).__name__}: {exc})."
            )
        if failure is None and self.needs_grad and not _has_grad(got):
            failure = Result(WRONG, f"right values on {label}, but your answer carries no gradient (no grad_fn): "
                             "the notebook trains through it. Remove `.detach()`, `.item()`, `torch.tensor(...)` "
                             "of results or `torch.no_grad()`.")  # fmt: skip
        return failure

    def _compare(self, got, expected, case: Case, label: str) -> Result | None:
        """None when `got` matches `expected`, else the WRONG `Result` to show (subclasses compare otherwise)."""
        if self._type_ok(got) and _close(got, expected, self.rtol, self.atol):
            return None
        return Result(
            WRONG,
            f"wrong on {label}.{self._type_message(got, expected)}\n   input:    {self._describe(case)}\n"
            f"   expected: {_show(expected)}\n   got:      {_show(got)}",
        )

    def _explains(self, mistake: Mistake, got, case: Case) -> bool:
        """Does `mistake` produce `got` on `case`? (Subclasses that compare otherwise override this.)"""
        try:
            wrong = self._produce(mistake.compute, case)
        except Exception:
            return False
        return _close(got, wrong, self.rtol, self.atol) and (
            not self.needs_grad or _has_grad(got) == _has_grad(wrong)
        )

    def _explains_value(self, mistake: Mistake, answer) -> bool:
        try:
            return _close(answer, mistake.compute(), self.rtol, self.atol)
        except Exception:
            return False

    def _hint_for(self, runs: list[_Run]) -> str:
        """The hint of the first mistake that explains the answer on EVERY case, else nothing."""
        if len(runs) != len(self.cases):
            return ""
        for mistake in self.mistakes:
            if all(self._explains(mistake, run.got, case) for run, case in zip(runs, self.cases)):
                return f"\n   💡 {mistake.hint}"
        return ""

    @staticmethod
    def _describe(case: Case) -> str:
        if case.make is not None:
            return "inputs the checker builds afresh for every call"
        parts = [_show(a, 160) for a in case.args] + [f"{k}={_show(v, 160)}" for k, v in case.kwargs.items()]
        return ", ".join(parts)

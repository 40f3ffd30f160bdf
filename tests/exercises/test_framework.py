"""The exercise framework as learners meet it: check() never raises, one-line display, strict checkers."""

import time

import numpy as np
import pytest
import torch
from IPython.core.formatters import format_display_data

from dpo_course.exercises import Case, Exercise, Mistake, all_exercises, ex00, ex01, ex02
from dpo_course.exercises.framework import CORRECT, NOT_ATTEMPTED, WRONG


@pytest.fixture(autouse=True)
def _lenient(monkeypatch):
    """These tests read check()'s verdicts; `make test` sets DPO_COURSE_STRICT=1, which turns a wrong one into a raise."""
    monkeypatch.delenv("DPO_COURSE_STRICT", raising=False)


def _double(x):
    return 2 * x


def _tuple_answer(x):
    return (x.sum(), x.max())


X = torch.tensor([1.0, -2.0, 3.5])
DOUBLE = Exercise(
    name="Exercise T.1 (double)",
    prompt="double x",
    reference=_double,
    cases=[Case((X,), label="three numbers"), Case((X[:1],), label="one number")],
    hints=["multiply", "by two"],
    solution_code="def f(x):\n    return 2 * x",
    answer_name="f",
    mistakes=[Mistake("triple", lambda x: 3 * x, "TRIPLED"), Mistake("one", lambda x: 0 * x + 2, "TWO")],
    time_limit=1.0,
)
GRAD = Exercise(**{**DOUBLE.__dict__, "needs_grad": True, "_hint_index": 0})
TUPLE = Exercise(**{**DOUBLE.__dict__, "reference": _tuple_answer, "mistakes": ()})
CHOICE = Exercise(
    name="Exercise T.2 (choice)",
    prompt="A or B",
    reference=lambda: "B",
    hints=["h1", "h2"],
    solution_code='answer = "B"',
    answer_name="answer",
    mistakes=[Mistake("A", lambda: "A", "NOT A")],
)


def test_a_check_cell_displays_one_line(capsys):
    result = DOUBLE.check(lambda x: 3 * x)
    printed = capsys.readouterr().out
    shown = format_display_data(result)[0]["text/plain"]  # what Jupyter puts after Out[n]:
    assert "\n" not in shown and "\\n" not in shown and len(shown) < 80
    assert "wrong" in shown and DOUBLE.name in shown
    assert "expected" in printed and "TRIPLED" in printed  # the full verdict is the printed one
    assert repr(DOUBLE.evaluate(_double)) == f"<✅ {DOUBLE.name}: correct>"


@pytest.mark.parametrize(
    "answer",
    [
        lambda x: (2 * x).bfloat16(),  # bf16 has no .numpy()
        lambda x: (2 * x).to("meta"),  # another device
        lambda x: {"a": 2 * x},  # a partial dict
        lambda x: np.array(["B", "C"]),  # a string array
        lambda x: object(),
        lambda x: [2 * x, None],
        lambda x: 2 * x.numpy(),  # a numpy array: right values, another type, accepted
        lambda x: exit(),  # even exit() in the learner's code
    ],
)
def test_check_never_raises(answer, capsys):
    result = DOUBLE.check(answer)
    assert result.status in (CORRECT, WRONG)
    assert CHOICE.check("B").status == CORRECT
    for value in (np.array(["B"]), {"x": 1}, 3.0, object(), torch.ones(2, device="meta")):
        assert CHOICE.check(value).status == WRONG


def test_wrong_type_is_named():
    message = TUPLE.evaluate(lambda x: np.array([float(x.sum()), float(x.max())])).message
    assert "expected a tuple, got an ndarray" in message
    assert "expected shape (3,), got shape ()" in DOUBLE.evaluate(lambda x: (2 * x).sum()).message
    assert "bfloat16" in DOUBLE.evaluate(lambda x: (2 * x + 0.01).bfloat16()).message


def test_expect_type_when_the_type_is_the_lesson():
    q = Exercise(**{**DOUBLE.__dict__, "reference": lambda x: x.sum(), "expect_type": torch.Tensor})
    result = q.evaluate(lambda x: float(x.sum()))
    assert result.status == WRONG and "expected a tensor, got a float" in result.message
    assert q.evaluate(lambda x: x.sum()).status == CORRECT


def test_multiple_choice_does_not_reveal_the_answer():
    message = CHOICE.evaluate("D").message
    assert "B" not in message.replace("got", "")
    assert "NOT A" in CHOICE.evaluate("A").message
    assert "expected a str, got an ndarray" in CHOICE.evaluate(np.array(["B"])).message


def test_not_implemented_after_a_passed_case_is_wrong():
    def half_done(x):
        if len(x) > 1:
            return 2 * x
        raise NotImplementedError

    result = DOUBLE.evaluate(half_done)
    assert result.status == WRONG and "passed 1 case" in result.message
    assert DOUBLE.evaluate(lambda x: (_ for _ in ()).throw(NotImplementedError)).status == NOT_ATTEMPTED


def test_prints_are_captured(capsys):
    def chatty(x):
        for i in range(3000):
            print("step", i)
        return 3 * x

    result = DOUBLE.check(chatty)
    out = capsys.readouterr().out
    assert result.status == WRONG and out.count("\n") < 15  # not 3,000 lines above the verdict
    assert "printed 3000 line(s)" in out


def test_slow_answer_is_stopped():
    def slow(x):
        try:
            time.sleep(30)
        except Exception:  # a learner's broad except must not swallow the time limit
            pass
        return 2 * x

    start = time.perf_counter()
    result = DOUBLE.evaluate(slow)
    assert result.status == WRONG and "ran longer than 1 s" in result.message
    assert time.perf_counter() - start < 10


def test_traceback_points_at_the_learners_line():
    def broken(x):
        y = x.reshape(2, 2)  # the learner's line: torch raises inside
        return y

    result = DOUBLE.evaluate(broken)
    assert result.status == WRONG and "RuntimeError" in result.message
    assert "y = x.reshape(2, 2)" in result.message


def test_in_place_edits_are_detected():
    def in_place(x):
        x *= 2
        return x

    result = DOUBLE.evaluate(in_place)
    assert result.status == WRONG and "changed its input `x` in place" in result.message
    assert "in place" in GRAD.evaluate(in_place).message  # with requires_grad torch raises: say why
    ref = torch.tensor([0.4, 0.6], dtype=torch.float64)
    before = ref.clone()

    def optimal_policy(reference_probs, rewards, beta):
        reference_probs.mul_(torch.exp(rewards / beta))
        return reference_probs / reference_probs.sum(-1, keepdim=True)

    assert "`reference_probs`" in ex01.q1.evaluate(optimal_policy).message
    assert torch.equal(ref, before)  # the learner's own pi_ref is never passed in


def test_detached_answer_is_rejected_where_the_notebook_trains_through_it():
    result = GRAD.evaluate(lambda x: (2 * x).detach())
    assert result.status == WRONG and "no gradient" in result.message
    assert GRAD.evaluate(_double).status == CORRECT
    for q in (ex02.q1, ex02.q2):
        assert q.evaluate(lambda *a, _q=q, **k: _q.reference(*a, **k).detach()).status == WRONG


def test_a_hint_fires_only_when_the_mistake_explains_every_case():
    def coincidence(x):  # equals "triple" on case 1, not on case 2
        return 3 * x if len(x) > 1 else 5 * x

    message = DOUBLE.evaluate(coincidence).message
    assert "wrong on three numbers" in message and "TRIPLED" not in message
    assert "TRIPLED" in DOUBLE.evaluate(lambda x: 3 * x).message


def test_ex00_rejects_rounding():
    assert ex00.q1.evaluate(lambda p, r: round(ex00.q1.reference(p, r), 2)).status == WRONG
    assert ex00.q1.evaluate(lambda p, r: float(int(ex00.q1.reference(p, r)))).status == WRONG


def test_dpo_loss_rejects_log_of_sigmoid_and_detach():
    def naive(pc, pr, rc, rr, beta):
        return -torch.log(torch.sigmoid(beta * ((pc - rc) - (pr - rr))))

    message = ex02.q2.evaluate(naive).message
    assert "logsigmoid" in message and "-200" in message
    detached = ex02.q2.evaluate(lambda *a: ex02.q2.reference(*a).detach())
    assert detached.status == WRONG and "no gradient" in detached.message


def test_training_step_frozen_tensors_pin_the_reference():
    q = ex02.q4
    for case in q.cases:
        assert case.expected is not None
        torch.testing.assert_close(q._produce(q.reference, case), case.expected, rtol=1e-6, atol=1e-8)


HINTED = [
    (f"{m}.{n}", q)
    for m, qs in all_exercises().items()
    if m in ("ex00", "ex01", "ex02")
    for n, q in qs.items()
]


@pytest.mark.parametrize("qid, q", HINTED, ids=[h[0] for h in HINTED])
def test_hints_come_in_steps_before_the_solution(qid, q):
    assert len(q.hints) >= 2, f"{qid}: at least two hints before the solution"
    code = [line.strip() for line in q.solution_code.splitlines()]
    body = [line.split("#")[0].strip() for line in code if line.startswith("return") or "=" in line]
    for hint in q.hints[:-1]:  # all but the last hint stay short of the code
        assert not any(len(b) > 15 and b in hint for b in body), f"{qid}: an early hint gives the code away"

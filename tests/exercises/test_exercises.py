"""Every exercise of the course: its solution passes, a stub is 'not attempted', known mistakes fail with their hint."""

import pytest

from dpo_course.exercises import ExerciseFailed, all_exercises
from dpo_course.exercises.framework import CORRECT, NOT_ATTEMPTED, WRONG

EXERCISES = [(f"{mod}.{name}", q) for mod, qs in all_exercises().items() for name, q in qs.items()]


def _stub(*args, **kwargs):
    raise NotImplementedError("Your code here")


def _solution(q):
    namespace = {}
    exec(q.solution_code, namespace)
    return namespace[q.answer_name]


def test_there_are_exercises():
    assert len(EXERCISES) >= 1


@pytest.mark.parametrize("qid, q", EXERCISES, ids=[e[0] for e in EXERCISES])
def test_solution_passes(qid, q):
    assert q.evaluate(_solution(q)).status == CORRECT, q.evaluate(_solution(q)).message


@pytest.mark.parametrize("qid, q", EXERCISES, ids=[e[0] for e in EXERCISES])
def test_stub_is_not_attempted(qid, q):
    stub = _stub if q.cases is not None else None
    result = q.evaluate(stub)
    assert result.status == NOT_ATTEMPTED
    assert "not attempted" in result.message


@pytest.mark.parametrize("qid, q", EXERCISES, ids=[e[0] for e in EXERCISES])
def test_known_mistakes_fail_with_their_hint(qid, q):
    assert len(q.mistakes) >= 2, f"{qid} needs at least two plausible wrong answers with targeted hints"
    for mistake in q.mistakes:
        wrong = mistake.compute if q.cases is not None else mistake.compute()
        result = q.evaluate(wrong)
        assert result.status == WRONG, f"{qid}: mistake {mistake.name!r} passed the check"
        assert mistake.hint in result.message, f"{qid}: mistake {mistake.name!r} did not get its hint"


@pytest.mark.parametrize("qid, q", EXERCISES, ids=[e[0] for e in EXERCISES])
def test_strict_mode_raises_on_a_wrong_answer(qid, q, monkeypatch, capsys):
    monkeypatch.setenv("DPO_COURSE_STRICT", "1")
    mistake = q.mistakes[0]
    with pytest.raises(ExerciseFailed):
        q.check(mistake.compute if q.cases is not None else mistake.compute())
    q.check(_stub if q.cases is not None else None)  # not attempted never raises
    assert "not attempted" in capsys.readouterr().out


@pytest.mark.parametrize("qid, q", EXERCISES, ids=[e[0] for e in EXERCISES])
def test_use_falls_back_to_the_reference(qid, q):
    stub = _stub if q.cases is not None else None
    fallback = q.use(stub)
    assert fallback is not stub
    if q.cases is not None:
        assert q.evaluate(fallback).status == CORRECT


def test_check_reports_a_crash_without_raising(capsys, monkeypatch):
    monkeypatch.delenv("DPO_COURSE_STRICT", raising=False)
    qid, q = next((e for e in EXERCISES if e[1].cases is not None), (None, None))
    if q is None:
        pytest.skip("no function exercise yet")

    def broken(*args, **kwargs):
        return 1 / 0

    result = q.check(broken)
    assert result.status == WRONG and "ZeroDivisionError" in capsys.readouterr().out

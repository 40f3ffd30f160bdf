"""Exercises of 03_training_with_trl and 04_lora_dpo: the checks the notebooks preach, beyond the generic
solution / stub / catalogued-mistake tests of test_exercises.py."""

import math

import pytest
import torch

from dpo_course.exercises import ex03, ex04
from dpo_course.exercises.framework import CORRECT, WRONG


def _solution(q):
    namespace = {}
    exec(q.solution_code, namespace)
    return namespace[q.answer_name]


# ------------------------------------------------------------------ 3.1: the config's fields


def test_3_1_reads_activation_checkpointing_not_its_deprecated_alias():
    make = _solution(ex03.q1)

    def new_name_set_afterwards(output_dir, learning_rate, use_cpu):
        config = ex03._config(output_dir, learning_rate, use_cpu, activation_checkpointing=True)
        config.activation_checkpointing = False  # what transformers 5 reads; the alias still says True
        return config

    assert new_name_set_afterwards("x", 1e-4, True).gradient_checkpointing is True
    assert ex03.q1.evaluate(new_name_set_afterwards).status == CORRECT
    result = ex03.q1.evaluate(ex03._old_name_switched_off)
    assert result.status == WRONG and "deprecated alias" in result.message
    assert ex03.q1.evaluate(make).status == CORRECT


@pytest.mark.parametrize("report_to", ["none", [], ["none"]])
def test_3_1_accepts_every_spelling_of_no_tracker(report_to):
    def answer(output_dir, learning_rate, use_cpu):
        return ex03._config(output_dir, learning_rate, use_cpu, report_to=report_to)

    assert ex03.q1.evaluate(answer).status == CORRECT


def test_3_1_a_partial_dict_is_wrong_not_a_crash():
    result = ex03.q1.evaluate(lambda out, lr, cpu: {"output_dir": out, "learning_rate": lr})
    assert result.status == WRONG and "<missing>" in result.message


# ------------------------------------------------------------------ multiple choice never gives the answer away


@pytest.mark.parametrize(
    "q, wrong, expected",
    [(ex03.q2, "B", "C"), (ex03.q2, "A", "C"), (ex03.q4, "D", "A"), (ex03.q4, "B", "A")],
)
def test_multiple_choice_does_not_print_the_expected_answer(q, wrong, expected):
    result = q.evaluate(wrong)
    assert result.status == WRONG
    assert "expected" not in result.message and repr(expected) not in result.message


def test_3_2_option_b_is_wrong_because_of_likelihood_displacement():
    result = ex03.q2.evaluate("B")
    assert result.status == WRONG and "displacement" in result.message
    assert ex03.q2.evaluate("C").status == CORRECT


def test_3_5_a_wrong_mapping_does_not_reveal_the_right_one():
    answer = dict(ex03._BUGS)
    answer["run 1"], answer["run 3"] = answer["run 3"], answer["run 1"]
    result = ex03.q5.evaluate(answer)
    assert result.status == WRONG
    assert "expected" not in result.message
    assert all(choice in ex03.BUG_CHOICES for choice in ex03._BUGS.values())
    assert ex03.q5.evaluate(dict(ex03._BUGS)).status == CORRECT


# ------------------------------------------------------------------ 3.3: a tensor, and why not k3


def test_3_3_rejects_a_python_float_and_says_so():
    result = ex03.q3.evaluate(lambda p, r: float((p - r).mean()))
    assert result.status == WRONG and "expected a tensor, got a float" in result.message


def test_3_3_explains_why_k3_is_not_the_answer():
    result = ex03.q3.evaluate(ex03._k3)
    assert result.status == WRONG and "k3" in result.message and "unbiased" in result.message
    p, r = ex03._PL, ex03._RL
    assert ex03._k3(p, p).item() == 0.0 and ex03._k3(p, r).item() > 0  # a genuine KL estimator: 0 at equality


def test_3_3_accepts_another_correct_spelling():
    assert ex03.q3.evaluate(lambda p, r: torch.mean(p - r)).status == CORRECT
    assert ex03.q3.evaluate(lambda p, r: (p - r).sum() / p.numel()).status == CORRECT


# ------------------------------------------------------------------ hints come in steps


@pytest.mark.parametrize("q", [ex03.q1, ex03.q2, ex03.q3, ex03.q4, ex03.q5, ex04.q1, ex04.q2, ex04.q3])
def test_at_least_two_hints_before_the_solution(q):
    assert len(q.hints) >= 3
    answer_lines = [line.split("#")[0].strip() for line in q.solution_code.splitlines()]
    assert not any(
        len(line) > 12 and line in q.hints[0] for line in answer_lines
    )  # the first hint is no answer


# ------------------------------------------------------------------ 4.3: the update-size ratio


def test_4_3_ratio_written_out_by_hand():
    fn = _solution(ex04.q3)
    assert fn(128, 8, 16) == pytest.approx(math.sqrt(48) / 2)  # the toy: 3.46
    assert fn(4096, 16, 32) == pytest.approx(math.sqrt(768) / 2)  # a 7B model: 13.9, "roughly 10x"
    # rsLoRA: the ratio no longer depends on r; plain LoRA: it grows as sqrt(r) at fixed alpha
    assert fn(4096, 8, 16, True) == pytest.approx(fn(4096, 64, 16, True))
    assert fn(4096, 64, 16) == pytest.approx(math.sqrt(8) * fn(4096, 8, 16))


def test_4_3_matches_one_adam_step_on_a_lora_layer():
    torch.manual_seed(0)
    d_out, d_in, r, alpha, lr = 256, 512, 8, 16, 1e-3
    lora_a = torch.empty(r, d_in)
    torch.nn.init.kaiming_uniform_(lora_a, a=math.sqrt(5))  # PEFT's init of lora_A
    grad_w = torch.randn(d_out, d_in)
    b_step = -lr * torch.sign((alpha / r) * grad_w @ lora_a.T)  # Adam's first step on B (B = 0: A gets none)
    lora_dw = (alpha / r) * b_step @ lora_a
    full_dw = -lr * torch.sign(grad_w)
    measured = (full_dw.norm() / lora_dw.norm()).item()
    assert measured == pytest.approx(_solution(ex04.q3)(d_in, r, alpha), rel=0.1)

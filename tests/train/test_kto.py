"""dpo_course.train (kto.py): unpairing, validation, and a short KTO run on the toy model."""

import pytest
import torch

from dpo_course.data import PreferenceDataError
from dpo_course.train import KTOTrainConfig, train_kto, unpair

PAIRS = [
    {"prompt": "What is 2 plus 3?", "chosen": "2 plus 3 is 5.", "rejected": "2 plus 3 is 6."},
    {
        "prompt": "What is the capital of France?",
        "chosen": "The capital of France is Paris.",
        "rejected": "I don't know, look it up.",
    },
]


def test_unpair_makes_one_desirable_and_one_undesirable_row_per_pair():
    rows = unpair(PAIRS, seed=0)
    assert len(rows) == 4
    assert sorted((r["completion"], r["label"]) for r in rows) == sorted(
        [
            ("2 plus 3 is 5.", True),
            ("2 plus 3 is 6.", False),
            ("The capital of France is Paris.", True),
            ("I don't know, look it up.", False),
        ]
    )
    assert unpair(PAIRS, seed=0) == rows  # seeded


def test_config_and_rows_are_validated(sft):
    with pytest.raises(ValueError, match="batch_size must be >= 2"):
        KTOTrainConfig(batch_size=1)
    with pytest.raises(ValueError, match="beta must be finite and > 0"):
        KTOTrainConfig(beta=0)
    model, tok = sft
    bad = [{"prompt": "What is 2 plus 3?", "completion": "5", "label": "yes"}] * 2
    with pytest.raises(PreferenceDataError, match="row 0, field 'label'"):
        train_kto(model, tok, bad, KTOTrainConfig(device="cpu", progress=False))


def test_a_short_run_moves_rewards_the_right_way(sft):
    from dpo_course.toyworld import load_sft_model, preference_pairs

    model, tok = load_sft_model("cpu")  # a fresh copy: the session fixture must not change
    start = [p.detach().clone() for p in model.parameters()]
    rows = unpair(preference_pairs("train").select(range(16)))
    model, history = train_kto(
        model,
        tok,
        rows,
        KTOTrainConfig(device="cpu", progress=False, epochs=2, batch_size=16, learning_rate=5e-4),
    )
    assert len(history) == 4  # 32 rows / 16 per step, 2 epochs
    assert {"loss", "kl", "rewards/chosen", "rewards/rejected", "rewards/margins"} <= set(history[0])
    # first step: policy == reference, so rewards are 0, KL is 0, and every loss is 1 - sigmoid(0) = 0.5
    assert history[0]["loss"] == pytest.approx(0.5, abs=1e-5) and history[0]["kl"] == pytest.approx(
        0.0, abs=1e-5
    )
    assert (
        history[-1]["rewards/margins"] > 0 and history[-1]["rewards/chosen"] > history[-1]["rewards/rejected"]
    )
    assert history[-1]["loss"] < 0.5
    assert all(h["kl"] >= 0 for h in history)
    assert any(not torch.equal(a, b) for a, b in zip(start, model.parameters(), strict=True))


def test_right_pad_and_collate_completions_build_kto_rows():
    from dpo_course.data import PreferenceCollator, collate_completions, right_pad

    torch.testing.assert_close(right_pad([[1, 2, 3], [4]], 0), torch.tensor([[1, 2, 3], [4, 0, 0]]))
    assert right_pad([[5]], 9, width=3).tolist() == [[5, 9, 9]]
    # KTO's [matched; mismatched] rows: each prompt with its own completion, then with the previous row's.
    prompts, completions = [[1], [2, 2]], [[7, 7], [8]]
    batch = collate_completions(prompts + prompts, completions + [completions[1], completions[0]], 0)
    assert batch["input_ids"].tolist() == [[1, 7, 7, 0], [2, 2, 8, 0], [1, 8, 0, 0], [2, 2, 7, 7]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 0], [1, 1, 1, 0], [1, 1, 0, 0], [1, 1, 1, 1]]
    assert batch["completion_mask"].tolist() == [[0, 1, 1, 0], [0, 0, 1, 0], [0, 1, 0, 0], [0, 0, 1, 1]]
    # The preference collator is the same routine on [chosen; rejected].
    pair = PreferenceCollator(0)([{"prompt_ids": [1], "chosen_ids": [7, 7], "rejected_ids": [8]}])
    assert pair["input_ids"].tolist() == [[1, 7, 7], [1, 8, 0]]
    with pytest.raises(ValueError, match="2 prompts but 1 completions"):
        collate_completions(prompts, completions[:1], 0)

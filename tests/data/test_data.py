"""dpo_course.data: tokenisation at the boundary, the collator, formats, loaders and validation."""

from pathlib import Path

import pytest
import torch

from dpo_course.data import (
    PreferenceCollator,
    PreferenceDataError,
    hh_rlhf_pair,
    load_hh_rlhf,
    load_ultrafeedback,
    parse_hh_transcript,
    to_conversational,
    to_standard,
    tokenize_pair,
    ultrafeedback_pair,
    validate_preference_dataset,
)

SAMPLES = Path(__file__).resolve().parents[2] / "dpo_course" / "data" / "samples"
HH = SAMPLES / "hh_rlhf_sample.jsonl"
UF = SAMPLES / "ultrafeedback_sample.jsonl"


# ------------------------------------------------------------------------------------------
# A tokenizer small enough to check by hand: greedy longest match over a fixed vocabulary.
# "A:y" is one token, so tokenising prompt + response as one string merges across the boundary.
# ------------------------------------------------------------------------------------------
class TinyTokenizer:
    vocab = ["<pad>", "<e>", "U:", "A:", "A:y", "hi", "yes", "no", "y", "e", "s", "n", "o", " "]
    eos_token, pad_token_id = "<e>", 0

    def apply_chat_template(self, messages, tokenize=False, add_generation_prompt=True):
        return f"U:{messages[0]['content']} A:"

    def __call__(self, text, add_special_tokens=False):
        ids, i = [], 0
        while i < len(text):
            tok = max((t for t in self.vocab if text.startswith(t, i)), key=len)
            ids.append(self.vocab.index(tok))
            i += len(tok)
        return {"input_ids": ids}


def test_tokenize_pair_keeps_the_boundary_where_joint_tokenisation_moves_it():
    tok = TinyTokenizer()
    out = tokenize_pair(tok, {"prompt": "hi", "chosen": "yes", "rejected": "no"}, max_length=16)
    # "U:hi A:" -> U:, hi, ' ', A:  and  "yes<e>" -> yes, <e>
    assert out == {"prompt_ids": [2, 5, 13, 3], "chosen_ids": [6, 1], "rejected_ids": [7, 1]}
    joint = tok("U:hi A:yes<e>")["input_ids"]
    assert joint == [2, 5, 13, 4, 9, 10, 1]  # "A:y" swallowed the first letter of the response
    assert joint[len(out["prompt_ids"]) :] != out["chosen_ids"]


def test_tokenize_pair_truncates_responses_and_rejects_a_prompt_with_no_room():
    tok = TinyTokenizer()
    out = tokenize_pair(tok, {"prompt": "hi", "chosen": "yes", "rejected": "no"}, max_length=5)
    assert out["chosen_ids"] == [6] and out["rejected_ids"] == [7]  # room for 1 token: eos is cut
    with pytest.raises(PreferenceDataError, match="row 3, field 'prompt'"):
        tokenize_pair(tok, {"prompt": "hi", "chosen": "yes", "rejected": "no"}, max_length=4, index=3)


def test_collator_stacks_chosen_then_rejected_with_masks_and_padding():
    features = [
        {"prompt_ids": [11, 12], "chosen_ids": [13, 14, 15], "rejected_ids": [16]},
        {"prompt_ids": [21], "chosen_ids": [22], "rejected_ids": [23, 24]},
    ]
    batch = PreferenceCollator(pad_token_id=0)(features)
    # rows: chosen 0, chosen 1, rejected 0, rejected 1; width = longest row = 5
    assert batch["input_ids"].tolist() == [
        [11, 12, 13, 14, 15],
        [21, 22, 0, 0, 0],
        [11, 12, 16, 0, 0],
        [21, 23, 24, 0, 0],
    ]
    assert batch["attention_mask"].tolist() == [
        [1, 1, 1, 1, 1],
        [1, 1, 0, 0, 0],
        [1, 1, 1, 0, 0],
        [1, 1, 1, 0, 0],
    ]
    assert batch["completion_mask"].tolist() == [
        [0, 0, 1, 1, 1],
        [0, 1, 0, 0, 0],
        [0, 0, 1, 0, 0],
        [0, 1, 1, 0, 0],
    ]
    assert all(t.dtype == torch.long for t in batch.values())


def test_tokenize_pair_with_the_toy_tokenizer_ends_responses_with_eos(sft):
    _, tok = sft
    out = tokenize_pair(
        tok, {"prompt": "What is 2 plus 2?", "chosen": "2 plus 2 is 4.", "rejected": "5."}, max_length=64
    )
    assert tok.decode(out["prompt_ids"]) == "<|user|>What is 2 plus 2?<|end|><|assistant|>"
    assert out["chosen_ids"][-1] == out["rejected_ids"][-1] == tok.eos_token_id
    assert tok.decode(out["chosen_ids"][:-1]) == "2 plus 2 is 4."


# ------------------------------------------------------------------------------------------ formats
def test_to_standard_converts_explicit_and_implicit_prompts():
    conv = {
        "prompt": [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello"},
            {"role": "user", "content": "Bye?"},
        ],
        "chosen": [{"role": "assistant", "content": "Bye!"}],
        "rejected": [{"role": "assistant", "content": "No."}],
        "score": 3,
    }
    assert to_standard(conv) == {
        "prompt": "User: Hi\n\nAssistant: Hello\n\nUser: Bye?",
        "chosen": "Bye!",
        "rejected": "No.",
        "score": 3,
    }
    implicit = {"chosen": conv["prompt"] + conv["chosen"], "rejected": conv["prompt"] + conv["rejected"]}
    assert to_standard(implicit) == {
        "prompt": "User: Hi\n\nAssistant: Hello\n\nUser: Bye?",
        "chosen": "Bye!",
        "rejected": "No.",
    }
    single = to_conversational({"prompt": "Hi", "chosen": "Hello", "rejected": "Go away"})
    assert single["prompt"] == [{"role": "user", "content": "Hi"}]
    assert to_standard(single) == {"prompt": "Hi", "chosen": "Hello", "rejected": "Go away"}
    plain = {"prompt": "a", "chosen": "b", "rejected": "c"}
    assert to_standard(plain) == plain


def test_to_standard_names_the_row_and_field_of_a_bad_response():
    bad = {
        "prompt": [{"role": "user", "content": "Hi"}],
        "chosen": [{"role": "user", "content": "x"}],
        "rejected": "y",
    }
    with pytest.raises(PreferenceDataError, match="row 7, field 'chosen'"):
        to_standard(bad, index=7)


# ------------------------------------------------------------------------------------------ loaders
def test_parse_hh_transcript_splits_only_at_turn_markers():
    text = "\n\nHuman: Show a log.\n\nAssistant: Like this:\nHuman: hi\nAssistant: hello"
    assert parse_hh_transcript(text) == [
        {"role": "user", "content": "Show a log."},
        {"role": "assistant", "content": "Like this:\nHuman: hi\nAssistant: hello"},
    ]
    with pytest.raises(ValueError):
        parse_hh_transcript("no markers here")


def test_hh_rows_get_the_right_drop_reasons():
    import json

    rows = [json.loads(line) for line in HH.read_text().splitlines()]
    reasons = [hh_rlhf_pair(r)["drop_reason"].split(":")[0] for r in rows]
    assert reasons == ["", "", "tie", "", "malformed", "malformed", "empty", "", "malformed"]


def test_load_hh_rlhf_on_the_sample_file(capsys):
    ds = load_hh_rlhf(HH)
    assert "kept 4 of 9 rows (dropped: 1 empty, 3 malformed, 1 tie)" in capsys.readouterr().out
    assert ds.column_names == ["prompt", "chosen", "rejected"]
    multi = ds[1]  # three user turns: the prompt holds the first five messages
    assert [m["role"] for m in multi["prompt"]] == ["user", "assistant", "user", "assistant", "user"]
    assert multi["prompt"][-1]["content"] == "How much does it cost?"
    assert multi["chosen"] == [
        {"role": "assistant", "content": "Usually between 40 and 50 dollars, depending on the shop."}
    ]
    assert multi["rejected"][0]["content"] == "Board games are fun."
    quoted = ds[2]["chosen"][0]["content"]  # a reply that quotes "Assistant:" stays whole
    assert quoted.startswith("Put each turn") and "Assistant: hi there" in quoted
    std = load_hh_rlhf(HH, format="standard", verbose=False)
    assert std[0] == {
        "prompt": "How long should I boil an egg for a runny yolk?",
        "chosen": "About six minutes in gently boiling water, then put it in cold water for a minute so it stops cooking.",
        "rejected": "Eggs are a good source of protein.",
    }
    assert std[1]["prompt"].startswith("User: Can you recommend") and std[1]["prompt"].endswith(
        "User: How much does it cost?"
    )
    assert len(load_hh_rlhf(HH, max_rows=100, verbose=False)) == 4  # never selects past the end
    assert len(load_hh_rlhf(HH, max_rows=2, verbose=False)) == 2


def test_load_ultrafeedback_on_the_sample_file(capsys):
    ds = load_ultrafeedback(UF, format="standard")
    assert "kept 4 of 8 rows (dropped: 3 malformed, 1 tie)" in capsys.readouterr().out
    assert ds["prompt"] == [
        "Name three primary colours.",
        "Translate 'good morning' into French.",
        "Can you see the Great Wall of China from the Moon with the naked eye?",
        "Give a synonym for 'happy'.",
    ]
    assert ds["chosen"] == [
        "Red, yellow and blue (in painting); red, green and blue for light.",
        "Bonjour.",
        "No. From the Moon it is far too narrow to see without help.",
        "Joyful.",
    ]
    assert ds["rejected"][2] == "Yes, it is the only man-made object visible from the Moon."
    # mean aspect ratings: (1+3+3+1)/4 = 2.0; "N/A" skipped: (3+1+2)/3 = 2.0; (1+3+1+1)/4 = 1.5
    assert ds["score_chosen"] == [5.0, 5.0, 5.0, 5.0]
    assert ds["score_rejected"] == [2.0, 1.5, 2.0, 1.75]
    overall = load_ultrafeedback(UF, format="standard", score="overall", verbose=False)
    assert overall["chosen"][1] == "Bonsoir."  # the wrong overall_score of 10 picks a wrong answer
    conv = load_ultrafeedback(UF, verbose=False)
    assert conv[0]["prompt"] == [{"role": "user", "content": "Name three primary colours."}]


def test_ultrafeedback_binarized_rows_pass_through_and_ties_drop():
    def row(sc, sr, rejected="Hello."):
        return {
            "chosen": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hi!"}],
            "rejected": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": rejected}],
            "score_chosen": sc,
            "score_rejected": sr,
        }

    good = ultrafeedback_pair(row(8.0, 4.0))
    assert good["drop_reason"] == "" and good["prompt"] == [{"role": "user", "content": "Hi"}]
    assert good["chosen"][0]["content"] == "Hi!" and good["score_rejected"] == 4.0
    assert ultrafeedback_pair(row(6.0, 6.0))["drop_reason"] == "tie"
    ds = load_ultrafeedback(
        [row(8.0, 4.0), row(6.0, 6.0), row(7.0, 1.0, "Go.")], format="standard", verbose=False
    )
    assert ds["rejected"] == ["Hello.", "Go."]


def _uf_row(instruction, ratings):
    """A raw UltraFeedback row whose completion k has every aspect rated ratings[k]."""
    aspects = ("helpfulness", "honesty", "instruction_following", "truthfulness")
    completions = [
        {"response": f"answer {k}", "annotations": {a: {"Rating": str(r)} for a in aspects}}
        for k, r in enumerate(ratings)
    ]
    return {"instruction": instruction, "completions": completions}


def test_ultrafeedback_pairings_share_pick_pairs_tie_rule():
    row = _uf_row("Q?", [5, 3, 1, 5, 2])
    worst = ultrafeedback_pair(row)
    assert (worst["chosen"][0]["content"], worst["rejected"][0]["content"]) == ("answer 0", "answer 2")
    drawn = {
        ultrafeedback_pair(row, pairing="best_random", seed=s)["rejected"][0]["content"] for s in range(40)
    }
    assert drawn == {"answer 1", "answer 2", "answer 4"}  # lower-rated only: never the tied "answer 3"
    again = ultrafeedback_pair(row, pairing="best_random", seed=5)
    assert again == ultrafeedback_pair(row, pairing="best_random", seed=5)  # seeded per row
    assert ultrafeedback_pair(_uf_row("Q?", [4, 4]), pairing="best_random")["drop_reason"] == "tie"
    ds = load_ultrafeedback(UF, format="standard", pairing="best_random", verbose=False)
    assert ds["chosen"][1] == "Bonjour." and all(
        sc > sr for sc, sr in zip(ds["score_chosen"], ds["score_rejected"], strict=True)
    )
    with pytest.raises(ValueError, match="pairing must be one of"):
        ultrafeedback_pair(row, pairing="worst")


@pytest.mark.parametrize("loader", [load_hh_rlhf, load_ultrafeedback])
def test_a_bad_json_line_is_reported_with_the_file_and_the_line(tmp_path, loader):
    lines = HH.read_text().splitlines()[:8]
    lines[6] = lines[6][:-5]  # line 7 loses its closing characters
    bad = tmp_path / "pairs.jsonl"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(PreferenceDataError, match=r"pairs\.jsonl, line 7: not valid JSON"):
        loader(bad, verbose=False)
    doc = tmp_path / "doc.json"
    doc.write_text('[\n{"chosen": "a",\n "rejected": }\n]')
    with pytest.raises(PreferenceDataError, match=r"doc\.json, line 3: not valid JSON"):
        loader(doc, verbose=False)


# ------------------------------------------------------------------------------------------ validation
def _planted():
    ok = [{"prompt": f"Question {i}?", "chosen": f"Answer {i}.", "rejected": f"Wrong {i}."} for i in range(4)]
    return ok + [
        {"prompt": "Q?", "chosen": "", "rejected": "No."},  # 4 empty
        {"prompt": "Q5?", "chosen": "Same.", "rejected": "Same."},  # 5 tie
        dict(ok[0]),  # 6 duplicate of row 0
        {"prompt": "  what is the TEST question? ", "chosen": "A.", "rejected": "B."},  # 7 leaks into test
        {
            "prompt": "Q8?",
            "chosen": "A much much longer chosen answer here.",
            "rejected": "No.",
        },  # 8 long chosen
    ]


def test_validate_flags_each_planted_problem():
    test_ds = [{"prompt": "What is the test question?", "chosen": "x", "rejected": "y"}]
    report = validate_preference_dataset(_planted(), test_ds=test_ds)
    assert report.num_rows == 9
    assert report.issues["empty"] == [4]
    assert report.issues["tie"] == [5]
    assert report.issues["duplicate"] == [6]
    assert report.issues["test_leak"] == [7]
    assert report.issues["chosen_much_longer"] == [8]
    assert report.issues["missing_field"] == report.issues["not_a_string"] == []
    assert report.rows_to_drop() == [4, 5, 6, 7]
    assert not report.ok and not report.fatal
    assert "tie" in str(report) and "rows 5" in str(report)


def test_validate_fatal_problems_raise_with_row_and_field():
    rows = _planted()[:3] + [{"prompt": "Q", "chosen": "A"}, {"prompt": "Q", "chosen": 3, "rejected": "B"}]
    with pytest.raises(
        PreferenceDataError,
        match=r"2 of 5 rows cannot be used: row 3: missing field 'rejected'; row 4, field 'chosen'",
    ):
        validate_preference_dataset(rows)
    report = validate_preference_dataset(rows, raise_on_fatal=False)
    assert report.issues["missing_field"] == [3] and report.issues["not_a_string"] == [4] and report.fatal


def test_validate_length_imbalance_and_max_length(sft):
    _, tok = sft
    rows = [
        {"prompt": "What is 2 plus 2?", "chosen": "Well, let me think: 2 plus 2 is 4.", "rejected": "5."}
    ] * 2
    rows = rows + [{"prompt": "What is the capital of France? " * 8, "chosen": "Paris.", "rejected": "Rome."}]
    words = validate_preference_dataset(rows[:2])
    assert words.length_unit == "words" and words.mean_chosen_length == 9 and words.mean_rejected_length == 1
    assert words.length_imbalanced and words.chosen_longer_share == 1.0 and words.issues["duplicate"] == [1]
    report = validate_preference_dataset(rows, tokenizer=tok, max_length=20)
    assert report.length_unit == "tokens"
    assert report.issues["prompt_too_long"] == [2]
    assert report.issues["truncated"] == [0, 1]  # ~11 prompt tokens + ~19 reply tokens > 20
    balanced = validate_preference_dataset([{"prompt": "p", "chosen": "a b", "rejected": "c d"}])
    assert balanced.ok and not balanced.length_imbalanced


def test_validate_accepts_conversational_rows_and_a_datasets_dataset():
    from datasets import Dataset

    conv = [to_conversational(r) for r in _planted()[:4]]
    report = validate_preference_dataset(Dataset.from_list(conv), test_ds=[conv[2]])
    assert report.issues["test_leak"] == [2] and report.num_rows == 4


def test_validate_rejects_a_non_finite_length_ratio_by_name():
    for bad in (float("nan"), float("inf"), 0.5):
        with pytest.raises(ValueError, match="length_ratio must be a finite number >= 1"):
            validate_preference_dataset(_planted(), length_ratio=bad)


def test_a_pretty_printed_json_document_is_not_mistaken_for_bad_json_lines(tmp_path):
    doc = tmp_path / "pairs.json"
    doc.write_text('{\n  "prompt": ["Hi"],\n  "chosen": ["Hello."],\n  "rejected": ["Go away."]\n}\n')
    from dpo_course.data.loaders import _check_json

    _check_json(doc)  # one valid document: no error
    doc.write_text('{"prompt": "Hi"}\n{"prompt": \n')
    with pytest.raises(PreferenceDataError, match="line 2"):
        _check_json(doc)

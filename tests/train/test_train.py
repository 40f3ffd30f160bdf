"""The from-scratch trainer: config validation, clear errors, determinism, agreement with TRL, and the toy-world result."""

import copy
import math
import time

import pytest
import torch
from datasets import Dataset

from dpo_course import generate
from dpo_course.data import PreferenceDataError
from dpo_course.toyworld import eval_prompts, judge, load_sft_model, preference_pairs, reward
from dpo_course.train import DPOTrainConfig, batch_plan, train_dpo

SMALL = dict(epochs=1, batch_size=8, progress=False, device="cpu")


@pytest.fixture
def policy(sft):
    return copy.deepcopy(sft[0])


@pytest.fixture(scope="module")
def pairs():
    return preference_pairs("train").select(range(16))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(beta=0), "beta"),
        (dict(loss_type="dpo"), "loss_type"),
        (dict(label_smoothing=0.5), "label_smoothing"),
        (dict(label_smoothing=0.1, loss_type="ipo"), "sigmoid"),
        (dict(learning_rate=-1.0), "learning_rate"),
        (dict(batch_size=0), "batch_size"),
        (dict(lr_scheduler="cosine"), "lr_scheduler"),
    ],
)
def test_config_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DPOTrainConfig(**kwargs)


@pytest.mark.parametrize(
    "row, match",
    [
        ({"prompt": "What is 2 plus 2?", "chosen": "2 plus 2 is 4."}, r"row 1: missing field 'rejected'"),
        (
            {"prompt": "What is 2 plus 2?", "chosen": 4, "rejected": "no"},
            r"row 1, field 'chosen': expected a str",
        ),
        (
            {"prompt": "What is 2 plus 2?", "chosen": "2 plus 2 is 4.", "rejected": "  "},
            r"row 1, field 'rejected': empty",
        ),
        (
            {"prompt": "What is 2 plus 2?", "chosen": "same", "rejected": "same"},
            r"row 1: 'chosen' and 'rejected' are identical",
        ),
        (
            {"prompt": "What is 2 plus 2? " * 40, "chosen": "4", "rejected": "5"},
            r"row 1, field 'prompt': \d+ tokens leave no room",
        ),
    ],
)
def test_bad_rows_name_the_row_and_field(sft, policy, row, match):
    good = {"prompt": "What is 3 plus 3?", "chosen": "3 plus 3 is 6.", "rejected": "3 plus 3 is 7."}
    with pytest.raises(PreferenceDataError, match=match):
        train_dpo(policy, sft[1], [good, row], DPOTrainConfig(**SMALL))


def test_empty_dataset(sft, policy):
    with pytest.raises(ValueError, match="empty"):
        train_dpo(policy, sft[1], [], DPOTrainConfig(**SMALL))


def test_nan_loss_names_the_step_and_statistic(sft, policy, pairs, monkeypatch):
    import dpo_course.train.dpo as train_module

    real = train_module.dpo_forward
    calls = {"n": 0}

    def poisoned(*args, **kwargs):
        calls["n"] += 1
        out = real(*args, **kwargs)
        if calls["n"] == 2:
            out.loss = out.loss * float("nan")
        return out

    monkeypatch.setattr(train_module, "dpo_forward", poisoned)
    with pytest.raises(FloatingPointError, match=r"step 2: loss is nan"):
        train_dpo(policy, sft[1], pairs, DPOTrainConfig(**SMALL))


def test_history_has_trl_metrics_and_starts_at_log2(sft, policy, pairs):
    _, history = train_dpo(policy, sft[1], pairs, DPOTrainConfig(**SMALL))
    assert len(history) == 2
    first = history[0]
    for key in (
        "loss",
        "rewards/chosen",
        "rewards/rejected",
        "rewards/accuracies",
        "rewards/margins",
        "logps/chosen",
        "logps/rejected",
        "grad_norm",
    ):
        assert key in first
    # policy == reference before the first update: loss log 2, zero rewards
    assert first["loss"] == pytest.approx(0.693147, abs=1e-5)
    assert first["rewards/margins"] == pytest.approx(0.0, abs=1e-6)


def test_grad_norm_is_logged_before_clipping(sft, pairs):
    """TRL's grad_norm is the norm before clipping: the first step's is the same whatever the threshold."""
    norms = [
        train_dpo(copy.deepcopy(sft[0]), sft[1], pairs, DPOTrainConfig(**SMALL, max_grad_norm=clip))[1][0][
            "grad_norm"
        ]
        for clip in (1e-3, 0.0)
    ]
    assert norms[0] == pytest.approx(norms[1], rel=1e-6)
    assert norms[0] > 1e-2  # far above the 1e-3 threshold: the logged value was not the clipped one


def test_deterministic_for_a_seed(sft, pairs):
    runs = [
        train_dpo(copy.deepcopy(sft[0]), sft[1], pairs, DPOTrainConfig(**SMALL, seed=3))[1] for _ in range(2)
    ]
    assert runs[0] == runs[1]


def test_precomputed_reference_equals_a_live_reference(sft, pairs):
    a = train_dpo(
        copy.deepcopy(sft[0]), sft[1], pairs, DPOTrainConfig(**SMALL, precompute_ref_log_probs=True)
    )[1]
    b = train_dpo(
        copy.deepcopy(sft[0]), sft[1], pairs, DPOTrainConfig(**SMALL, precompute_ref_log_probs=False)
    )[1]
    for x, y in zip(a, b):
        assert x["loss"] == pytest.approx(y["loss"], abs=1e-5)
        assert x["rewards/margins"] == pytest.approx(y["rewards/margins"], abs=1e-5)


def test_fused_equals_unfused(sft, pairs):
    a = train_dpo(copy.deepcopy(sft[0]), sft[1], pairs, DPOTrainConfig(**SMALL, fused=False))[1]
    b = train_dpo(copy.deepcopy(sft[0]), sft[1], pairs, DPOTrainConfig(**SMALL, fused=True))[1]
    for x, y in zip(a, b):
        assert x["loss"] == pytest.approx(y["loss"], abs=1e-4)


@pytest.mark.parametrize("loss_type", ["ipo", "hinge", "simpo", "orpo"])
def test_every_loss_type_trains(sft, pairs, loss_type):
    _, history = train_dpo(copy.deepcopy(sft[0]), sft[1], pairs, DPOTrainConfig(**SMALL, loss_type=loss_type))
    assert all(torch.isfinite(torch.tensor(h["loss"])) for h in history)
    assert history[-1]["rewards/margins"] > history[0]["rewards/margins"] - 1e-6


def _conversational(ds):
    return Dataset.from_list(
        [
            {
                "prompt": [{"role": "user", "content": r["prompt"]}],
                "chosen": [{"role": "assistant", "content": r["chosen"]}],
                "rejected": [{"role": "assistant", "content": r["rejected"]}],
            }
            for r in ds
        ]
    )


def trl_trainer(policy, reference, tokenizer, ds, tmp_path, **overrides):
    from trl import DPOConfig, DPOTrainer

    args = dict(
        output_dir=str(tmp_path),
        per_device_train_batch_size=len(ds),
        max_steps=1,
        learning_rate=1e-4,
        beta=0.1,
        max_length=128,
        logging_steps=1,
        report_to=[],
        bf16=False,
        use_cpu=True,
        gradient_checkpointing=False,
        save_strategy="no",
        disable_dropout=True,
    )
    args.update(overrides)
    return DPOTrainer(
        model=policy,
        ref_model=reference,
        args=DPOConfig(**args),
        train_dataset=_conversational(ds),
        processing_class=tokenizer,
    )


def test_first_step_loss_equals_trl_dpotrainer(sft, pairs, tmp_path):
    """train_dpo and TRL's DPOTrainer agree on the first step when policy and reference differ."""
    model, tok = sft
    reference = copy.deepcopy(model)
    policy = copy.deepcopy(model)
    # Move the policy away from the reference so the loss is not the trivial log 2.
    train_dpo(
        policy,
        tok,
        preference_pairs("train").select(range(16, 48)),
        DPOTrainConfig(**SMALL, learning_rate=3e-4),
    )
    ours = train_dpo(
        copy.deepcopy(policy), tok, pairs, DPOTrainConfig(**{**SMALL, "batch_size": 16}), reference=reference
    )[1][0]
    trainer = trl_trainer(copy.deepcopy(policy), copy.deepcopy(reference), tok, pairs, tmp_path)
    trainer.train()
    theirs = next(h for h in trainer.state.log_history if "loss" in h)
    assert ours["loss"] != pytest.approx(0.693147, abs=1e-3)
    assert ours["loss"] == pytest.approx(theirs["loss"], abs=1e-4)
    assert ours["rewards/margins"] == pytest.approx(theirs["rewards/margins"], abs=1e-4)
    assert ours["logps/chosen"] == pytest.approx(theirs["logps/chosen"], rel=1e-4)


@pytest.mark.slow
def test_default_config_beats_the_sft_model_on_held_out_prompts():
    """Issue 3's bar, on 3 seeds: each run under 45 s and raises the mean reward; pooled over the seeds,
    >= 70% of the non-tied judgements are won (one seed alone is too few decisive prompts to judge)."""
    reference, tok = load_sft_model("cpu")
    prompts = eval_prompts()
    before = generate(reference, tok, prompts)
    mean_before = sum(map(reward, prompts, before)) / len(prompts)
    wins = losses = 0
    for seed in (0, 1, 2):
        start = time.time()
        policy, history = train_dpo(
            load_sft_model("cpu")[0],
            tok,
            preference_pairs("train"),
            DPOTrainConfig(progress=False, device="cpu", seed=seed),
        )
        seconds = time.time() - start
        after = generate(policy, tok, prompts)
        verdicts = [judge(p, a, b) for p, a, b in zip(prompts, after, before)]
        wins, losses = wins + verdicts.count("A"), losses + verdicts.count("B")
        mean_after = sum(map(reward, prompts, after)) / len(prompts)
        print(
            f"seed {seed}: {seconds:.1f} s, {len(history)} steps, wins {verdicts.count('A')}, "
            f"losses {verdicts.count('B')}, mean reward {mean_before:.3f} -> {mean_after:.3f}"
        )
        assert seconds < 45
        assert mean_after > mean_before, seed
    assert wins / (wins + losses) >= 0.7, (wins, losses)


# ------------------------------------------------------------------ batches: length grouping, epochs


def test_batch_plan_groups_lengths_and_is_seeded():
    lengths = [(7 * i) % 61 + 5 for i in range(200)]
    plain = batch_plan(lengths, 16, 2, seed=0, group_by_length=False)
    grouped = batch_plan(lengths, 16, 2, seed=0, group_by_length=True)
    assert grouped == batch_plan(lengths, 16, 2, seed=0, group_by_length=True)  # same seed, same plan
    assert grouped != batch_plan(lengths, 16, 2, seed=1, group_by_length=True)
    for plan in (plain, grouped):  # every row once per epoch, 13 batches per epoch
        assert len(plan) == 26 and plan[12][0] == 1.0 and plan[-1][0] == 2.0
        assert sorted(i for _, b in plan[:13] for i in b) == list(range(200))

    def padded(plan):  # the padded width of each batch, summed: what a forward pass pays for
        return sum(len(b) * max(lengths[i] for i in b) for _, b in plan)

    assert padded(grouped) < 0.75 * padded(plain)
    # A fractional epoch keeps the first ceil(1.5 x 13) = 20 batches, as TRL's num_train_epochs does.
    assert len(batch_plan(lengths, 16, 1.5, seed=0)) == 20


@pytest.mark.parametrize("epochs", [0, -1.0, float("inf"), float("nan"), True, "2"])
def test_epochs_must_be_a_finite_positive_number(epochs):
    with pytest.raises(ValueError, match="epochs"):
        DPOTrainConfig(epochs=epochs)


def test_fractional_epochs_and_group_by_length_off(sft, pairs):
    # 16 pairs, batch 8: 2 batches per epoch; 1.5 epochs -> 3 steps, the last one half-way into epoch 2.
    _, history = train_dpo(copy.deepcopy(sft[0]), sft[1], pairs, DPOTrainConfig(**{**SMALL, "epochs": 1.5}))
    assert [h["epoch"] for h in history] == [0.5, 1.0, 1.5]
    a = train_dpo(copy.deepcopy(sft[0]), sft[1], pairs, DPOTrainConfig(**SMALL, group_by_length=False))[1]
    b = train_dpo(copy.deepcopy(sft[0]), sft[1], pairs, DPOTrainConfig(**SMALL, group_by_length=True))[1]
    assert a[0]["loss"] == pytest.approx(b[0]["loss"], abs=1e-5)  # both log 2 at the start
    assert a[1]["logps/chosen"] != pytest.approx(b[1]["logps/chosen"], abs=1e-6)  # other batches


def test_eval_mode_restores_each_module_and_survives_errors():
    from dpo_course import eval_mode

    net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout(0.5))
    net.train()
    net[0].eval()  # a part frozen in eval mode must come back that way
    other = torch.nn.Dropout(0.1).train()
    with pytest.raises(RuntimeError), eval_mode(net, other, net):
        assert not net.training and not net[1].training and not other.training
        raise RuntimeError("boom")
    assert net.training and not net[0].training and net[1].training and other.training


# ------------------------------------------------------------------ the loss registry, seen from the trainer


def test_a_loss_registered_in_a_test_trains(sft, pairs, monkeypatch):
    """Adding a loss is one function and one entry; the trainer needs nothing else."""
    from dpo_course.losses import LOSSES, register_loss

    monkeypatch.setitem(LOSSES, "squared_margin", None)  # the entry dies with the test
    del LOSSES["squared_margin"]

    # --- a new loss: the function and its entry, 7 lines (the decorator is the entry) ---
    @register_loss("squared_margin", inputs=("policy_chosen_logps", "policy_rejected_logps",
                   "reference_chosen_logps", "reference_rejected_logps"), config_fields={"beta": "beta"})  # fmt: skip
    def squared_margin_loss(pc, pr, rc, rr, beta=0.1, target=2.0):
        """A toy IPO-like loss: (beta h - target)^2, with `target` passed through loss_kwargs."""
        h = (pc - rc) - (pr - rr)
        chosen_rewards, rejected_rewards = beta * (pc - rc).detach(), beta * (pr - rr).detach()
        return (beta * h - target) ** 2, chosen_rewards, rejected_rewards

    # --- end of the new loss ---
    config = DPOTrainConfig(**SMALL, loss_type="squared_margin", loss_kwargs={"target": 1.0})
    _, history = train_dpo(copy.deepcopy(sft[0]), sft[1], pairs, config)
    assert history[0]["loss"] == pytest.approx(1.0, abs=1e-5)  # h = 0 at the start: (0 - 1)^2
    assert history[-1]["rewards/margins"] > history[0]["rewards/margins"]
    with pytest.raises(ValueError, match="already registered"):
        register_loss("squared_margin", inputs=("policy_chosen_logps", "policy_rejected_logps"))(len)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(loss_type="sigmoid_norm"),
        dict(loss_type="rdpo", rdpo_alpha=0.05),
        dict(ld_alpha=0.5),
        dict(loss_type="ipo", ld_alpha=0.0),
        dict(reference_free=True),
    ],
)
def test_new_loss_options_train(sft, pairs, kwargs):
    _, history = train_dpo(copy.deepcopy(sft[0]), sft[1], pairs, DPOTrainConfig(**SMALL, **kwargs))
    assert all(math.isfinite(h["loss"]) for h in history)
    if not kwargs.get("reference_free"):  # reference-free rewards are beta * log pi: not 0 at the start
        assert history[-1]["rewards/margins"] > history[0]["rewards/margins"]


def test_reference_free_takes_reference_log_probs_as_zero(sft, pairs):
    from dpo_course.data import PreferenceCollator, tokenize_dataset
    from dpo_course.logprobs import concatenated_forward
    from dpo_course.losses import dpo_loss
    from dpo_course.train import dpo_forward

    model, tok = sft
    batch = PreferenceCollator(tok.pad_token_id)(
        tokenize_dataset(tok, pairs.select(range(4)), max_length=128)
    )
    out = dpo_forward(model, batch, DPOTrainConfig(reference_free=True, beta=0.2))  # no reference given
    pc, pr = concatenated_forward(model, batch)
    zero = torch.zeros_like(pc)
    losses, chosen_rewards, _ = dpo_loss(pc, pr, zero, zero, beta=0.2)
    torch.testing.assert_close(out.loss, losses.mean())
    torch.testing.assert_close(out.chosen_rewards, 0.2 * pc.detach())  # rewards: beta * log pi
    assert out.loss.item() != pytest.approx(math.log(2), abs=1e-3)  # not DPO's log 2 start
    with pytest.raises(ValueError, match="no reference to drop"):
        DPOTrainConfig(loss_type="simpo", reference_free=True)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(learning_rate=float("inf")), "learning_rate"),
        (dict(beta=float("nan")), "beta"),
        (dict(beta=float("inf")), "beta"),
        (dict(loss_type="simpo", simpo_gamma=float("nan")), "simpo_gamma"),
        (dict(loss_type="rdpo", rdpo_alpha=float("inf")), "rdpo_alpha"),
        (dict(max_grad_norm=float("nan")), "max_grad_norm"),
        (dict(ld_alpha=1.5), "ld_alpha"),
        (dict(simpo_gamma=0.5), r"simpo_gamma is read by loss_type \['simpo'\] only"),
        (dict(loss_type="kto"), "train_kto"),
    ],
)
def test_config_rejects_non_finite_and_unread_settings_by_name(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DPOTrainConfig(**kwargs)

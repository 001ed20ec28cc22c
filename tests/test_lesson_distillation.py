"""Lesson 03's helpers on tiny data: the demonstration settings, the flat-loss reading and the probability of 6."""

from dataclasses import replace

import pytest
import torch
from conftest import TINY

from unlearnlab.data import class_splits
from unlearnlab.lessons import distillation as lesson
from unlearnlab.methods.base import Cost
from unlearnlab.methods.distill import Config, DistillParts, DistillResult
from unlearnlab.metrics import UnlearningReport
from unlearnlab.models import build_model
from unlearnlab.training import History


def _run(kd: list[float]) -> lesson.Run:
    result = DistillResult(build_model("cnn"), Cost(), History(), parts=DistillParts(kd=kd))
    return lesson.Run(result, UnlearningReport(0.0, 0.9, 0.9, [0.9] * 10, 0.9))


def test_the_demonstrations_listen_mostly_to_the_raw_teacher_for_one_epoch():
    config = Config(num_epochs=6, alpha=0.5, targets="move")
    assert lesson.demo_config(config) == Config(num_epochs=1, alpha=0.1, targets="keep")
    assert lesson.demo_config(config, loss="double_softmax").loss == "double_softmax"


def test_the_flat_loss_text_tests_the_double_softmax_hypothesis():
    demos = lesson.Demonstrations(flat=_run([0.1, 0.1, 0.1]), moving=_run([2.0, 1.0, 0.25]))
    assert lesson.flat_loss_text(demos).splitlines() == [
        "double softmax: KD term from 0.1000 to 0.1000, spread 0.0000 over 3 steps",
        "log-probabilities: KD term from 2.00 to 0.25, spread 1.75",
        "the correct term spreads inf times as far as the double-softmax one",
        "printed with 4 decimals, the double-softmax term takes 1 distinct value(s): constant, as in the report",
    ]
    moving = lesson.Demonstrations(flat=_run([0.05, 0.03, 0.01]), moving=_run([2.0, 1.0, 0.25]))
    assert lesson.flat_loss_text(moving).splitlines()[2:] == [
        "the correct term spreads 44 times as far as the double-softmax one",
        "printed with 4 decimals, the double-softmax term takes 3 distinct value(s): not constant",
    ]
    report = demos.flat.report
    rows = lesson.side_by_side_text(report, demos, report, demos.flat, report).splitlines()[2:]
    assert [row.split(" | ")[0].strip("| ") for row in rows] == [
        "teacher (original)",
        "student, flat loss (1 epoch, alpha 0.1)",
        "student, 6 left in targets (1 epoch, alpha 0.1)",
        "student, 6 moved to 3",
        "bad-teacher student",
        "retrained from scratch",
    ]


def test_the_probability_of_6_is_the_softmax_mean_on_the_test_6s(mnist_test):
    torch.manual_seed(0)
    model = build_model("cnn").eval()
    test = mnist_test.subset(slice(0, 300))
    splits = class_splits([6], test, test)
    with torch.no_grad():
        expected = model(splits.test_forget.X).softmax(1)[:, 6].mean().item()
    assert abs(lesson.prob_of_forget_class(model, splits, "cpu") - expected) < 1e-6


QUICK = replace(TINY, name="quick")  # the quick profile's budget and settings, on tiny data


def test_train_student_uses_the_chosen_settings_and_refuses_epochs_beyond_the_budget(
    small_train, mnist_test, monkeypatch
):
    splits = class_splits([6], small_train, mnist_test.subset(slice(0, 200)))
    seen = []
    monkeypatch.setattr(
        lesson.distill, "unlearn", lambda teacher, splits, config, **kw: seen.append(config) or _run([]).result
    )
    monkeypatch.setattr(lesson, "report", lambda net, device: "report")
    run = lesson.train_student(
        build_model("cnn_bn"),
        splits,
        QUICK,
        temperature=2.0,
        targets="drop",
        alpha=0.3,
        num_epochs=1,
        seed=0,
        device="cpu",
    )
    assert run.report == "report"
    assert (seen[0].temperature, seen[0].targets, seen[0].alpha, seen[0].num_epochs) == (2.0, "drop", 0.3, 1)
    with pytest.raises(ValueError, match="the budget"):
        lesson.train_student(
            build_model("cnn_bn"),
            splits,
            QUICK,
            temperature=2.0,
            targets="move",
            alpha=0.5,
            num_epochs=lesson.BUDGETS["quick"].max_epochs + 1,
            seed=0,
            device="cpu",
        )


def test_the_targets_text_renders_the_bars_and_the_budget():
    text = lesson.targets_text(QUICK)
    assert "accuracy on the modified labels    >= 96.00 %" in text
    assert text.endswith("budget: at most 3 epochs over 6,000 training images, from random weights")

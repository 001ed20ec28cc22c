"""Lesson 03's helpers on tiny data: the demonstration settings, the flat-loss reading and the probability of 6."""

import torch

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


def test_the_flat_loss_text_reads_both_kd_terms_and_their_ratio():
    demos = lesson.Demonstrations(flat=_run([0.1, 0.1, 0.1]), moving=_run([2.0, 1.0, 0.25]))
    assert lesson.flat_loss_text(demos).splitlines() == [
        "double softmax: KD term from 0.1000 to 0.1000",
        "log-probabilities: KD term from 2.00 to 0.25",
        "at the first step the fixed term is 20 times the buggy one",
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

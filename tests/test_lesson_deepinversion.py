"""Lesson 05's studies on tiny data: the learning curve, section 3's ablation and the texts the notebook prints."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from unlearnlab.data import TensorData, per_class_subset, stratified_subset
from unlearnlab.lessons import deepinversion as lesson
from unlearnlab.methods.deepinversion import InversionConfig, SynthesisResult, bn_statistics
from unlearnlab.methods.zero_shot_student import StudentConfig, train_student
from unlearnlab.metrics import UnlearningReport, unlearning_report
from unlearnlab.models import build_model
from unlearnlab.training import History
from unlearnlab.zoo import ZooEntry


def test_learning_curve_trains_one_student_per_count_with_the_same_step_budget(mnist_test, tmp_path, monkeypatch):
    monkeypatch.setenv("UNLEARNLAB_CACHE", str(tmp_path))
    monkeypatch.setenv("UNLEARNLAB_RESUME", "0")  # each student below is trained again, not loaded
    torch.manual_seed(0)
    teacher = build_model("cnn_bn").eval()
    synthetic = TensorData(torch.randn(8, 1, 28, 28), torch.tensor([1, 2] * 4))  # 4 images of classes 1 and 2
    config = StudentConfig(num_epochs=1, batch_size=2)  # the whole set: 4 steps
    points = lesson.learning_curve(teacher, synthetic, [0], [4, 1], mnist_test.subset(slice(0, 100)), config, "cpu")
    assert [p.images_per_class for p in points] == [1, 4]
    assert [p.steps for p in points] == [4, 4]  # 1 batch x 4 epochs, and 4 batches x 1 epoch
    for point, epochs in zip(points, [4, 1]):  # each point is the student train_student gives on that subset
        subset = per_class_subset(synthetic, point.images_per_class, seed=0)
        student, _ = train_student(teacher, subset, [0], replace(config, num_epochs=epochs), "cpu", 0)
        report = unlearning_report(student, mnist_test.subset(slice(0, 100)), [0], device="cpu")
        assert (point.retain_acc, point.forget_acc) == (report.retain_acc, report.forget_acc)
    with pytest.raises(ValueError, match="only 4 images"):
        lesson.learning_curve(teacher, synthetic, [0], [5], mnist_test, config, "cpu")
    text = lesson.curve_text(points).splitlines()
    assert text[0] == (
        f"    1 images per class: retain {100 * points[0].retain_acc:6.2f} %, "
        f"forget {100 * points[0].forget_acc:5.2f} % (4 steps, {points[0].seconds:.0f} s)"
    )


def test_the_ablation_changes_only_what_each_variant_is_about():
    base = InversionConfig(images_per_class=50, batch_per_class=50, steps=7)
    variants = lesson.ablation_configs(base)
    small = replace(base, images_per_class=4, batch_per_class=4)
    assert list(variants.values()) == [
        replace(small, bn_weight=0.0, tv_weight=0.0, l2_weight=0.0, jitter=0),
        replace(small, standardise_bn=False),
        small,
    ]
    assert lesson.retain_classes((0,)) == list(range(1, 10))
    assert lesson.retain_classes([0, 6]) == [1, 2, 3, 4, 5, 7, 8, 9]


def test_the_ablation_dreams_the_retained_classes_and_reports_their_statistics():
    torch.manual_seed(0)
    teacher = build_model("cnn_bn").eval()
    config = InversionConfig(steps=2)
    dreams = lesson.ablation(teacher, tuple(range(2, 10)), config, 0, "cpu")  # classes 0 and 1, 4 images each
    assert list(dreams) == list(lesson.ablation_configs(config))
    assert all(d.data.y.tolist() == [0] * 4 + [1] * 4 for d in dreams.values())
    lines = lesson.ablation_text(teacher, dreams).splitlines()
    raw = dreams["BN statistics, raw units (paper)"]
    values = "  ".join(f"{v:5.2f}" for v in bn_statistics(teacher, raw.data.X))
    assert lines[1].endswith(f"standardised R_bn per layer: {values}")
    assert len(lesson.ablation_figures(dreams)) == 3


def test_the_units_text_is_bn_statistics_on_real_digits_both_ways(mnist_test):
    torch.manual_seed(0)
    teacher = build_model("cnn_bn").eval()
    test = mnist_test.subset(slice(0, 300))
    raw, standardised = lesson.units_text(teacher, test, seed=0, images=100).splitlines()
    X = stratified_subset(test, 100, seed=0).X
    assert raw.endswith("  ".join(f"{v:6.2f}" for v in bn_statistics(teacher, X, standardise=False)))
    assert standardised.endswith("  ".join(f"{v:6.2f}" for v in bn_statistics(teacher, X, standardise=True)))


def test_the_cost_line_compares_zero_shot_with_retraining():
    report = UnlearningReport(0.0, 0.99, 0.9, [0.0] + [0.99] * 9)
    synthetic = SynthesisResult(TensorData(torch.zeros(9, 1, 28, 28), torch.arange(1, 10)), 30.0, 1.0)
    gold = ZooEntry(build_model("cnn"), 40.0, Path("unused"))
    text = lesson.student_text({"student": report}, synthetic, History(seconds=10.0), gold)
    assert text.splitlines()[-1] == (
        "zero-shot unlearning took 40 s: synthesis 30 s, student 10 s; retraining took 40 s with the real data "
        "(1.0 x retraining's time)"
    )
    assert lesson.synthesis_text(synthetic, InversionConfig(images_per_class=1, steps=5), "cpu").splitlines() == [
        "9 images (1 per class, 5 steps) in 30 s: 0.3 images/s on cpu",
        "the teacher calls 100.0 % of them their target class",
    ]


def test_the_budget_is_images_per_class_times_steps():
    quick = SimpleNamespace(name="quick")
    budget = lesson.BUDGETS["quick"].image_steps
    fits = replace(lesson.inversion_config(quick), images_per_class=budget // 100, steps=100)
    (condition,) = lesson.budget_conditions(fits, quick)
    assert condition.ok and condition.detail == f"reached {budget} image-steps, bar ≤ {budget} image-steps"
    (over,) = lesson.budget_conditions(replace(fits, steps=101), quick)
    assert not over.ok and "bar ≤" in over.detail
    reference = lesson.inversion_config(quick)
    assert reference.images_per_class * reference.steps <= budget  # the lesson's own run fits its budget


@pytest.mark.parametrize("name", ["quick", "full"])
def test_each_profiles_own_run_fits_its_budget_and_its_curve_fits_its_images(name):
    profile = SimpleNamespace(name=name)
    reference, sizes = lesson.inversion_config(profile), lesson.SIZES[name]
    work = reference.images_per_class * reference.steps
    assert work <= lesson.BUDGETS[name].image_steps  # the lesson's own run is one answer within the budget
    assert max(sizes.curve_counts) <= reference.images_per_class  # nested subsets of the images dreamed
    assert sizes.demo_images_per_class * sizes.demo_steps < work  # the demo only measures the speed


def test_the_student_is_set_against_the_cs772_report():
    synthetic = SynthesisResult(TensorData(torch.zeros(9, 1, 28, 28), torch.arange(1, 10)), 90.0, 1.0)
    student = UnlearningReport(0.0, 0.9876, 0.9, [0.0] + [0.99] * 9)
    lines = lesson.against_the_report(InversionConfig(images_per_class=250), synthetic, student).splitlines()
    assert lines == [
        "here: 250 images per class gave 98.76 % retain accuracy and 0.00 % forget accuracy (1.5 min of synthesis)",
        lesson.CS772,
    ]
    assert "6,000 per class" in lesson.CS772 and "7-8 h" in lesson.CS772


def test_the_demo_is_small_and_the_brief_states_targets_and_budget():
    quick = SimpleNamespace(name="quick")
    demo_config = lesson.demo_settings(quick)
    sizes = lesson.SIZES["quick"]
    assert demo_config == replace(
        lesson.inversion_config(quick),
        images_per_class=sizes.demo_images_per_class,
        batch_per_class=sizes.demo_images_per_class,
        steps=sizes.demo_steps,
    )
    demo = SynthesisResult(TensorData(torch.zeros(2, 1, 28, 28), torch.tensor([1, 2])), seconds=5.0, teacher_acc=1.0)
    work = demo_config.images_per_class * demo_config.steps
    brief = lesson.q4_brief(quick, demo, demo_config).splitlines()
    assert brief[0].startswith("targets on real test images: retain accuracy >= 95 %, forget class <= 1 %")
    seconds = 5.0 * lesson.BUDGETS["quick"].image_steps / work
    assert brief[1] == (
        f"budget: images per class x Adam steps <= 5,000 (the demo used {work:,} in 5 s: the budget is about "
        f"{seconds:.0f} s of synthesis here, if time grows with both)"
    )


def test_the_reference_run_dreams_the_profiles_settings_and_trains_its_student(monkeypatch):
    quick = SimpleNamespace(name="quick")
    synthetic = SynthesisResult(TensorData(torch.zeros(2, 1, 28, 28), torch.tensor([1, 2])), 1.0, 1.0)
    calls = {}

    def fake_dream(teacher, forget, config, seed, device):
        calls["dream"] = (forget, config, seed)
        return synthetic

    def fake_train(teacher, data, forget, config, device, seed):
        calls["train"] = (data, forget, config, seed)
        return "student", History()

    monkeypatch.setattr(lesson, "dream", fake_dream)
    monkeypatch.setattr(lesson.zs, "train_student", fake_train)
    run = lesson.reference_run("teacher", (0,), quick, 3, "cpu")
    assert calls["dream"] == ((0,), lesson.inversion_config(quick), 3)
    assert calls["train"] == (synthetic.data, (0,), lesson.student_config(quick), 3)
    assert run.config == lesson.inversion_config(quick) and run.synthetic is synthetic and run.student == "student"

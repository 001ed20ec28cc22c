"""Lesson 02's helpers on tiny data: the changed share, Q3's training and budget, the mask table, the texts."""

from dataclasses import replace

import pytest
import torch
from conftest import TINY

from unlearnlab.data import class_splits
from unlearnlab.lessons import penalty_loss as lesson
from unlearnlab.methods.base import clone
from unlearnlab.methods.penalty import Config
from unlearnlab.methods.saliency import layer_masks
from unlearnlab.metrics import UnlearningReport
from unlearnlab.models import build_model

QUICK = replace(TINY, name="quick")  # the quick profile's budget and settings, on tiny data


def test_the_changed_share_counts_conv_and_linear_entries_only():
    torch.manual_seed(0)
    model = build_model("cnn_bn")
    edited = clone(model)
    with torch.no_grad():
        edited.fc3.weight[0, :10] += 1.0  # 10 entries of the conv and linear ones
        edited.bn1.weight += 1.0  # BatchNorm: not a conv or linear entry
    total = sum(p.numel() for n, p in model.named_parameters() if not n.startswith("bn"))
    assert lesson.changed_share(edited, model) == 10 / total
    assert lesson.changed_share(build_model("cnn_bn"), model) > 0.99  # a new model changes (almost) every weight


def test_unlearn_keeps_to_the_budget_and_trains_only_the_chosen_share(small_train, mnist_test, monkeypatch):
    torch.manual_seed(0)
    model = build_model("cnn_bn")
    splits = class_splits([6], small_train, mnist_test.subset(slice(0, 200)))
    scores = lesson.saliency_scores(model, splits, "cpu")
    monkeypatch.setattr(lesson, "report", lambda net, device: "report")
    monkeypatch.setitem(lesson.penalty.CONFIGS, "quick", Config(num_epochs=1, batch_size=64))
    run = lesson.unlearn(model, splits, scores, QUICK, fraction=0.02, weight=1.0, seed=0, device="cpu")
    assert 0 < lesson.changed_share(run.model, model) <= 0.02
    with pytest.raises(ValueError, match="the budget"):
        lesson.unlearn(model, splits, scores, QUICK, fraction=0.5, weight=1.0, seed=0, device="cpu")


def test_the_targets_text_renders_the_bars_and_the_budget():
    text = lesson.targets_text(QUICK)
    assert "class 3                               >= 98.50 %" in text
    assert "budget: at most 10 % of the conv and linear weights changed, BatchNorm untouched" in text


def test_the_mask_table_counts_the_chosen_entries_of_each_parameter():
    model = build_model("cnn")
    masks = layer_masks(model, ["fc3"])
    rows = dict(line.split(maxsplit=1) for line in lesson.mask_table(masks).splitlines()[1:])
    assert rows["fc3.weight"].split() == ["640", "640", "100.00%"]
    assert rows["conv1.weight"].split() == ["0", "288", "0.00%"]


def test_a_run_of_the_recipe_reports_on_the_model_it_returns(small_train, mnist_test, monkeypatch):
    torch.manual_seed(0)
    test = mnist_test.subset(slice(0, 200))
    splits = class_splits([6], small_train, test)
    seen = []
    monkeypatch.setattr(lesson, "report", lambda net, device: seen.append(net) or "report")
    config = Config(num_epochs=1, batch_size=64)
    run = lesson.run_recipe(build_model("cnn_bn"), splits, config, 0, "cpu", trainable="fc3", penalty="none")
    assert seen == [run.model] and run.report == "report"
    assert len(run.history.step_loss) == -(-len(small_train) // 64)


def test_the_result_text_names_classes_3_and_6_the_largest_drop_and_the_untouched_weights():
    def report(per_class):
        acc = sum(per_class) / 10
        return UnlearningReport(per_class[6], acc, acc, per_class, acc)

    before, gold = report([0.99] * 10), report([0.99] * 6 + [0.0] + [0.99] * 3)
    after = report([0.99] * 3 + [0.995, 0.99, 0.97, 0.0] + [0.99] * 3)
    lines = lesson.result_text(before, after, gold, 0.0512).splitlines()
    assert lines[-3:] == [
        "class 3: 99.50 %, class 6: 0.00 %",
        "largest drop on another class below both the original and the retrained model: 2.00 points (class 5)",
        "share of the conv and linear weights changed: 5.12 %",
    ]

"""Lesson 01's helpers on tiny data: the freezing probe Q2's check reads, and the texts the notebook prints."""

from dataclasses import replace
from functools import partial

import pytest
import torch
from conftest import TINY

from unlearnlab.data import TensorData, class_splits, make_loader
from unlearnlab.lessons import relabel_freeze as lesson
from unlearnlab.methods.relabel import freeze_all_but
from unlearnlab.metrics import UnlearningReport, js_divergence
from unlearnlab.models import build_model


def _report(per_class: list[float]) -> UnlearningReport:
    acc = sum(per_class) / len(per_class)
    return UnlearningReport(per_class[6], acc, acc, per_class, acc)


def test_the_probe_leaves_frozen_parameters_bit_identical_and_trains_the_head(small_train):
    torch.manual_seed(0)
    model = build_model("cnn_bn")
    probe = lesson.probe_freezing(partial(freeze_all_but, trainable=["fc3"]), model, small_train, 0, "cpu", 128)
    assert sorted(probe.trainable) == ["fc3.bias", "fc3.weight"]
    assert len(probe.frozen_before) == len(list(model.parameters())) - 2
    assert all(torch.equal(probe.after[n].detach(), p) for n, p in probe.frozen_before.items())
    assert not torch.equal(probe.model.fc3.weight.detach(), probe.head_before)
    assert all(p.requires_grad for p in model.parameters())  # the original is not touched


def test_relabelling_moves_every_6_into_class_3(small_train, mnist_test):
    splits = class_splits([6], small_train, mnist_test.subset(slice(0, 50)))
    relabelled = lesson.relabelled_train(splits)
    before = small_train.class_counts()
    after = before.copy()
    after[3], after[6] = before[3] + before[6], 0
    assert relabelled.class_counts() == after
    assert lesson.class_counts_text(splits, relabelled).splitlines() == [
        f"images per class before: {before}",
        f"images per class after:  {after}",
    ]


def test_the_results_text_names_the_largest_drop_below_both_references():
    before, gold = _report([0.99] * 10), _report([0.99] * 6 + [0.0] + [0.99] * 3)
    after = _report([0.99] * 5 + [0.95, 0.0] + [0.99] * 3)  # class 5 falls 4 points below both
    text = lesson.results_text(before, after, gold)
    assert text.splitlines()[0] == "| model | forget % | retain % | test % | relabelled % |"
    assert text.endswith("below both the original and the retrained model: 4.00 points (class 5)")


def test_the_distances_are_the_js_divergence_on_the_test_6s(mnist_test):
    torch.manual_seed(0)
    model, unlearned, gold = build_model("cnn"), build_model("cnn"), build_model("cnn")
    test = mnist_test.subset(slice(0, 200))
    splits = class_splits([6], TensorData(test.X, test.y), test)
    lines = lesson.distances_text(model, unlearned, gold, splits, "cpu").splitlines()
    expected = js_divergence(unlearned, gold, make_loader(splits.test_forget), "cpu")
    assert lines[1] == f"relabel + frozen  JS divergence to the retrained model on test 6s: {expected:.3f}"
    assert lines[0].startswith("original          JS divergence")


QUICK = replace(TINY, name="quick")  # the quick profile's budget and settings, on tiny data


def test_finetune_trains_only_the_chosen_layers_and_keeps_the_original(small_train, mnist_test):
    torch.manual_seed(0)
    model = build_model("cnn_bn")
    splits = class_splits([6], small_train, mnist_test.subset(slice(0, 50)))
    result = lesson.finetune(model, splits, QUICK, trainable=["fc2", "fc3"], num_epochs=1, seed=0, device="cpu")
    changed, total = lesson.changed_entries(result.model, model)
    fc_size = sum(p.numel() for n, p in model.named_parameters() if n.startswith(("fc2.", "fc3.")))
    assert 0 < changed <= fc_size and total == sum(p.numel() for p in model.parameters())
    assert lesson.changed_entries(result.model, model, ["conv1.weight", "fc1.weight"])[0] == 0
    assert lesson.changed_entries(model, build_model("cnn_bn"))[0] > 0.99 * total  # a new model changes all


def test_finetune_refuses_epochs_beyond_the_budget(small_train, mnist_test):
    splits = class_splits([6], small_train, mnist_test.subset(slice(0, 50)))
    too_many = lesson.BUDGETS["quick"].max_epochs + 1
    with pytest.raises(ValueError, match=f"num_epochs must be 1 to {too_many - 1}"):
        lesson.finetune(
            build_model("cnn_bn"), splits, QUICK, trainable=["fc3"], num_epochs=too_many, seed=0, device="cpu"
        )


def test_the_targets_text_renders_the_bars_and_the_budget():
    text = lesson.targets_text(QUICK)
    assert "accuracy on the modified labels    >= 98.50 %" in text
    assert text.endswith(
        "budget: at most 5 % of the network's parameters changed, at most 2 epochs over the relabelled training set"
    )


def test_the_layer_sizes_add_up_to_the_model():
    lines = lesson.layer_sizes_text(build_model("cnn_bn")).splitlines()
    assert lines[0] == "conv1       320 parameters ( 0.07 %)"
    assert sum(int(line.split()[1]) for line in lines) == 429_706


def test_the_reference_text_names_the_package_settings():
    assert lesson.reference_text(QUICK) == "reference run: trainable ['fc3'], 1 epoch(s)"

"""Lesson 02's helpers on tiny data: the untouched-weights test, the mask table and one run of the recipe."""

import torch

from unlearnlab.data import class_splits
from unlearnlab.lessons import penalty_loss as lesson
from unlearnlab.methods.base import clone
from unlearnlab.methods.penalty import Config
from unlearnlab.methods.saliency import layer_masks
from unlearnlab.metrics import UnlearningReport
from unlearnlab.models import build_model


def test_unchosen_untouched_sees_a_change_outside_the_mask_only():
    torch.manual_seed(0)
    model = build_model("cnn")
    masks = {"fc3.weight": torch.zeros_like(model.fc3.weight, dtype=torch.bool)}
    masks["fc3.weight"][0, 0] = True
    edited = clone(model)
    with torch.no_grad():
        edited.fc3.weight[0, 0] += 1.0  # chosen: allowed
    assert lesson.unchosen_untouched(model, edited, masks)
    with torch.no_grad():
        edited.fc3.weight[1, 0] += 1.0  # not chosen
    assert not lesson.unchosen_untouched(model, edited, masks)
    other = clone(model)
    with torch.no_grad():
        other.conv1.bias += 1.0  # a parameter with no mask at all
    assert not lesson.unchosen_untouched(model, other, masks)


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
    lines = lesson.result_text(before, after, gold, True).splitlines()
    assert lines[-3:] == [
        "class 3: 99.50 %, class 6: 0.00 %",
        "largest drop on another class below both the original and the retrained model: 2.00 points (class 5)",
        "unchosen weights bit-identical to the original: True",
    ]

"""Lesson 06: the memorising recipe's original and retrained models (cached like the MNIST ones), and the helpers
the notebook calls, on tiny data and synthetic reports: the texts it prints, Q2's check inputs, the recorded keys."""

import ast
import json
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
import torch

from unlearnlab import zoo
from unlearnlab.config import FULL, QUICK, Profile
from unlearnlab.data import concat, load_dataset, make_loader, stratified_subset
from unlearnlab.lessons import mia_pruning as lesson
from unlearnlab.methods import pruning
from unlearnlab.methods.base import Cost, UnlearningResult
from unlearnlab.metrics import Band
from unlearnlab.mia import MembershipReport, attack_rates, threshold_attack
from unlearnlab.models import build_model
from unlearnlab.training import fit, seed_everything

TINY_RECIPE = lesson.MemorisingRecipe(model="mlp", train_subset=60, num_epochs=2, batch_size=16)
ROOT = Path(__file__).resolve().parents[1]

# ----------------------------------------------------------------------------------------------------------
# The setting: the memorising recipe's zoo models


def test_the_mnist_models_keep_their_cache_keys():
    # the hashes of version 1's specs, from before the Fashion-MNIST fields were added: cached files stay valid
    assert zoo.TrainSpec.from_profile("cnn_bn", QUICK).key() == "cc6d7cb63d741821"
    assert zoo.TrainSpec.from_profile("cnn_bn", QUICK, exclude_classes=(6,)).key() == "a8cadef81258ea1b"
    keys = {lesson.memorising_spec(r, s).key() for r in (False, True) for s in (0, 1)}
    assert len(keys) == 4 and zoo.TrainSpec.from_profile("cnn_bn", QUICK).key() not in keys


def test_specs_per_profile_are_the_original_then_the_retrained_seeds():
    specs = lesson.memorising_specs(QUICK)
    assert [(s.exclude_random, s.seed) for s in specs] == [(0.0, 0), (0.1, 0), (0.1, 1), (0.1, 2)]
    assert len(lesson.memorising_specs(FULL)) == 1 + len(lesson.RETRAINED_SEEDS["full"]) >= 4
    assert {(s.dataset, s.split_seed, s.model) for s in specs} == {("fashion_mnist", 0, "cnn")}
    assert lesson.LESSON.zoo_specs(QUICK) == specs
    with pytest.raises(KeyError, match="no entry for profile 'tiny'"):
        lesson.memorising_specs(Profile("tiny", 600, 1, 64, 3e-3, 1))


def _by_hand(data, seed):
    seed_everything(seed)
    model = build_model("mlp")
    loader = make_loader(data, TINY_RECIPE.batch_size, shuffle=True, seed=seed)
    fit(model, loader, num_epochs=2, lr=TINY_RECIPE.lr, device="cpu", lr_schedule="onecycle")
    return model


def test_retrained_and_original_models_are_trained_on_the_splits_data(tmp_path, monkeypatch):
    monkeypatch.setenv("UNLEARNLAB_CACHE", str(tmp_path))
    splits = lesson.memorising_splits(TINY_RECIPE)
    assert len(splits.forget) == 6 and len(splits.retain) == 54 and len(splits.test) == 10_000
    retrained = zoo.get_spec(lesson.memorising_spec(True, 1, TINY_RECIPE), "cpu")
    reference = _by_hand(splits.retain, seed=1)  # the same data in the same order as the split's retain set
    assert all(
        torch.equal(a, b) for a, b in zip(retrained.model.state_dict().values(), reference.state_dict().values())
    )
    original = zoo.get_spec(lesson.memorising_spec(False, 0, TINY_RECIPE), "cpu").model
    subset = stratified_subset(load_dataset("fashion_mnist"), 60, seed=0)  # forget + retain, in subset order
    assert sorted(subset.y.tolist()) == sorted(concat(splits.retain, splits.forget).y.tolist())
    reference = _by_hand(subset, seed=0)
    assert all(torch.equal(a, b) for a, b in zip(original.state_dict().values(), reference.state_dict().values()))
    again = zoo.get_spec(lesson.memorising_spec(False, 0, TINY_RECIPE), "cpu")  # loaded from the cache
    assert again.path.is_file() and all(
        torch.equal(a, b) for a, b in zip(original.state_dict().values(), again.model.state_dict().values())
    )


# ----------------------------------------------------------------------------------------------------------
# Texts and studies, on synthetic reports


def _report(
    mia: float, retain: float = 0.9, forget: float = 0.8, test: float = 0.7, auc: float = 0.6
) -> MembershipReport:
    return MembershipReport(mia, auc=auc, retain_acc=retain, forget_acc=forget, test_acc=test)


TARGETS = lesson.Targets(Band(0.46, 0.54), Band(0.48, 0.52), 0.94, 0.82, 0.7)


def _models(gold_mias=(0.50, 0.52, 0.48)) -> lesson.MemorisingModels:
    net = build_model("mlp")
    gold = [_report(m, 0.96, 0.86, 0.84, auc) for m, auc in zip(gold_mias, (0.50, 0.51, 0.49))]
    splits = None  # the texts read no data
    return lesson.MemorisingModels(
        splits, net, 80.0, [net] * 3, (0, 1, 2), [70.0, 72.0, 74.0], _report(0.56, auc=0.55), gold, TARGETS
    )


def test_a_row_lines_up_under_the_header():
    line = lesson.row("original", _report(0.5625, 0.981, 1.0, 0.8712), 86.04)
    assert line == f"{'original':34s}  0.562  0.600   98.10  100.00   87.12      86.0"
    assert len(line) == len(lesson.HEADER)
    assert lesson.row("x", _report(0.5)).endswith(" ")  # no seconds: an empty column


def test_the_models_table_gives_the_spread_the_band_and_the_gap():
    models = _models()
    lines = models.table().splitlines()
    assert lines[0] == lesson.HEADER and lines[1].startswith("original") and lines[1].endswith("80.0")
    assert [line[:20].strip() for line in lines[2:5]] == [f"retrained, seed {s}" for s in (0, 1, 2)]
    assert lines[4].endswith("74.0") and lines[5] == ""
    assert lines[6] == "retrained over 3 seeds: simple_mia 0.500 +- 0.020, threshold AUC 0.500 +- 0.010"
    assert lines[7] == "original - retrained mean: simple_mia +0.060, threshold AUC +0.050"
    summary = (
        "simple_mia in [0.460, 0.540], threshold AUC in [0.480, 0.520], retain accuracy >= 94.00 %, "
        "test accuracy >= 82.00 %, weight similarity with the original >= 0.700"
    )
    assert lines[8] == f"targets (each band: the retrained range widened by the metric's noise): {summary}"
    assert models.retrain_seconds == 72.0 and models.band == (0.46, 0.54)
    assert models.unlearned_table(_report(0.51)).splitlines()[2] == f"targets: {summary}"


def test_the_loss_study_reads_medians_rates_and_roc():
    member, nonmember = np.array([1e-4, 1e-3, 0.5]), np.array([0.01, 0.1, 1.0, 2.0])
    study = lesson.LossStudy({"original": (member, nonmember)}, {"original": threshold_attack(member, nonmember)})
    assert study.summary() == "original: median loss, members 1.00e-03, non-members 5.50e-01"
    threshold = study.median_threshold()
    assert threshold == 0.55 and attack_rates(member, nonmember, threshold) == (1.0, 0.5)
    assert study.rates(threshold) == "threshold 0.55: TPR 1.000, FPR 0.500"
    # AUC: 10 of the 12 (member, non-member) pairs have the member's loss lower; at FPR 0, 2 of 3 members caught
    assert study.roc_summary() == "original: AUC 0.833, TPR at 0.1 % FPR 0.667"


def test_the_pruning_texts_count_the_weights_and_the_zeros():
    model = build_model("cnn")
    assert lesson.describe_weights(model).startswith("428,960 Conv + Linear weights; share per layer: ")
    assert "fc1 0.936" in lesson.describe_weights(model)
    text = lesson.describe_pruned(model, 0.9)
    assert text.startswith("sparsity 0.9000; per layer: conv1 ") and len(text.split(", ")) == 5
    assert pruning.sparsity(model) == 0.0  # the model itself is left unpruned


def test_the_sweep_sizes_per_profile_and_its_table():
    assert lesson.SWEEPS["quick"] == lesson.SweepSizes((0.9, 0.95, 0.98), 1)
    assert lesson.SWEEPS["full"].num_epochs == pruning.CONFIGS["full"].num_epochs
    assert set(lesson.SWEEPS) == set(lesson.BARS) == set(lesson.RETRAINED_SEEDS)
    sweep = lesson.SparsitySweep((0.9,), [_report(0.55, test=0.8)], [_report(0.52, 0.95, 0.8, 0.85)])
    assert sweep.table() == (
        "sparsity 0.90: one-shot MIA 0.550, AUC 0.600 (test 80.0 %); pruned + fine-tuned MIA 0.520, AUC 0.600 "
        "(retain 95.0 %, test 85.0 %)"
    )


def _comparison() -> lesson.MethodComparison:
    models = _models()
    reports = {  # fine-tune: in both bands; dummy labels: MIA in band, AUC below; pruning: retain under its floor
        "fine-tune": _report(0.53, 0.95, 0.5, 0.83, auc=0.51),
        "gradient ascent": _report(0.40, 0.95, 0.5, 0.83, auc=0.45),
        lesson.DUMMY: _report(0.505, 0.95, 0.5, 0.83, auc=0.47),
        "l1-sparse": _report(0.50, 0.95, 0.5, 0.83, auc=0.505),
        lesson.PRUNE: _report(0.51, 0.93, 0.5, 0.83, auc=0.50),
    }
    results = {name: UnlearningResult(models.original, Cost(seconds=7.2)) for name in reports}  # similarity 1
    results["l1-sparse"] = UnlearningResult(build_model("mlp"), Cost(seconds=7.2))  # a fresh model: about 0
    return lesson.MethodComparison(models, results, reports)


def test_the_methods_table_marks_a_method_meeting_q3_only_when_every_condition_holds():
    comparison = _comparison()
    assert comparison.ratios["l1-sparse"] == pytest.approx(0.1)
    lines = comparison.table().splitlines()
    assert lines[0] == lesson.HEADER + "  time ratio" and lines[2].endswith("72.0")  # retrained: the mean time
    verdicts = {line[:34].strip(): line.rsplit("(", 1)[1] for line in lines[5:]}
    assert verdicts == {
        "fine-tune": "meets Q3)",
        "gradient ascent": "misses Q3)",
        lesson.DUMMY: "misses Q3)",  # its simple_mia is inside, its AUC below the band
        "l1-sparse": "misses Q3)",  # every score inside, but its weights are not the original's
        lesson.PRUNE: "misses Q3)",  # both attacks inside, its retain accuracy 1 point under the floor
    }
    summary = comparison.summary_markdown()
    assert "| retrained (3 seeds) | 0.500 ± 0.020 | 0.500 | 96.0 | 84.0 | 1 |" in summary
    assert "Closest to the retrained models' threshold AUC: **prune, then fine-tune** (0.500)." in summary
    assert "Meeting every target of Q3: fine-tune." in summary


def test_the_recorded_values_are_what_the_notebook_records_and_the_report_reads():
    recorded = lesson.recorded_values(
        lesson.MnistLeak(_report(0.5), 3000), _comparison(), _report(0.57, 0.93, 0.5, 0.83, auc=0.47)
    )
    assert recorded.unlearned_mia_off_band == pytest.approx(0.03)
    assert recorded.unlearned_auc == 0.47 and recorded.unlearned_auc_off_band == pytest.approx(0.01)
    assert recorded.unlearned_retain_drop == pytest.approx(3.0) and recorded.unlearned_test_drop == pytest.approx(1.0)
    assert recorded.retrained_mia == pytest.approx(0.5) and recorded.prune_time_ratio == pytest.approx(0.1)
    names = {f.name for f in fields(lesson.Recorded)}
    headline_keys = {k for h in lesson.HEADLINES for k in (h.key, h.retrained) if k}
    assert headline_keys <= names
    cells = json.loads((ROOT / "solutions" / "06_mia_pruning.ipynb").read_text())["cells"]
    calls = [
        node
        for cell in cells
        if cell["cell_type"] == "code" and "record(" in "".join(cell["source"])
        for node in ast.walk(ast.parse("".join(cell["source"])))
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "record"
    ]
    assert {kw.arg: ast.unparse(kw.value) for kw in calls[0].keywords} == {name: f"v.{name}" for name in names}


def test_weight_similarity_is_the_cosine_of_all_parameters():
    a, b = torch.nn.Linear(2, 1), torch.nn.Linear(2, 1)
    with torch.no_grad():
        a.weight.copy_(torch.tensor([[1.0, 0.0]])), a.bias.fill_(0.0)
        b.weight.copy_(torch.tensor([[1.0, 1.0]])), b.bias.fill_(0.0)
    assert lesson.weight_similarity(a, b) == pytest.approx(1 / 2**0.5)
    assert lesson.weight_similarity(a, a) == pytest.approx(1.0)


@pytest.mark.parametrize("threads", [1, 2])
def test_the_reference_answer_meets_q3_under_one_and_two_threads_and_two_seeds(threads):
    # the zoo's cached quick models (trained once); the answer's own training runs under `threads`, for two seeds
    models = lesson.load_models(QUICK, "cpu")
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for seed in (0, 1):
            model = lesson.reference_run(models, QUICK, seed, "cpu").model
            failed = [f"{c.text} ({c.detail})" for c in lesson.conditions(model, QUICK, "cpu") if not c.ok]
            assert not failed, f"seed {seed}, {threads} thread(s): {failed}"
    finally:
        torch.set_num_threads(before)

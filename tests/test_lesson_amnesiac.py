"""Lesson 07's setting, studies and figure (unlearnlab.lessons.amnesiac), on a tiny ledger-trained CNN."""

import ast
import json
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest
import torch
from matplotlib.figure import Figure
from torch import nn

from unlearnlab.config import FULL, QUICK
from unlearnlab.lessons import amnesiac as lesson
from unlearnlab.methods import amnesiac as method
from unlearnlab.methods import ledger as L
from unlearnlab.metrics import Band
from unlearnlab.mia import auc_noise
from unlearnlab.training import seed_everything

ROOT = Path(__file__).resolve().parents[1]
TINY_SETUP = L.LedgerSetup(others=600, forget_size=40, num_epochs=1, batch_size=32, held_out=40, test_subset=200)


@pytest.fixture(scope="module")
def tiny_run():
    """The course CNN on 601 other images (a stratified 600) and 40 sixes, one epoch: 21 steps, 3 recorded."""
    return L.train_with_ledger(TINY_SETUP, "cpu")


@pytest.fixture
def tiny_setting(monkeypatch):
    """The quick profile's setting with a retain sample the tiny run can give (100 of its 600 images)."""
    monkeypatch.setitem(lesson.SETTINGS, "quick", lesson.Setting(TINY_SETUP, retain_sample=100, repair_on_sample=True))


def _outcome(name: str, retain: float, forget: float, mia: float, auc: float = 0.5) -> lesson.Outcome:
    return lesson.Outcome(name, 0.5, forget, retain, mia, auc, 0, 1.0)


def _solution_cell(cell_id: str) -> str:
    cells = json.loads((ROOT / "solutions" / "07_amnesiac.ipynb").read_text())["cells"]
    return "".join(next(c for c in cells if c.get("id") == cell_id)["source"])


def test_ledger_keys_stay_those_of_the_cached_runs():
    keys = {name: setting.ledger.key() for name, setting in lesson.SETTINGS.items()}
    assert keys == {"quick": "b21e7c019bbe7838", "full": "1d42e0a80d3e2719"}


def test_ledger_setups_are_three_architectures_with_sgd_and_the_cnn_with_adam():
    setups = lesson.ledger_setups(FULL)
    assert list(setups) == ["cnn", "lenet5", "mlp", "cnn, Adam"]
    assert [s.model for s in setups.values()] == ["cnn", "lenet5", "mlp", "cnn"]
    assert [(s.optimizer, s.lr) for s in setups.values()] == [("sgd", 0.1)] * 3 + [("adam", 1e-3)]
    assert {(s.others, s.num_epochs, s.test_subset) for s in setups.values()} == {(None, 4, None)}
    with pytest.raises(KeyError, match="no entry for profile 'tiny'"):
        lesson.ledger_setups(QUICK.with_(name="tiny"))


def test_neither_the_lesson_nor_the_notebooks_setup_hands_out_a_reference_of_a_function_question():
    """Q1's and Q2's references are the method's decode and subtract_updates: no public name of the lesson and no
    name the solution's setup cell imports is one of them or a module (the setup imports none: named lesson
    functions only, Q3's unlearn among them)."""
    references = {q.reference for q in lesson.LESSON.questions.values() if hasattr(q, "reference")}
    assert references == {method.decode, method.subtract_updates}

    def exposes(value: object) -> bool:
        held = [value]
        if isinstance(value, ModuleType):
            held += [getattr(value, name, None) for name in ("decode", "subtract_updates")]
        return any(h is r for h in held for r in references)

    assert not [name for name, value in vars(lesson).items() if not name.startswith("_") and exposes(value)]
    tree = ast.parse(_solution_cell("setup"))
    imports = [node for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom)]
    namespace: dict = {}
    exec(compile(ast.Module(imports, type_ignores=[]), "setup", "exec"), namespace)
    assert not [name for name, value in namespace.items() if not name.startswith("__") and exposes(value)]
    assert not [n for n, v in namespace.items() if isinstance(v, ModuleType) and n.startswith("amnesiac")]
    assert namespace["unlearn"] is method.unlearn and namespace["Config"] is method.Config  # what Q3 calls


def test_relative_distance_is_zero_at_the_target_and_one_at_the_start():
    start, target, halfway = nn.Linear(2, 1), nn.Linear(2, 1), nn.Linear(2, 1)
    with torch.no_grad():
        for s, t, h in zip(start.parameters(), target.parameters(), halfway.parameters()):
            s.fill_(1.0)
            t.fill_(3.0)
            h.fill_(2.0)
    assert lesson.relative_distance(target, target, start) == 0.0
    assert lesson.relative_distance(start, target, start) == 1.0
    assert lesson.relative_distance(halfway, target, start) == 0.5
    with pytest.raises(ValueError, match="same weights"):
        lesson.relative_distance(halfway, target, target)


@pytest.mark.parametrize(("forget", "held_out", "half_width"), [(40, 600, 0.5 / 8**0.5), (45, 41, 0.5 / 3)])
def test_membership_bands_are_the_retrained_spread_plus_each_views_noise(forget, held_out, half_width):
    """MIA score: one split's bound on m items per group (m = 40: ceil(0.2 * 40) = 8; m = 41: ceil(8.2) = 9);
    threshold AUC: two Hanley-McNeil standard errors on every forget and held-out image."""
    run = SimpleNamespace(data=SimpleNamespace(splits=SimpleNamespace(forget=range(forget)), held_out=range(held_out)))
    bands = lesson.membership_bands(run, [lesson.Membership(0.52, 0.49), lesson.Membership(0.50, 0.53)])
    assert bands.mia.low == pytest.approx(0.50 - half_width, abs=1e-12)
    assert bands.mia.high == pytest.approx(0.52 + half_width, abs=1e-12)
    margin = 2 * auc_noise(forget, held_out)
    assert bands.auc.low == pytest.approx(0.49 - margin) and bands.auc.high == pytest.approx(0.53 + margin)


def test_band_conditions_fail_each_side_with_its_own_hint():
    band = Band(0.48, 0.56)
    below, above = lesson.band_conditions("threshold AUC", 0.45, band)
    assert not below.ok and above.ok and below.text == "threshold AUC not below the retrained band"
    assert below.detail == f"reached 0.450, bar ≥ 0.480; {lesson.BAND_HINTS['threshold AUC', 'low']}"
    assert "over-forgetting" in below.detail and above.detail == "reached 0.450, bar ≤ 0.560"  # no hint on a pass
    below, above = lesson.band_conditions("MIA score", 0.60, band)
    assert below.ok and not above.ok and "undo more" in above.detail
    assert all(c.ok for c in lesson.band_conditions("MIA score", 0.5, band))


def test_best_partial_and_the_mia_report():
    retrained = _outcome("retrained", 0.98, 0.0, 0.50, 0.50)
    curve = [
        _outcome("k = 1", 0.6, 0.0, 0.51, 0.40),
        _outcome("k = 0.01", 0.97, 0.005, 0.9, 0.9),
        _outcome("k = 0.001", 0.98, 0.3, 0.5),
    ]
    assert lesson.best_partial(curve, retrained).name == "k = 0.01"  # 0.01 + 0.005 beats 0.38 and 0.3
    run = SimpleNamespace(data=SimpleNamespace(splits=SimpleNamespace(forget=range(40)), held_out=range(600)))
    margin = 2 * auc_noise(40, 600)
    assert lesson.mia_report(run, retrained, curve[:2]).splitlines() == [
        "MIA score: 10 splits of 80 images, retrained band 0.323 .. 0.677",
        f"threshold AUC: 40 forgotten against 600 held-out images, retrained band {0.5 - margin:.3f} .. "
        f"{0.5 + margin:.3f}",
        f"{'k = 1':38s} MIA score 0.510 (inside), threshold AUC 0.400 (below)",
        f"{'k = 0.01':38s} MIA score 0.900 (above), threshold AUC 0.900 (above)",
    ]


def test_outcome_table_shows_percent_and_megabytes():
    table = lesson.outcome_table([lesson.Outcome("top 1 %", 0.125, 0.0042, 0.98765, 0.512, 0.4871, 1_234_567, 2.34)])
    assert table.splitlines()[-1] == "| top 1 % | 1.235 | 12.50 | 0.42 | 98.77 | 0.512 | 0.487 | 2.3 |"


def test_describe_run_and_storage_bill(tiny_run):
    described = lesson.describe_run(tiny_run).splitlines()
    assert described[1] == (
        "training images: 601 of other classes + 40 of class 6 (the forget set); 40 training 6s held out"
    )
    assert described[2].startswith("recorded steps: 3 of 21 (14.3 %), training ")
    bill = lesson.storage_bill(tiny_run, {"tiny": tiny_run}).splitlines()
    assert len(bill) == 10 + 2  # one line per parameter tensor of the course CNN, then the totals
    assert bill[-2] == "one step: 1.72 MB; the ledger: 3 steps, 5.2 MB"  # 429,258 float32 weights per step
    assert bill[-1] == "tiny      : 1.72 MB per step, 5.2 MB in all"


def test_undo_study_repairs_over_the_retain_sample(tiny_run, tiny_setting):
    study = lesson.undo_study(tiny_run, QUICK, "cpu", seed=0)
    assert [o.name for o in study.outcomes] == [
        "full ledger, no repair",
        "full ledger + 1 epoch repair",
        "top 0.1 % + 1 epoch repair",
    ]
    sample = lesson.retain_sample(tiny_run.data.splits, 100, seed=0)
    assert study.repair_images == len(sample.retain) and 90 <= study.repair_images <= 110
    assert sample.forget is tiny_run.data.splits.forget
    assert study.full.stored_bytes == study.repaired.stored_bytes == tiny_run.ledger.nbytes
    assert study.partial_repaired.stored_bytes == method.partial_ledger(tiny_run.ledger, 0.001).nbytes


def test_sweeps_layers_and_gaps_name_and_cost_their_rows(tiny_run):
    sweeps = lesson.sweep_study({"cnn": tiny_run}, "cpu", fractions={"cnn": (1.0, 0.01)})
    assert [o.name for o in sweeps.curves["cnn"]] == ["k = 1", "k = 0.01"]
    assert sweeps.curves["cnn"][1].stored_bytes == method.partial_ledger(tiny_run.ledger, 0.01).nbytes
    assert sweeps.retrained["cnn"].name == "retrained"
    assert isinstance(lesson.plot_tradeoff(sweeps.curves, sweeps.retrained, "tiny"), Figure)
    layers = lesson.layer_study(tiny_run, "cpu")
    assert [o.name for o in layers] == [f"{name}, k = 1" for name in ("conv1", "conv2", "fc1", "fc2", "fc3")]
    assert layers[-1].stored_bytes == 3 * (64 * 10 + 10) * 6  # fc3 whole, 3 steps, 6 bytes per kept entry
    gaps = lesson.undo_gaps({"cnn": tiny_run, "cnn, Adam": tiny_run}, "cpu")
    assert len(gaps.rows) == 6 and gaps.rows[1].name == "cnn: full undo"
    assert gaps.ratios["cnn"] == gaps.ratios["cnn, Adam"] > 0
    assert gaps.text().splitlines()[0] == (
        f"cnn: distance of the undone model to the retrained one, relative to the original's: {gaps.ratios['cnn']:.2f}"
    )


def test_partial_update_study_runs_both_methods_in_full_and_in_part(tiny_run, tiny_setting):
    rows = lesson.partial_update_study(tiny_run, QUICK, "cpu", seed=0)
    assert [o.name for o in rows] == [
        f"{m}, {part}"
        for m in ("label flipping", "gradient ascent")
        for part in ("full update", "top 10 % per layer", "top 1 % per layer")
    ]


def test_explore_reports_the_measured_partial_and_full_undo(tiny_run):
    text = lesson.explore(tiny_run, 0.05, device="cpu")
    full, partial = lesson.sweep(tiny_run, [1.0, 0.05], device="cpu")
    assert f"| top 5 % per layer | {partial.stored_bytes / 1e6:.2f} MB | {100 * partial.forget_acc:.2f} |" in text
    assert f"| full ledger | {full.stored_bytes / 1e6:.2f} MB |" in text
    assert f"{full.stored_bytes / partial.stored_bytes:.1f} times smaller" in text


def test_q3_conditions_catch_the_original_a_dense_change_and_a_ledger_over_budget(tiny_run):
    run = tiny_run
    assert lesson.storage_budget(run, QUICK) == int(0.001 * run.ledger.nbytes)
    texts = {c.text: c for c in lesson.run_conditions(run.model, run, QUICK)}
    assert not texts["neither the original nor the retrained model"].ok
    budget = next(c for t, c in texts.items() if t.startswith("weights changed from the original"))
    assert budget.ok and budget.detail.startswith("reached 0.0 kB")
    full = method.unlearn(run.model, run.data.splits, method.Config(fraction=1.0), ledger=run.ledger).model
    dense = next(c for c in lesson.run_conditions(full, run, QUICK) if c.text.startswith("weights changed"))
    assert not dense.ok  # the full undo changes every weight: far over 0.1 % of the ledger
    assert lesson.changed_entries(full, run.model) > 0.5 * sum(p.numel() for p in run.model.parameters())
    fc3 = method.Config(fraction=0.5, layers=("fc3",))
    assert lesson.ledger_bytes(run, fc3) == 3 * (320 + 5) * lesson.BYTES_PER_ENTRY  # 3 steps, half of 640 and of 10
    assert lesson.ledger_bytes(run, method.Config()) == run.ledger.nbytes
    assert not lesson.budget_condition(run, method.Config(), QUICK).ok
    assert lesson.budget_condition(run, method.Config(fraction=0.0001, layers=("fc3",)), QUICK).ok


def test_q3_targets_state_the_budget_bars_and_bands(tiny_run):
    text = lesson.targets(tiny_run, QUICK)
    budget = lesson.storage_budget(tiny_run, QUICK)
    assert f"at most **{budget / 1e3:.1f} kB**, 0.1 % of the full ledger's" in text
    assert "at most 1 %" in text and "at least 95 %" in text and "threshold AUC within" in text


def _runs_on_1_and_2_threads() -> dict[int, L.LedgerRun]:
    """The quick CNN run as the lesson caches it, and trained on the other thread count (cached as well)."""
    setup = lesson.ledger_setups(QUICK)["cnn"]
    main = L.ledger_run(setup)
    return {n: main if main.threads == n else L.ledger_run(setup, threads=n) for n in (1, 2)}


@pytest.fixture(scope="module")
def runs_by_threads():
    return _runs_on_1_and_2_threads()


@pytest.mark.parametrize("seed", [0, 1])
def test_the_solutions_q3_answer_passes_on_runs_trained_on_1_and_2_threads(runs_by_threads, seed):
    """Q3's bars hold on another machine: the solution's answer cell, run for SEED 0 and 1 on the quick CNN trained
    under 1 and under 2 threads (each run with its own original and retrained model), meets every condition."""
    answer = _solution_cell("q3-answer")
    for threads, run in runs_by_threads.items():
        assert run.threads == threads
        seed_everything(seed)
        namespace = {"Config": method.Config, "unlearn": method.unlearn, "run": run, "device": "cpu"}
        namespace.update(splits=run.data.splits, ledger=run.ledger)
        exec(answer, namespace)
        conditions = lesson.run_conditions(namespace["unlearned"], run, QUICK)
        conditions.append(lesson.budget_condition(run, namespace["chosen"], QUICK))
        assert [(c.text, c.detail) for c in conditions if not c.ok] == [], f"{threads} threads, SEED {seed}"

"""unlearnlab.compare: summary scores, the noise band and a whole run on a tiny setup (untrained small models)."""

from __future__ import annotations

import copy
import json
import math
import os
import runpy
import signal
import subprocess
import sys
import time
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from scipy.spatial.distance import jensenshannon
from sklearn.metrics import accuracy_score, roc_auc_score

from unlearnlab import compare as C
from unlearnlab.cli import build_parser
from unlearnlab.compare import run as R
from unlearnlab.compare import scoring as S
from unlearnlab.config import QUICK, resolve
from unlearnlab.data import class_splits, random_splits
from unlearnlab.lessons import capstone
from unlearnlab.methods import finetune, registry
from unlearnlab.methods.base import Cost, UnlearningResult, clone
from unlearnlab.methods.ledger import Ledger
from unlearnlab.metrics import Band, activation_distance_probs, binomial_noise, pareto_front, retrained_band, tug_of_war
from unlearnlab.mia import auc_noise, simple_mia, simple_mia_noise
from unlearnlab.models import build_model


def test_tug_of_war_is_the_product_of_one_minus_the_gaps():
    assert tug_of_war([0.10, 0.90, 0.80], [0.0, 0.95, 0.85]) == pytest.approx(0.9 * 0.95 * 0.95, abs=1e-12)
    assert tug_of_war([0.0, 0.99, 0.9], [0.0, 0.99, 0.9]) == 1.0
    assert tug_of_war([1.0, 0.0, 0.0], [0.0, 1.0, 1.0]) == 0.0
    with pytest.raises(ValueError, match="as many"):
        tug_of_war([0.1, 0.2], [0.1, 0.2, 0.3])


def test_pareto_front_keeps_the_undominated_points():
    table = {
        "a": (0.10, 1.0),  # front: between d and c
        "b": (0.05, 2.0),  # off: d has the same gap for less
        "c": (0.20, 0.5),  # front: cheapest
        "d": (0.05, 1.5),  # front: the smallest gap
        "e": (0.30, 3.0),  # dominated by everything
        "f": (0.20, 0.5),  # equal to c: neither dominates the other
    }
    assert pareto_front(table) == ["a", "c", "d", "f"]
    assert pareto_front({"x": (1.0, 1.0, 1.0)}) == ["x"]
    with pytest.raises(ValueError, match="same number"):
        pareto_front({"x": (1.0,), "y": (1.0, 2.0)})


def test_the_retrained_band_by_hand():
    assert retrained_band([0.98, 0.99]) == Band(0.98, 0.99)  # retraining's own spread over seeds
    # widened on both sides by two binomial standard errors of the accuracy on 100 images
    noise = binomial_noise(0.985, 100)
    assert noise == pytest.approx(2 * math.sqrt(0.985 * 0.015 / 100))
    wide = retrained_band([0.98, 0.99], noise)
    assert (wide.low, wide.high) == pytest.approx((0.98 - noise, 0.99 + noise))
    assert retrained_band([0.01, 0.03, 0.02], floor=0.0) == Band(0.0, 0.03)  # a distance: closer is never worse
    assert retrained_band([0.97, 0.99], ceiling=1.0) == Band(0.97, 1.0)  # ToW: 1 is retraining itself
    band = retrained_band([0.975, 0.995])
    assert band.contains(0.975) and band.contains(0.995) and not band.contains(0.996) and not band.contains(0.97)
    assert band.contains(None) is None and band.contains(float("nan")) is None
    assert band.outside_by(0.985) == 0.0 and band.outside_by(0.965) == pytest.approx(0.01)
    assert band.outside_by(1.0) == pytest.approx(0.005)
    with pytest.raises(ValueError, match="at least one"):
        retrained_band([])


def test_activation_distance_probs_matches_numpy():
    gen = torch.Generator().manual_seed(0)
    p, q = torch.rand(6, 10, generator=gen).softmax(1), torch.rand(6, 10, generator=gen).softmax(1)
    np.testing.assert_allclose(
        activation_distance_probs(p, q).numpy(), np.linalg.norm(p.numpy() - q.numpy(), axis=1), rtol=1e-6
    )


# ----------------------------------------------------------------------------------------------------------
# A whole run: untrained small models, a perfect method, a method that fails on one seed, one that always fails


class AlwaysSix(torch.nn.Module):
    """Says 6 to every image: forget accuracy 100 %, far outside the retrained band."""

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return 10.0 * torch.nn.functional.one_hot(torch.full((len(X),), 6), 10).float()


def _model(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model("mlp").eval()


@pytest.fixture()
def own_cache(tmp_path, monkeypatch):
    """A cache of the test's own: the (method, seed) checkpoints of a run on untrained models stay out of the
    shared one (these tests load no zoo model)."""
    monkeypatch.setenv("UNLEARNLAB_CACHE", str(tmp_path))
    monkeypatch.delenv("UNLEARNLAB_RESUME", raising=False)
    return tmp_path


@pytest.fixture(scope="module")
def tiny_run(mnist_train, mnist_test, tmp_path_factory):
    splits = class_splits((6,), train=mnist_train.subset(slice(0, 600)), test=mnist_test.subset(slice(0, 400)))
    setups = [C.SeedSetup(s, _model(100 + s), _model(200 + s), splits) for s in (0, 1)]
    retrained = {s.seed: s.retrained for s in setups}

    def perfect(model, splits, config="quick", *, device="auto", seed=0):  # returns the retrained model itself
        return UnlearningResult(clone(retrained[seed]), Cost(seconds=2.0, stored_bytes=1000))

    def flaky(model, splits, config="quick", *, device="auto", seed=0):
        if seed == 1:
            raise RuntimeError("boom on seed 1")
        return UnlearningResult(AlwaysSix(), Cost(seconds=4.0))

    def broken(model, splits, config="quick", *, device="auto", seed=0):
        raise ValueError("always broken")

    methods = {
        name: SimpleNamespace(
            name=name, family="test", scenarios=("class",), module=SimpleNamespace(unlearn=fn), extra_inputs=()
        )
        for name, fn in (("perfect", perfect), ("flaky", flaky), ("broken", broken))
    }
    with pytest.MonkeyPatch.context() as patch:  # the checkpoints go to a cache of this module's own
        patch.setenv("UNLEARNLAB_CACHE", str(tmp_path_factory.mktemp("cache")))
        patch.delenv("UNLEARNLAB_RESUME", raising=False)
        result = C.run_compare(
            setups,
            methods,
            scenario="class",
            forget="class 6",
            retrain_seconds=8.0,
            ain=False,
            profile=QUICK,
            device=torch.device("cpu"),
        )
    return result, setups


def test_a_failing_method_keeps_its_row_and_loses_no_other(tiny_run):
    result, _ = tiny_run
    assert [r.method for r in result.rows] == ["original", "retrained", "perfect", "flaky", "broken"]
    flaky, broken = result.row("flaky"), result.row("broken")
    assert (
        flaky.seeds == [0] and list(flaky.errors) == [1] and flaky.errors[1].startswith("RuntimeError: boom on seed 1")
    )
    assert broken.failed and set(broken.errors) == {0, 1} and "always broken" in broken.errors[0]
    assert broken.mean["forget_acc"] is None and broken.inside_all is None and broken.time_ratio is None
    assert result.row("perfect").seeds == [0, 1] and not result.row("perfect").errors
    text = result.markdown()
    assert "flaky failed on seed 1: RuntimeError: boom on seed 1" in text
    assert "| broken | - |" in text


def test_scores_against_references(tiny_run):
    result, setups = tiny_run
    sets = S.EvalSets.from_splits(setups[0].splits, ain=False, profile=QUICK)
    X_f = sets.forget.X
    with torch.no_grad():
        p_orig = setups[0].original(X_f).softmax(1).double().numpy()
        p_ret = setups[0].retrained(X_f).softmax(1).double().numpy()
        acc = [
            accuracy_score(d.y.numpy(), setups[0].original(d.X).argmax(1).numpy())
            for d in (sets.forget, sets.retain, sets.test)
        ]
        ref_acc = [
            accuracy_score(d.y.numpy(), setups[0].retrained(d.X).argmax(1).numpy())
            for d in (sets.forget, sets.retain, sets.test)
        ]
        losses = [
            torch.nn.functional.cross_entropy(setups[0].original(d.X).double(), d.y, reduction="none").numpy()
            for d in (sets.forget, sets.heldout)
        ]
    original = result.row("original").per_seed[0]
    assert (original.forget_acc, original.retain_acc, original.test_acc) == pytest.approx(acc, abs=1e-6)
    assert original.js == pytest.approx(float(np.mean(jensenshannon(p_orig, p_ret, axis=1) ** 2)), rel=1e-4)
    assert original.act_dist == pytest.approx(float(np.linalg.norm(p_orig - p_ret, axis=1).mean()), rel=1e-5)
    assert original.tow == pytest.approx(float(np.prod([1 - abs(a - r) for a, r in zip(acc, ref_acc)])), abs=1e-6)
    assert original.mia == pytest.approx(simple_mia(*losses, seed=S.SPLIT_SEED), abs=1e-12)
    # threshold AUC: a lower loss is more member-like, so the members' score is minus the loss
    members = np.r_[np.ones(len(losses[0])), np.zeros(len(losses[1]))]
    assert original.auc == pytest.approx(roc_auc_score(members, -np.r_[losses[0], losses[1]]), abs=1e-12)
    assert result.row("original").time_ratio is None


def test_band_logic_on_the_tiny_run(tiny_run):
    result, setups = tiny_run
    sets = S.EvalSets.from_splits(setups[0].splits, ain=False, profile=QUICK)
    outs = [S.Outputs.of(s.retrained, sets, torch.device("cpu")) for s in setups]
    accs = np.asarray([o.accuracies() for o in outs])
    for k, metric in enumerate(S.ACCURACIES):
        n = len(getattr(sets, ("forget", "retain", "test")[k]))
        assert result.bands[metric] == retrained_band(accs[:, k], binomial_noise(float(accs[:, k].mean()), n))
    cross = [S.score(outs[0], outs[1]), S.score(outs[1], outs[0])]
    # both views of the attack, two-sided: the retrained spread widened by each view's own chance variation
    own = [S.score(o, o) for o in outs]
    n_m, n_n = len(sets.forget), len(sets.heldout)
    assert result.bands["mia"] == retrained_band([o.mia for o in own], simple_mia_noise(min(n_m, n_n)))
    assert result.bands["auc"] == retrained_band([o.auc for o in own], 2 * auc_noise(n_m, n_n))
    assert result.bands["auc"].low < min(o.auc for o in own) <= max(o.auc for o in own) < result.bands["auc"].high
    assert result.bands["js"].high == pytest.approx(max(s.js for s in cross))
    assert result.bands["tow"].low == pytest.approx(min(s.tow for s in cross))
    perfect = result.row("perfect")  # the retrained model of its own seed: every distance 0, ToW 1
    assert perfect.mean["js"] == pytest.approx(0.0, abs=1e-7) and perfect.mean["tow"] == 1.0
    assert perfect.inside_all is True and perfect.time_ratio == pytest.approx(2.0 / 8.0)
    assert perfect.mean["stored_bytes"] == 1000
    flaky = result.row("flaky")  # says 6 to everything: outside on forget accuracy
    for metric in S.BANDED:
        band = result.bands[metric]
        assert flaky.inside[metric] == (band.low <= flaky.mean[metric] <= band.high)
    assert flaky.mean["forget_acc"] == 1.0 and flaky.inside["forget_acc"] is False and flaky.inside_all is False
    retrained = result.row("retrained")  # its distance columns are the retrained-to-retrained pairs
    assert retrained.mean["js"] == pytest.approx(np.mean([s.js for s in cross]))
    assert retrained.time_ratio == 1.0


def test_quick_scores_fixed_stratified_subsamples_and_full_scores_whole_sets(mnist_train, mnist_test):
    train, test = mnist_train.subset(slice(0, 12_000)), mnist_test.subset(slice(0, 5_000))
    by_class = class_splits((6,), train=train, test=test)
    quick = S.EvalSets.from_splits(by_class, ain=False, profile=QUICK)
    assert [len(d) for d in (quick.forget, quick.retain, quick.test)] == [1_208, 1_999, 2_000]  # all 6s; ~2,000
    assert torch.equal(torch.unique(quick.retain.y), torch.unique(by_class.retain.y))  # every kept class stays
    assert quick.heldout is by_class.test_forget  # non-members: all of the forget class's test images
    again = S.EvalSets.from_splits(by_class, ain=False, profile=QUICK)
    assert torch.equal(again.retain.X, quick.retain.X)  # fixed: every model of a run sees the same images
    full = S.EvalSets.from_splits(by_class, ain=False, profile=resolve("full"))
    assert full.forget is by_class.forget and full.test is by_class.test and abs(len(full.retain) - 5_000) < 9
    randomly = S.EvalSets.from_splits(random_splits(0.25, train=train, test=test), ain=False, profile=QUICK)
    assert abs(len(randomly.forget) - 2_000) < 10 and randomly.heldout is randomly.test  # the test set


def test_json_round_trip(tiny_run, tmp_path):
    result, _ = tiny_run
    paths = C.write(result, tmp_path)
    assert [p.name for p in paths] == ["compare.json", "compare.md", "pareto.png"]
    data = json.loads(paths[0].read_text())
    assert data["bands"]["js"] == [0.0, result.bands["js"].high]
    assert data["rows"][3]["errors"] == {"1": result.row("flaky").errors[1]}
    assert paths[2].read_bytes()[:4] == b"\x89PNG"


def test_single_seed_has_no_band(mnist_train, mnist_test, own_cache):
    splits = class_splits((6,), train=mnist_train.subset(slice(0, 300)), test=mnist_test.subset(slice(0, 200)))
    result = C.run_compare(
        [C.SeedSetup(0, _model(1), _model(2), splits)],
        {},
        scenario="class",
        forget="class 6",
        retrain_seconds=1.0,
        ain=False,
        profile=QUICK,
        device=torch.device("cpu"),
    )
    assert result.bands == {} and result.row("original").inside_all is None
    assert "One seed: no noise band" in result.markdown()


def test_a_method_gets_what_the_setup_stored_and_is_skipped_without_it(mnist_train, mnist_test, own_cache):
    splits = class_splits((6,), train=mnist_train.subset(slice(0, 300)), test=mnist_test.subset(slice(0, 200)))
    original = _model(1)
    step = {name: torch.full_like(p, 1e-3) for name, p in original.named_parameters()}
    setups = [
        C.SeedSetup(0, original, _model(2), splits, stored={"ledger": Ledger([0], [step], total_steps=1)}),
        C.SeedSetup(1, _model(3), _model(4), splits),  # e.g. a zoo model: trained without a ledger
    ]
    result = C.run_compare(
        setups,
        {"amnesiac": registry.get("amnesiac")},
        scenario="class",
        forget="class 6",
        retrain_seconds=1.0,
        ain=False,
        profile=QUICK,
        device=torch.device("cpu"),
    )
    row = result.row("amnesiac")
    assert row.seeds == [0] and not row.errors and list(row.skipped) == [1]
    assert row.skipped[1].startswith("it needs the ledger recorded while the original model was trained")
    assert f"- amnesiac skipped on seed 1: {row.skipped[1]}" in result.markdown()
    assert json.loads(json.dumps(result.as_dict()))["rows"][2]["skipped"] == {"1": row.skipped[1]}
    # seed 0 ran with its stored ledger: the scores of the undo done by hand, not the original model's
    ledger = setups[0].stored["ledger"]
    undone = registry.get("amnesiac").module.unlearn(original, splits, "quick", ledger=ledger, device="cpu")
    cpu = torch.device("cpu")
    by_hand = C.Reference.of([setups[0].retrained], splits, QUICK, cpu).scores(undone.model, cpu)
    assert (row.per_seed[0].forget_acc, row.per_seed[0].js) == pytest.approx((by_hand.forget_acc, by_hand.js))
    assert row.per_seed[0].js != result.row("original").per_seed[0].js
    alone = C.run_compare(
        setups[1:],
        {"amnesiac": registry.get("amnesiac")},
        scenario="class",
        forget="",
        retrain_seconds=1.0,
        profile=QUICK,
        device=cpu,
    )
    assert alone.row("amnesiac").failed and "| skipped |" in alone.markdown()


def test_bad_input():
    with pytest.raises(ValueError, match="scenario"):
        C.run_compare([], {}, scenario="sideways", forget="", retrain_seconds=1.0, profile=QUICK, device="cpu")
    with pytest.raises(ValueError, match="no seeds"):
        C.run_compare([], {}, scenario="class", forget="", retrain_seconds=1.0, profile=QUICK, device="cpu")
    with pytest.raises(ValueError, match="scenario"):
        R.splits_for("sideways", (6,), 0.1, resolve("quick"))


def test_cli_parses_compare():
    args = build_parser().parse_args(
        ["compare", "--scenario", "random", "--methods", "finetune", "salun", "--seeds", "3", "--out", "x"]
    )
    assert (args.scenario, args.methods, args.seeds, args.out, args.profile) == (
        "random",
        ["finetune", "salun"],
        3,
        "x",
        "quick",
    )


def test_summary_lines_read_the_tiny_table(tiny_run):
    result, _ = tiny_run
    lines = C.summary_lines(result)
    assert lines[0] == "Closest to retraining by ToW: **perfect** (ToW 1.0000) at 0.25x the retraining time."
    assert lines[1] == "Cheapest: **perfect** at 0.25x the retraining time (ToW 1.0000)."
    assert lines[2] == "Inside the retrained band on every metric: **perfect**."


def _masked(model: torch.nn.Module, push: float, sharpen: float = 1.0) -> torch.nn.Module:
    """Logit masking: a copy of ``model`` whose class-6 output bias is pushed down by ``push``, nothing unlearned;
    ``sharpen`` > 1 also scales the output layer and zeroes class 6's weights (surer on the other digits)."""
    masked = copy.deepcopy(model)
    with torch.no_grad():
        if sharpen != 1.0:
            masked.fc3.weight.mul_(sharpen)
            masked.fc3.bias.mul_(sharpen)
            masked.fc3.weight[6] = 0.0
        masked.fc3.bias[6] -= push
    return masked


def test_capstone_q3_fails_logit_masking_and_passes_a_tuned_method():
    """Q3 on the quick profile's cached models: pushing class 6's output bias down (the accuracies of retraining,
    nothing unlearned) fails on the forget set's output distribution; the solution's tuned fine-tune passes."""
    profile, device = resolve("quick"), torch.device("cpu")
    setup = capstone.q3_setup(profile, device)
    for push in (1e4, 20.0):
        failed = [c.text for c in capstone.conditions(_masked(setup.original, push), profile, device) if not c.ok]
        assert any(text.startswith("forget-set output entropy not above") for text in failed), failed
    # sharpened, the masked model's entropy lands in the band; its outputs are still not the retrained model's
    failed = [c.text for c in capstone.conditions(_masked(setup.original, 10.0, 2.0), profile, device) if not c.ok]
    assert len(failed) == 1 and failed[0].startswith("the forget set's outputs as close to the retrained"), failed
    # the solution's answer: one epoch at the training's learning rate, one at a tenth of it
    first = finetune.unlearn(setup.original, setup.splits, finetune.Config(1, profile.lr), device=device, seed=0)
    tuned = finetune.unlearn(first.model, setup.splits, finetune.Config(1, profile.lr / 10), device=device, seed=1)
    assert [c for c in capstone.conditions(tuned.model, profile, device) if not c.ok] == []


# ----------------------------------------------------------------------------------------------------------
# Resuming: a run killed after its first (method, seed) pair continues from the pairs it finished

RESUMABLE_RUN = """
import functools, json, sys, time
from dataclasses import replace
from dataclasses import replace
from types import SimpleNamespace

import torch

from unlearnlab import compare as C
from unlearnlab.config import QUICK
from unlearnlab.data import class_splits, load_mnist
from unlearnlab.methods import registry
from unlearnlab.models import build_model


def model(seed):
    torch.manual_seed(seed)
    return build_model("mlp").eval()


def slowed(spec, pause):  # a pause after each pair, so that a kill lands between two pairs
    def unlearn(*args, **kwargs):
        result = spec.module.unlearn(*args, **kwargs)
        time.sleep(pause)
        return result

    module = SimpleNamespace(Config=spec.module.Config, CONFIGS=spec.module.CONFIGS, unlearn=unlearn)
    return replace(spec, module=module)


@functools.cache
def splits():
    train, test = load_mnist(train=True, download=False), load_mnist(train=False, download=False)
    return class_splits((6,), train=train.subset(slice(0, 600)), test=test.subset(slice(0, 400)))


def run(pause):
    setups = [C.SeedSetup(s, model(100 + s), model(200 + s), splits()) for s in (0, 1)]
    methods = {name: slowed(registry.get(name), pause) for name in ("gradient_ascent", "relabel")}
    return C.run_compare(
        setups, methods, scenario="class", forget="class 6", retrain_seconds=8.0, profile=QUICK, device="cpu"
    )


if __name__ == "__main__":
    torch.set_num_threads(1)
    json.dump(run(float(sys.argv[1])).as_dict(), sys.stdout)
"""


def _without_times(result: dict) -> list[dict]:
    """The rows with every timing left out (a pair run again takes other seconds; resumed ones keep theirs)."""
    rows = copy.deepcopy(result["rows"])
    for row in rows:
        row.pop("time_ratio")
        for part in ("mean", "std"):
            row[part].pop("seconds")
        for scores in row["per_seed"]:
            scores.pop("seconds")
    return rows


def test_a_killed_compare_resumes_from_its_finished_pairs_with_the_same_table(tmp_path, monkeypatch):
    """Killed (SIGKILL) once its first (method, seed) pair is checkpointed, the run started again resumes the
    finished pairs, runs the rest and gives the uninterrupted run's table; a finished run reruns nothing."""
    script = tmp_path / "run.py"
    script.write_text(RESUMABLE_RUN)
    killed_cache = tmp_path / "killed"
    env = {**os.environ, "UNLEARNLAB_CACHE": str(killed_cache), "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
    env.pop("UNLEARNLAB_RESUME", None)
    run = subprocess.Popen([sys.executable, str(script), "1.0"], env=env, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list((killed_cache / "checkpoints" / "compare").glob("*.pt")) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert run.poll() is None, "the run ended before it could be killed after its first pair"
    run.send_signal(signal.SIGKILL)
    run.wait()
    finished = len(list((killed_cache / "checkpoints" / "compare").glob("*.pt")))
    assert 1 <= finished < 4

    tiny = runpy.run_path(str(script))  # the same run in this process, on one thread like the killed one
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    monkeypatch.delenv("UNLEARNLAB_RESUME", raising=False)
    try:
        monkeypatch.setenv("UNLEARNLAB_CACHE", str(tmp_path / "whole"))
        whole = tiny["run"](0.0).as_dict()
        monkeypatch.setenv("UNLEARNLAB_CACHE", str(killed_cache))
        resumed = tiny["run"](0.0).as_dict()
        again = tiny["run"](0.0)
    finally:
        torch.set_num_threads(threads)
    assert (whole["resumed"], resumed["resumed"], resumed["pairs"]) == (0, finished, 4)
    assert _without_times(resumed) == _without_times(whole)  # bit-identical scores, errors and skips
    assert again.resumed == 4 and "4 of 4 (method, seed) pairs resumed" in again.markdown()


def test_capstone_full_tables_run_every_method_over_three_seeds_at_cpu_sized_configs():
    quick, full = resolve("quick"), resolve("full")
    assert capstone.SEEDS["full"] >= 3 and capstone.METHODS["full"] == {"class": None, "random": None}
    configs = capstone.table_configs(full)
    assert set(configs) == set(registry.METHODS)
    for name, spec in registry.METHODS.items():
        expected = spec.module.CONFIGS["quick"]
        if name in capstone.ONE_PASS:
            assert expected.num_epochs > 1 and configs[name] == replace(expected, num_epochs=1)
        elif name != "finetune":
            assert configs[name] == expected
    assert configs["finetune"] == capstone.finetune_baseline(full) == finetune.Config(num_epochs=1)
    assert capstone.table_configs(quick) == {"finetune": capstone.finetune_baseline(quick)}


def test_a_cache_that_cannot_be_written_costs_the_resuming_not_the_run(mnist_train, mnist_test, monkeypatch, own_cache):
    splits = class_splits((6,), train=mnist_train.subset(slice(0, 300)), test=mnist_test.subset(slice(0, 200)))

    def same(model, splits, config="quick", *, device="cpu", seed=0):
        return UnlearningResult(clone(model), Cost(seconds=1.0))

    method = SimpleNamespace(name="same", family="test", module=SimpleNamespace(unlearn=same), extra_inputs=())
    (own_cache / "file").write_text("not a folder")  # the grading sandbox binds the cache read-only; this is as much
    monkeypatch.setenv("UNLEARNLAB_CACHE", str(own_cache / "file" / "cache"))
    with pytest.warns(UserWarning, match="compare cannot save its checkpoint"):
        result = C.run_compare(
            [C.SeedSetup(0, _model(1), _model(2), splits)],
            {"same": method},
            scenario="class",
            forget="class 6",
            retrain_seconds=1.0,
            ain=False,
            profile=QUICK,
            device=torch.device("cpu"),
        )
    assert result.row("same").seeds == [0] and result.resumed == 0

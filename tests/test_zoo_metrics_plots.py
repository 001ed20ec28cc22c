import warnings

import numpy as np
import pytest
import torch
from conftest import TINY
from matplotlib.figure import Figure
from scipy.spatial.distance import jensenshannon

from unlearnlab import zoo
from unlearnlab.data import make_loader, relabel
from unlearnlab.grading import CheckFailedError, check, within
from unlearnlab.metrics import (
    UnlearningReport,
    accuracy,
    activation_distance,
    js_divergence,
    js_divergence_probs,
    largest_class_drop,
    report_table,
    unlearning_report,
)
from unlearnlab.models import build_model
from unlearnlab.plots import class_grid, image_grid, plot_confusion, plot_history, plot_per_class, plot_scaling
from unlearnlab.training import History


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("UNLEARNLAB_CACHE", str(tmp_path))
    return tmp_path


def test_zoo_trains_once_then_loads_the_same_weights(cache, monkeypatch):
    first = zoo.get("mlp", TINY, device="cpu")
    assert first.path.is_file() and first.path.parent == cache / "zoo"

    def no_training(*args, **kwargs):
        raise AssertionError("should have been loaded from the cache")

    monkeypatch.setattr(zoo, "train_from_scratch", no_training)
    second = zoo.get("mlp", TINY, device="cpu")
    for a, b in zip(first.model.state_dict().values(), second.model.state_dict().values()):
        assert torch.equal(a, b)
    assert second.seconds == first.seconds
    assert list(cache.glob("zoo/.*tmp")) == []  # atomic writes leave no temporary files


def test_cache_key_covers_the_whole_config():
    base = zoo.TrainSpec.from_profile("mlp", TINY)
    assert base.key() == zoo.TrainSpec.from_profile("mlp", TINY).key()
    others = [TINY.with_(lr=1e-3), TINY.with_(num_epochs=2), TINY.with_(train_subset=700), TINY.with_(batch_size=32)]
    keys = {zoo.TrainSpec.from_profile("mlp", p).key() for p in others}
    keys |= {
        zoo.TrainSpec.from_profile("mlp", TINY, seed=1).key(),
        zoo.TrainSpec.from_profile("mlp", TINY, exclude_classes=(6,)).key(),
    }
    assert base.key() not in keys and len(keys) == 6


def test_corrupt_cache_is_retrained_not_crashed_on(cache):
    path = zoo.get("mlp", TINY, device="cpu").path
    path.write_bytes(b"this is not a checkpoint")
    with pytest.warns(UserWarning, match="unusable cache file"):
        entry = zoo.get("mlp", TINY, device="cpu")
    assert isinstance(entry.model, torch.nn.Module)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        zoo.get("mlp", TINY, device="cpu")  # the rewritten file loads cleanly


def test_retrained_model_never_saw_the_forget_class(cache, mnist_test):
    model = zoo.retrained((6,), "mlp", TINY, device="cpu")
    report = unlearning_report(model, mnist_test, [6], device="cpu")
    assert report.forget_acc == 0.0 and report.retain_acc > 0.5
    with pytest.raises(ValueError, match="empty"):
        zoo.retrained((), "mlp", TINY)


def test_unlearning_report_splits_accuracy(mnist_test):
    torch.manual_seed(0)
    model = build_model("mlp")
    report = unlearning_report(model, mnist_test, [6], relabel={6: 3}, device="cpu")
    per_class = np.array(report.per_class)
    counts = np.array(mnist_test.class_counts())
    assert report.forget_acc == pytest.approx(per_class[6])
    retain = np.arange(10) != 6
    assert report.retain_acc == pytest.approx((per_class[retain] * counts[retain]).sum() / counts[retain].sum())
    relabelled = relabel(mnist_test, {6: 3})
    from unlearnlab.training import predict

    logits, _ = predict(model, make_loader(relabelled, 1000), "cpu")
    assert report.relabelled_acc == pytest.approx(accuracy(logits, relabelled.y))
    table = report_table({"original": report})
    assert table.splitlines()[0].startswith("| model | forget %") and "relabelled %" in table


def test_largest_class_drop_is_measured_below_the_lower_reference():
    def report(*per_class: float) -> UnlearningReport:
        return UnlearningReport(0.0, 0.0, 0.0, list(per_class))

    original, retrained = report(0.99, 0.98, 0.97, 0.90), report(0.97, 0.99, 0.0, 0.95)
    after = report(0.965, 0.976, 0.10, 0.80)
    # class 0: 97 - 96.5 = 0.5 (below the retrained 97, not the original 99); class 1: 98 - 97.6 = 0.4; class 3: 10
    drop, cls = largest_class_drop(after, [original, retrained], skip=[2])
    assert cls == 3 and drop == pytest.approx(10.0)
    drop, cls = largest_class_drop(after, [original, retrained], skip=[2, 3])
    assert drop == pytest.approx(0.5) and cls == 0


def test_js_divergence_matches_scipy():
    p = torch.softmax(torch.randn(20, 10, generator=torch.Generator().manual_seed(0)), 1)
    q = torch.softmax(torch.randn(20, 10, generator=torch.Generator().manual_seed(1)), 1)
    ours = js_divergence_probs(p, q).numpy()
    theirs = jensenshannon(p.numpy(), q.numpy(), axis=1) ** 2  # scipy returns the distance (square root)
    assert np.allclose(ours, theirs, atol=1e-6)
    assert float(js_divergence_probs(p, p).abs().max()) < 1e-6


def test_model_distances_are_zero_for_a_model_and_itself(mnist_test):
    loader = make_loader(mnist_test.subset(slice(0, 200)), 100)
    a, b = build_model("mlp"), build_model("mlp")
    assert js_divergence(a, a, loader, "cpu") == pytest.approx(0, abs=1e-6)
    assert activation_distance(a, a, loader, "cpu") == pytest.approx(0, abs=1e-6)
    assert activation_distance(a, b, loader, "cpu") > 0 and 0 < js_divergence(a, b, loader, "cpu") <= np.log(2)


def test_plots_return_figures(mnist_test):
    cm = np.eye(10, dtype=int) * 5
    figures = [
        plot_confusion(cm),
        plot_per_class({"before": [0.9] * 10, "after": [0.8] * 10}, highlight=[6]),
        plot_history({"a": History(step_loss=[3.0, 2.0, 1.0])}),
        image_grid(mnist_test.X[:12], mnist_test.y[:12].tolist(), ncol=6, title="digits"),
    ]
    assert all(isinstance(f, Figure) for f in figures)
    assert len(figures[3].axes) == 12


def test_figures_show_as_png_in_any_kernel():
    png = plot_scaling([1, 10], {"a": [0.1, 0.2]})._repr_png_()  # what IPython displays, with or without pyplot
    assert png.startswith(b"\x89PNG") and len(png) > 1000


def test_class_grid_puts_each_class_in_its_own_column(mnist_test):
    X, y = mnist_test.X[:200], mnist_test.y[:200]
    fig = class_grid(X, y, per_class=3)
    assert len(fig.axes) == 30  # 3 rows x 10 classes
    assert [ax.get_title() for ax in fig.axes[:10]] == [f"class {c}" for c in range(10)]
    shown = fig.axes[10].images[0].get_array()  # row 2, column "class 0": the second 0 of the data
    second_zero = X[y == 0][1, 0] * 0.3081 + 0.1307
    assert np.allclose(shown, second_zero.clamp(0, 1).numpy(), atol=1e-6)
    with pytest.raises(ValueError, match="at least one image"):
        class_grid(X[:0], y[:0])


def test_plot_scaling_draws_curves_and_references():
    fig = plot_scaling([10, 100], {"student": [0.5, 0.9]}, {"retrained": 0.99})
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and len(ax.lines) == 2
    assert list(ax.lines[0].get_ydata()) == [50.0, 90.0]


def test_check_prints_stable_pass_and_fail_lines(capsys):
    assert check("Q1 relabel", 2, ("six becomes three", True)) is None
    fail_line = "Q1 relabel: FAIL (0/2 points). Not yet: threes stay"
    with pytest.raises(CheckFailedError) as raised:  # raising is what nbval, nbgrader and otter all score
        check("Q1 relabel", 2, ("six becomes three", True), ("threes stay", within(0.5, 1.0, 0.1)))
    assert str(raised.value) == fail_line and isinstance(raised.value, AssertionError)
    out = capsys.readouterr().out.splitlines()
    assert out == ["Q1 relabel: PASS (2/2 points)", fail_line, "  ok  six becomes three", "  NOT threes stay"]
    with pytest.raises(CheckFailedError, match=r"Not yet: returns a tensor \(checking it raised TypeError"):
        check("Q1 relabel", 2, ("returns a tensor", lambda: len(None) == 1))  # a wrong type fails with its hint
    with pytest.raises(ValueError, match="cannot fail"):
        check("Q1", 1)

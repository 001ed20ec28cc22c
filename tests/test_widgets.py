"""The explorers' pure functions (unlearnlab/widgets.py) against hand computations and torch called directly."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from unlearnlab import widgets
from unlearnlab.data import TensorData
from unlearnlab.methods import deepinversion
from unlearnlab.mia_plots import plot_threshold
from unlearnlab.models import build_model


def test_masked_predictions_never_predict_a_hidden_class():
    logits = torch.tensor([[1.0, 3.0, 2.0], [5.0, 0.0, 4.0]])
    assert widgets.masked_predictions(logits, [1]).tolist() == [2, 0]
    assert widgets.masked_predictions(logits, [0]).tolist() == [1, 2]
    assert logits[0, 1] == 3.0  # the input is left alone
    with pytest.raises(ValueError, match="keep at least one"):
        widgets.masked_predictions(logits, [0, 1, 2])


def test_per_class_accuracy_and_confusion_view():
    np.testing.assert_array_equal(widgets.per_class_accuracy(np.array([[3, 1], [0, 0]])), [0.75, np.nan])
    y = torch.tensor([0, 0, 0, 0, 1, 1])
    before = torch.tensor([0, 0, 0, 1, 1, 1])
    after = torch.tensor([1, 2, 2, 0, 1, 0])
    view = widgets.confusion_view(y, before, after, forget_class=0)
    assert view.cm_after[0, :3].tolist() == [1, 1, 2] and view.cm_after[1, :2].tolist() == [1, 1]
    assert view.acc_before[:2].tolist() == [0.75, 1.0]
    assert view.acc_after[:2].tolist() == [0.25, 0.5]
    assert view.moved_to[:3].tolist() == [0.25, 0.25, 0.5]
    assert widgets.plot_confusion_view(view).axes
    with pytest.raises(ValueError, match="differ in length"):
        widgets.confusion_view(y, before[:3], after, 0)


def test_temperature_view_matches_the_closed_form_gradient():
    torch.manual_seed(0)
    z_t, z_s = 3 * torch.randn(10), 3 * torch.randn(10)
    T = 4.0
    view = widgets.temperature_view(z_t, z_s, T)
    p, q = torch.softmax(z_t / T, 0), torch.softmax(z_s / T, 0)
    assert view.kl == pytest.approx(float((p * (p / q).log()).sum()), rel=1e-5)
    # d(T^2 KL)/dz_s = T (q - p); without the T^2 it is (q - p) / T
    assert view.scaled_grad_norm == pytest.approx(T * float((q - p).norm()), rel=1e-5)
    assert view.grad_norm == pytest.approx(float((q - p).norm()) / T, rel=1e-5)
    np.testing.assert_allclose(view.teacher_probs, p.numpy(), rtol=1e-6)
    # T -> infinity: T (q - p) -> (centred z_s - centred z_t) / C (Hinton et al., 2015)
    far = widgets.temperature_view(z_t, z_s, 1000.0)
    d = z_s - z_t
    assert far.scaled_grad_norm == pytest.approx(float((d - d.mean()).norm()) / 10, rel=1e-2)
    with pytest.raises(ValueError, match="one image"):
        widgets.temperature_view(z_t[None], z_s[None], T)
    assert widgets.plot_temperature(view, [view, far], forget_class=6).axes


def test_blend_and_gate_view_count_by_hand():
    a, b = torch.ones(2, 1, 28, 28), torch.zeros(2, 1, 28, 28)
    mixed = widgets.blend(a, b, torch.tensor([0.25, 1.0]))
    assert mixed[0].unique().tolist() == [0.25] and mixed[1].unique().tolist() == [1.0]
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        widgets.blend(a, b, torch.tensor([1.5, 0.0]))
    probs = torch.tensor([[0.6, 0.2, 0.2], [0.1, 0.8, 0.1], [0.01, 0.01, 0.98], [0.3, 0.35, 0.35]])
    view = widgets.gate_view(probs, [0], threshold=0.2)
    assert (view.kept, view.total, view.kept_by_gate) == (2, 4, 2)
    assert view.kept_per_class.tolist() == [0, 1, 1]
    # entropies: row 1 -(0.2 ln 0.1 + 0.8 ln 0.8) = 0.639 nats, row 2 0.112 nats
    filtered = widgets.gate_view(probs, [0], threshold=0.2, max_entropy=0.5)
    assert (filtered.kept, filtered.kept_by_gate) == (1, 2)
    assert filtered.kept_per_class.tolist() == [0, 0, 1]
    assert -(0.2 * math.log(0.1) + 0.8 * math.log(0.8)) > 0.5
    assert widgets.plot_gate(filtered, probs, [0]).axes


def test_threshold_view_by_hand():
    member = np.array([0.1, 0.2, 0.5, 1.0])
    nonmember = np.array([0.3, 0.6, 2.0, 3.0, 4.0])
    view = widgets.threshold_view(member, nonmember, 0.5)
    assert (view.tpr, view.fpr) == (0.75, 0.2)
    assert view.advantage == pytest.approx(0.55)
    assert view.balanced_accuracy == pytest.approx(0.775)
    fig = widgets.plot_threshold({"m": view, "n": view}, {"m": (member, nonmember), "n": (nonmember, member)})
    assert [ax.get_title() for ax in fig.axes] == [
        "m: threshold 0.5: TPR 75.0%, FPR 20.0%",
        "n: threshold 0.5: TPR 20.0%, FPR 75.0%",  # each panel's rates come from its own losses
    ]
    assert [ax.get_title() for ax in plot_threshold(member, nonmember, 0.5).axes] == [
        "threshold 0.5: TPR 75.0%, FPR 20.0%"
    ]
    with pytest.raises(ValueError, match="no model to plot"):
        widgets.plot_threshold({}, {})


def test_pruning_sweep_matches_pruning_by_hand():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 16), nn.ReLU(), nn.Linear(16, 10))
    data = TensorData(torch.randn(200, 1, 28, 28), torch.randint(0, 10, (200,)))
    forget, retain = data.subset(slice(0, 80)), data.subset(slice(80, 200))
    before = [p.clone() for p in model.parameters()]
    points = widgets.pruning_sweep(model, forget, retain, [0.0, 0.5, 0.9], device="cpu")
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))  # model untouched

    weights = [model[1].weight, model[3].weight]
    magnitudes = torch.cat([w.detach().abs().flatten() for w in weights])
    for point in points:
        k = round(point.amount * len(magnitudes))
        cut = magnitudes.sort().values[k - 1] if k else -1.0  # the k smallest |w| become zero
        w1, w2 = (torch.where(w.abs() > cut, w, torch.zeros_like(w)).detach() for w in weights)
        with torch.no_grad():

            def by_hand(X, w1=w1, w2=w2):
                return torch.relu(X.flatten(1) @ w1.T + model[1].bias) @ w2.T + model[3].bias

            accs = [float((by_hand(d.X).argmax(1) == d.y).float().mean()) for d in (forget, retain)]
        assert point.sparsity == pytest.approx(k / len(magnitudes))
        assert (point.forget_acc, point.retain_acc) == pytest.approx(accs)
    assert widgets.pruning_view(points, 0.8).amount == 0.9
    assert widgets.plot_pruning(points, points[1]).axes


def test_gallery_view_selects_classes_in_order():
    images = TensorData(torch.arange(4.0).view(4, 1, 1, 1).expand(4, 1, 28, 28), torch.tensor([0, 1, 2, 1]))
    picked, pred = widgets.gallery_view(images, torch.tensor([5, 6, 7, 8]), [1])
    assert picked.y.tolist() == [1, 1] and picked.X[:, 0, 0, 0].tolist() == [1.0, 3.0] and pred.tolist() == [6, 8]
    assert widgets.gallery_view(images, torch.arange(4))[0] is images
    with pytest.raises(ValueError, match="4 images but 3 predictions"):
        widgets.gallery_view(images, torch.arange(3))


def test_cached_inversion_gallery_is_deepinversion_and_is_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("UNLEARNLAB_CACHE", str(tmp_path))
    torch.manual_seed(0)
    teacher = build_model("cnn_bn").eval()
    settings = [widgets.GallerySetting(1.0, 1.0), widgets.GallerySetting(0.0, 0.0)]
    first = widgets.cached_inversion_gallery(teacher, settings, images_per_class=1, steps=2, device="cpu")
    config = deepinversion.InversionConfig(images_per_class=1, batch_per_class=1, steps=2, bn_weight=0.0, tv_weight=0.0)
    direct = deepinversion.synthesize(teacher, config=config, device="cpu", seed=0)
    assert torch.equal(first[settings[1]].X, direct.data.X) and torch.equal(first[settings[1]].y, direct.data.y)
    assert len(list((tmp_path / "gallery").glob("*.pt"))) == 1
    again = widgets.cached_inversion_gallery(teacher, settings, images_per_class=1, steps=2, device="cpu")
    assert all(torch.equal(first[s].X, again[s].X) for s in settings)
    shown = widgets.plot_gallery(first[settings[0]], torch.arange(10), "g")
    assert shown.axes[0].get_title() == "0→0"

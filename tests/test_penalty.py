"""Penalty losses and saliency masks (notebook 02)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from unlearnlab.data import class_splits, make_loader
from unlearnlab.methods.penalty import Config, bounded_penalty, penalty_loss, unbounded_penalty, unlearn
from unlearnlab.methods.saliency import (
    apply_gradient_masks,
    candidate_parameters,
    gradient_saliency,
    layer_masks,
    mask_fraction,
    top_fraction_mask,
)
from unlearnlab.models import build_model


def test_bounded_penalty_matches_closed_form_and_is_stable() -> None:
    torch.manual_seed(0)
    logits = torch.randn(8, 10, dtype=torch.float64)
    p6 = logits.softmax(1)[:, 6]
    assert torch.allclose(bounded_penalty(logits, 6), -(1 - p6).log().mean())
    huge = torch.zeros(2, 10)
    huge[:, 6] = 100.0  # 1 - p6 underflows to 0 in float32; the stable form gives ~100
    assert bounded_penalty(huge, 6).item() == pytest.approx(100 - math.log(9), abs=1e-4)
    assert bounded_penalty(torch.randn(50, 10) * 10, 6) >= 0


def test_bounded_penalty_gradient_vanishes_with_p6_unbounded_does_not() -> None:
    logits = torch.zeros(1, 10)
    logits[0, 6] = -30.0  # p6 ~ 1e-13: the class is already gone
    for penalty, expect_zero in ((bounded_penalty, True), (unbounded_penalty, False)):
        z = logits.clone().requires_grad_(True)
        penalty(z, 6).backward()
        assert (z.grad.abs().max() < 1e-6) == expect_zero
    assert unbounded_penalty(logits, 6) < -29  # negative and without floor


def test_penalty_loss_is_cross_entropy_plus_weighted_penalty() -> None:
    torch.manual_seed(0)
    logits, y = torch.randn(16, 10), torch.randint(0, 10, (16,))
    expected = F.cross_entropy(logits, y) + 0.5 * bounded_penalty(logits, 6)
    assert torch.allclose(penalty_loss(logits, y, 6, weight=0.5), expected)
    with pytest.raises(ValueError, match="outside"):
        penalty_loss(logits, y, 10)


def test_top_fraction_mask_counts_and_shapes() -> None:
    scores = {"a": torch.arange(12.0).view(3, 4), "b": torch.arange(100.0, 108.0)}
    masks = top_fraction_mask(scores, 0.25)
    assert {k: m.shape for k, m in masks.items()} == {"a": (3, 4), "b": (8,)}
    assert int(sum(m.sum() for m in masks.values())) == 5 and bool(masks["b"][3:].all())
    assert mask_fraction(masks) == pytest.approx(0.25)
    for bad in (0, 1.5):
        with pytest.raises(ValueError, match="fraction"):
            top_fraction_mask(scores, bad)


def test_gradient_masks_keep_unchosen_entries_bit_identical(small_train) -> None:
    torch.manual_seed(0)
    model = build_model("cnn_bn").train()
    given = {k: v.clone() for k, v in model.state_dict().items()}
    scores = gradient_saliency(model, make_loader(small_train.subset(small_train.y == 6), 64), "cpu")
    assert set(scores) == set(candidate_parameters(model)) and all(s.sum() > 0 for s in scores.values())
    assert all(s.is_contiguous() for s in scores.values())  # whatever the layout of the weights
    # scored in eval mode, the model handed back as it was given: training mode, same weights and statistics
    assert model.training and all(torch.equal(v, given[k]) for k, v in model.state_dict().items())
    masks = top_fraction_mask(scores, 0.05)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    handles = apply_gradient_masks(model, masks)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    for _ in range(3):
        optimizer.zero_grad()
        F.cross_entropy(model(small_train.X[:64]), small_train.y[:64]).backward()
        optimizer.step()
    for h in handles:
        h.remove()
    params = dict(model.named_parameters())
    for name, mask in masks.items():
        assert torch.equal(params[name].detach()[~mask], before[name][~mask])
    assert any(not torch.equal(params[n].detach()[m], before[n][m]) for n, m in masks.items() if m.any())
    assert torch.equal(params["bn1.weight"].detach(), before["bn1.weight"])


def test_mask_errors() -> None:
    model = build_model("cnn_bn")
    with pytest.raises(ValueError, match="no conv or linear layer"):
        layer_masks(model, ["fc9"])
    with pytest.raises(ValueError, match="shape"):
        apply_gradient_masks(model, {"fc3.bias": torch.ones(3, dtype=torch.bool)})
    with pytest.raises(ValueError, match="not a parameter"):
        apply_gradient_masks(model, {"fc4.bias": torch.ones(3, dtype=torch.bool)})
    masks = layer_masks(model, ["fc3"])
    assert mask_fraction(masks) == pytest.approx(650 / sum(p.numel() for p in candidate_parameters(model).values()))


def test_penalty_unlearn_smoke(mnist_train, mnist_test) -> None:
    splits = class_splits([6], mnist_train.subset(slice(0, 400)), mnist_test.subset(slice(0, 200)))
    model = build_model("cnn_bn").eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = unlearn(model, splits, Config(fraction=0.1, batch_size=64), device="cpu", seed=0)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())  # input untouched
    assert result.fraction == pytest.approx(0.1, abs=1e-4) and len(result.history.step_loss) == 7
    assert result.fraction == mask_fraction(result.masks)
    assert all(p.requires_grad for p in result.model.parameters()) and result.cost.seconds > 0
    with pytest.raises(ValueError, match="unknown penalty"):
        unlearn(model, splits, Config(penalty="square"), device="cpu")

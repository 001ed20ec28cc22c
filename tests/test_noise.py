"""Error-maximising / error-minimising noise (EMMN): objectives, noise learning and the method contract."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from unlearnlab.data import TensorData, class_splits
from unlearnlab.methods.noise import (
    CONFIGS,
    emmn,
    error_max_objective,
    error_min_objective,
    learn_noise,
    noise_penalty,
)
from unlearnlab.models import build_model

TINY = replace(CONFIGS["quick"], noise_per_class=4, noise_steps=3, batch_size=16)


def test_objectives_match_closed_form():
    gen = torch.Generator().manual_seed(0)
    logits, noise = torch.randn(5, 10, generator=gen), torch.randn(5, 1, 28, 28, generator=gen)
    y = torch.tensor([0, 1, 2, 3, 4])
    penalty = (noise**2).sum(dim=(1, 2, 3)).mean()
    assert torch.allclose(noise_penalty(noise), penalty)
    ce = F.cross_entropy(logits, y)
    assert torch.allclose(error_max_objective(logits, y, noise, 0.1), -ce + 0.1 * penalty)
    assert torch.allclose(error_min_objective(logits, y, noise, 0.1), ce + 0.1 * penalty)


def test_learn_noise_moves_the_loss_the_right_way(small_train: TensorData):
    model = build_model("cnn_bn").eval()
    config = replace(TINY, noise_steps=0)
    start = learn_noise(model, (0, 1), True, config)
    assert start.X.shape == (8, 1, 28, 28) and start.y.tolist() == [0] * 4 + [1] * 4
    weights = model.conv1.weight.clone()
    config = replace(TINY, noise_steps=15, noise_reg=0.0)
    up, down = learn_noise(model, (0, 1), True, config), learn_noise(model, (0, 1), False, config)
    with torch.no_grad():
        ce = {
            name: float(F.cross_entropy(model(d.X), d.y)) for name, d in [("start", start), ("up", up), ("down", down)]
        }
    assert ce["up"] > ce["start"] > ce["down"]
    assert torch.equal(model.conv1.weight, weights)  # the model is not trained
    assert all(p.requires_grad for p in model.parameters())  # and its flags are restored


def test_learn_noise_rejects_bad_input():
    model = build_model("cnn_bn")
    with pytest.raises(ValueError, match="empty"):
        learn_noise(model, (), True, TINY)
    with pytest.raises(ValueError, match="outside"):
        learn_noise(model, (10,), True, TINY)


def test_emmn_contract(small_train: TensorData, mnist_test: TensorData):
    model = build_model("cnn_bn").eval()
    splits = class_splits((0,), train=small_train, test=mnist_test.subset(slice(0, 100)))
    before = model.conv1.weight.clone()
    result = emmn(model, splits, TINY)
    assert torch.equal(model.conv1.weight, before)  # the original is untouched
    assert not torch.equal(result.model.conv1.weight, before)
    assert result.extras["forget_noise"].y.unique().tolist() == [0]
    assert result.extras["retain_standin"].y.unique().tolist() == list(range(1, 10))
    assert result.cost.stored_bytes == 0 and result.cost.seconds > 0
    unsir = emmn(model, splits, replace(TINY, real_retain_per_class=2))
    standin = unsir.extras["retain_standin"]
    assert standin.class_counts() == [0] + [2] * 9 and unsir.cost.stored_bytes == standin.X.numel() * 4

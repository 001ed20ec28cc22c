"""Error-maximising / error-minimising noise (EMMN): objectives, noise learning and the method contract."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from unlearnlab.data import TensorData, class_splits
from unlearnlab.methods import unsir
from unlearnlab.methods.noise import (
    CONFIGS,
    error_max_objective,
    error_min_objective,
    learn_noise,
    noise_penalty,
    unlearn,
)
from unlearnlab.models import build_model
from unlearnlab.training import make_rng

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
    start = learn_noise(model, (0, 1), True, config, rng=make_rng(5))
    assert torch.equal(start.X, torch.randn(8, 1, 28, 28, generator=make_rng(5)))  # the rng's own draw
    assert start.y.tolist() == [0] * 4 + [1] * 4
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
    result = unlearn(model, splits, TINY, seed=0)
    assert torch.equal(model.conv1.weight, before)  # the original is untouched
    assert not torch.equal(result.model.conv1.weight, before)
    assert result.forget_noise.y.tolist() == [0] * 4 and result.retain_standin.class_counts() == [0] + [4] * 9
    assert result.cost.stored_bytes == 0 and result.cost.seconds > 0
    # impair: one pass over 4 + 36 noise images in batches of 16; repair: one pass over the 36
    assert len(result.impair.step_loss) == 3 and len(result.repair.step_loss) == 3
    assert result.history.step_loss == result.impair.step_loss + result.repair.step_loss
    with_real = unsir.unlearn(model, splits, replace(TINY, real_retain_per_class=2), seed=0)
    standin = with_real.retain_standin
    assert standin.class_counts() == [0] + [2] * 9 and with_real.cost.stored_bytes == standin.X.numel() * 4
    with pytest.raises(ValueError, match="real_retain_per_class"):
        unsir.unlearn(model, splits, TINY)

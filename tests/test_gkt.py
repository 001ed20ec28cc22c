"""Gated Knowledge Transfer (gate, entropy filter, attention transfer, stopping rule) and the anamnesis index."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from unlearnlab.data import TensorData
from unlearnlab.methods.anamnesis import RelearnConfig, anamnesis, anamnesis_index, relearn, steps_to_reach
from unlearnlab.methods.gkt import (
    CONFIGS,
    Generator,
    attention_loss,
    attention_map,
    entropy,
    gate_mask,
    gkt,
    kl_teacher_student,
    probe_rate,
    record_activations,
    reinitialise,
)
from unlearnlab.models import build_model


def test_entropy_matches_closed_form():
    probs = torch.tensor([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [1 / 3, 1 / 3, 1 / 3]])
    assert torch.allclose(entropy(probs), torch.tensor([0.0, math.log(2), math.log(3)]), atol=1e-6)


def test_gate_drops_forget_probability_at_threshold():
    probs = torch.tensor([[0.005, 0.995, 0.0], [0.01, 0.99, 0.0], [0.9, 0.1, 0.0], [0.0, 0.5, 0.5]])
    assert gate_mask(probs, (0,), 0.01).tolist() == [True, False, False, True]
    # several forget classes: every one of them must be below the threshold
    assert gate_mask(probs, (0, 2), 0.01).tolist() == [True, False, False, False]


def test_entropy_filter_keeps_confident_rows_only():
    probs = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.5, 0.5], [0.0, 0.9, 0.1]])
    assert gate_mask(probs, (0,), 0.01, max_entropy=0.6).tolist() == [True, False, True]


def test_gate_rejects_bad_input():
    with pytest.raises(ValueError, match="outside"):
        gate_mask(torch.full((2, 10), 0.1), (12,), 0.01)
    with pytest.raises(ValueError, match="batch, classes"):
        gate_mask(torch.full((10,), 0.1), (0,), 0.01)
    with pytest.raises(ValueError, match="empty"):
        gate_mask(torch.full((2, 10), 0.1), (), 0.01)


def test_attention_loss_matches_closed_form():
    gen = torch.Generator().manual_seed(0)
    A_s, A_t = torch.randn(4, 3, 5, 5, generator=gen), torch.randn(4, 3, 5, 5, generator=gen)
    # f(A) = mean over channels of A^2, flattened, divided by its L2 norm
    f_s = (A_s**2).mean(1).reshape(4, -1)
    f_t = (A_t**2).mean(1).reshape(4, -1)
    a_s, a_t = f_s / f_s.norm(dim=1, keepdim=True), f_t / f_t.norm(dim=1, keepdim=True)
    assert torch.allclose(attention_map(A_s), a_s, atol=1e-6)
    expected = ((a_s - a_t) ** 2).mean()
    assert torch.allclose(attention_loss([A_s], [A_t]), expected, atol=1e-7)
    assert torch.allclose(attention_loss([A_s, A_s], [A_t, A_s]), expected, atol=1e-7)
    assert float(attention_loss([A_t], [A_t])) == 0.0


def test_attention_loss_rejects_mismatched_layers():
    A = torch.ones(2, 3, 4, 4)
    with pytest.raises(ValueError, match="same non-zero number"):
        attention_loss([A], [A, A])
    with pytest.raises(ValueError, match="shapes differ"):
        attention_loss([A], [torch.ones(2, 3, 2, 2)])


def test_kl_matches_pytorch_batchmean():
    gen = torch.Generator().manual_seed(1)
    s, t = torch.randn(6, 10, generator=gen), torch.randn(6, 10, generator=gen)
    p_t = t.softmax(1)
    manual = (p_t * (p_t.log() - s.log_softmax(1))).sum(1).mean()
    assert torch.allclose(kl_teacher_student(s, t), manual, atol=1e-6)
    assert torch.allclose(kl_teacher_student(s, t), F.kl_div(s.log_softmax(1), p_t, reduction="batchmean"))


def test_record_activations_hooks_conv_blocks(small_train: TensorData):
    model = build_model("cnn_bn").eval()
    with record_activations(model, ("bn1", "bn2")) as acts:
        model(small_train.X[:5])
        assert [tuple(a.shape) for a in acts] == [(5, 32, 28, 28), (5, 64, 14, 14)]
    model(small_train.X[:5])  # hooks are removed after the block
    with pytest.raises(ValueError, match="no module 'conv9'"), record_activations(model, ("conv9",)):
        pass


def test_reinitialise_and_probe_rate(small_train: TensorData):
    model = build_model("cnn_bn").eval()
    student = reinitialise(model)
    assert not torch.equal(student.conv1.weight, model.conv1.weight)
    assert torch.equal(model.conv1.weight, model.conv1.weight.clone())
    rate = probe_rate(model, small_train.X[:40], range(10))
    assert rate == 1.0  # every prediction is one of the ten classes
    assert 0.0 <= probe_rate(model, small_train.X[:40], (0,)) <= 1.0


def test_generator_shape():
    X = Generator(z_dim=8).sample(4, torch.Generator().manual_seed(0))
    assert X.shape == (4, 1, 28, 28)


def test_gkt_smoke_and_stopping_rule(small_train: TensorData):
    teacher = build_model("cnn_bn").eval()
    config = replace(
        CONFIGS["quick"],
        num_iterations=4,
        batch_size=8,
        student_steps=1,
        check_every=2,
        min_iterations=2,
        max_probe_rate=1.0,  # a random teacher: never stop in the first run
    )
    probes = small_train.X[:10]
    calls = []
    result = gkt(
        teacher, None, config, forget_classes=(0,), probes=probes, monitor=lambda m: calls.append(1) or {"x": 1.0}
    )
    assert result.model is not teacher and len(result.extras["checkpoints"]) == 2 and len(calls) == 2
    assert result.extras["checkpoints"][0].metrics == {"x": 1.0}
    assert result.cost.seconds > 0
    # a probe rate of 1 is always above the limit: the rule fires at the first checkpoint it may act on
    always = replace(config, max_probe_rate=-1.0)
    stopped = gkt(teacher, None, always, forget_classes=(0,), probes=probes)
    assert stopped.extras["stop_iteration"] == 2 and len(stopped.extras["checkpoints"]) == 1
    with pytest.raises(ValueError, match="give splits or forget_classes"):
        gkt(teacher, None, config)


def test_steps_to_reach_and_anamnesis_index():
    assert steps_to_reach([0.0, 0.2, 0.96, 0.99], 0.95) == 2
    assert steps_to_reach([0.0, 0.2], 0.95) is None
    assert anamnesis_index(10, 40) == 0.25
    with pytest.raises(ValueError, match="undefined"):
        anamnesis_index(3, 0)
    with pytest.raises(ValueError, match="negative"):
        anamnesis_index(-1, 3)


def test_relearn_counts_steps(small_train: TensorData):
    model = build_model("cnn_bn")
    config = RelearnConfig(max_steps=3, batch_size=16, lr=1e-2)
    result = relearn(model, small_train, small_train.subset(small_train.y == 0), target=2.0, config=config)
    assert result.steps == 3 and not result.reached and len(result.curve) == 4
    easy = relearn(model, small_train, small_train.subset(small_train.y == 0), target=0.0, config=config)
    assert easy.steps == 0 and easy.reached
    ain, ours, gold = anamnesis(model, model, 1.0, small_train, small_train.subset(small_train.y == 0), config)
    assert ours.steps == gold.steps and ain == 1.0

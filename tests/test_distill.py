"""Distillation losses, forget-class targets and the two students (notebook 03)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from unlearnlab.data import class_splits, random_splits
from unlearnlab.methods import bad_teacher
from unlearnlab.methods.base import fresh_model
from unlearnlab.methods.distill import Config, distillation_loss, double_softmax_kd_loss, move_class_mass, unlearn
from unlearnlab.methods.losses import kd_loss, soft_targets, soft_targets_without
from unlearnlab.models import build_model


def test_distillation_loss_matches_closed_form() -> None:
    torch.manual_seed(0)
    s, t, T = torch.randn(8, 10, dtype=torch.float64), torch.randn(8, 10, dtype=torch.float64), 4.0
    p, q = (t / T).softmax(1), (s / T).softmax(1)
    expected = T**2 * (p * (p.log() - q.log())).sum(1).mean()  # batchmean: sum over classes, mean over rows
    assert torch.allclose(distillation_loss(s, t, T), expected)
    assert distillation_loss(t, t, T).abs() < 1e-12
    with pytest.raises(ValueError, match="temperature"):
        soft_targets(t, 0)


def test_distillation_gradient_reaches_student_only() -> None:
    torch.manual_seed(0)
    s, t = torch.randn(4, 10, requires_grad=True), torch.randn(4, 10, requires_grad=True)
    distillation_loss(s, t, 2.0).backward()
    assert s.grad.abs().sum() > 0 and t.grad is None


def test_double_softmax_is_flat() -> None:
    torch.manual_seed(0)
    t = torch.randn(16, 10) * 8
    values = [double_softmax_kd_loss(torch.randn(16, 10) * 8, t, 4.0).item() for _ in range(5)]
    assert max(values) < 0.2 and max(values) - min(values) < 0.1  # kd_loss on logits varies by whole units
    s = (torch.randn(16, 10) * 8).requires_grad_(True)
    double_softmax_kd_loss(s, t, 4.0).backward()
    s2 = s.detach().clone().requires_grad_(True)
    distillation_loss(s2, t, 4.0).backward()
    assert s.grad.norm() < 0.1 * s2.grad.norm()


def test_forget_class_targets() -> None:
    torch.manual_seed(0)
    z = torch.randn(5, 10)
    probs = soft_targets(z, 2.0)
    moved = move_class_mass(probs, 6, 3)
    assert torch.allclose(moved.sum(1), torch.ones(5)) and (moved[:, 6] == 0).all()
    assert torch.allclose(moved[:, 3], probs[:, 3] + probs[:, 6]) and torch.equal(probs, soft_targets(z, 2.0))
    dropped = soft_targets_without(z, [6], 2.0)
    keep = [c for c in range(10) if c != 6]
    assert torch.allclose(dropped[:, keep], F.softmax(z[:, keep] / 2.0, dim=1)) and (dropped[:, 6] == 0).all()
    several = soft_targets_without(z, [0, 6], 2.0)
    assert torch.allclose(several.sum(1), torch.ones(5)) and (several[:, [0, 6]] == 0).all()
    with pytest.raises(ValueError, match="every class is forgotten"):
        soft_targets_without(z, range(10), 2.0)
    with pytest.raises(ValueError, match="temperature"):
        soft_targets_without(z, [6], 0.0)
    with pytest.raises(ValueError, match="onto itself"):
        move_class_mass(probs, 6, 6)
    with pytest.raises(ValueError, match="outside"):
        move_class_mass(probs, 6, 10)


def test_kd_loss_against_pytorch_kl_div() -> None:
    torch.manual_seed(0)
    s, p = torch.randn(6, 10), torch.randn(6, 10).softmax(1)
    expected = 9 * F.kl_div(F.log_softmax(s / 3, 1), p, reduction="sum") / 6
    assert torch.allclose(kd_loss(s, p, 3.0), expected)


def test_fresh_model_is_a_new_model_of_the_seed() -> None:
    model = build_model("cnn_bn")
    with torch.no_grad():
        model.fc3.weight.fill_(1.0)
        model.bn1.running_mean.fill_(5.0)
        model.fc3.weight.requires_grad_(False)
    torch.manual_seed(1)
    reference = build_model("cnn_bn")  # the constructor draws the same weights, layer by layer, from seed 1
    state = torch.get_rng_state()
    student = fresh_model(model, seed=1)
    assert torch.equal(torch.get_rng_state(), state)  # the caller's RNG is neither reseeded nor advanced
    for name, value in reference.state_dict().items():
        assert torch.equal(student.state_dict()[name], value), name
    assert (model.fc3.weight == 1).all() and (model.bn1.running_mean == 5).all()  # the input is unchanged
    assert all(p.requires_grad for p in student.parameters())


@pytest.fixture()
def tiny_splits(mnist_train, mnist_test):
    return class_splits([6], mnist_train.subset(slice(0, 400)), mnist_test.subset(slice(0, 200)))


def test_distill_unlearn_smoke(tiny_splits) -> None:
    teacher = build_model("cnn_bn").eval()
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    config = Config(num_epochs=1, batch_size=64)
    result = unlearn(teacher, tiny_splits, config, device="cpu", seed=0)
    assert all(torch.equal(v, teacher.state_dict()[k]) for k, v in before.items())
    parts = result.parts
    assert len(parts.kd) == len(parts.ce) == len(result.history.step_loss) == 7
    total = [0.5 * c + 0.5 * k for c, k in zip(parts.ce, parts.kd)]
    assert total == pytest.approx(result.history.step_loss, rel=1e-5)
    for bad in (Config(targets="ignore"), Config(loss="mse"), Config(alpha=2)):
        with pytest.raises(ValueError):
            unlearn(teacher, tiny_splits, bad, device="cpu")


def test_bad_teacher_smoke(tiny_splits) -> None:
    model = build_model("cnn_bn").eval()
    result = bad_teacher.unlearn(model, tiny_splits, bad_teacher.Config(batch_size=64), device="cpu", seed=0)
    assert result.retain_size == round(0.3 * len(tiny_splits.retain))
    # one epoch over the retain subset and the forget set, in batches of 64
    assert len(result.history.step_loss) == -(-(result.retain_size + len(tiny_splits.forget)) // 64)
    assert not torch.equal(result.model.fc3.weight, model.fc3.weight)
    with pytest.raises(ValueError, match="retain_fraction"):
        bad_teacher.unlearn(model, tiny_splits, bad_teacher.Config(retain_fraction=0), device="cpu")


def test_bad_teacher_first_step_is_the_kl_to_the_chosen_teacher(mnist_train, mnist_test) -> None:
    """Random forgetting: the first step's loss is KL(good || student) on retained and KL(bad || student) on
    forget images, the student being the original model, so the retained images contribute exactly 0."""
    splits = random_splits(0.5, mnist_train.subset(slice(0, 8)), mnist_test.subset(slice(0, 8)), seed=0)
    torch.manual_seed(0)
    model = build_model("cnn_bn").eval()
    config = bad_teacher.Config(retain_fraction=1.0, batch_size=64, lr=0.0)
    result = bad_teacher.unlearn(model, splits, config, device="cpu", seed=3)
    bad = fresh_model(model, seed=3).eval()
    retain, forget = splits.retain.X, splits.forget.X
    with torch.no_grad():
        targets = torch.cat([model(retain), bad(forget)]).softmax(1)
        # the student's first forward pass is in train mode: batch statistics of all 8 images
        log_q = model.train()(torch.cat([retain, forget])).log_softmax(1)
    expected = (targets * (targets.log() - log_q)).sum(1).mean()  # KL per image, mean over the 8 images
    assert result.history.step_loss[0] == pytest.approx(float(expected), rel=1e-4)

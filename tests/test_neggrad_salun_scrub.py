"""NegGrad+, SalUn and SCRUB, each against the same steps written out in torch."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from unlearnlab.data import TensorData, concat, make_loader, random_splits
from unlearnlab.methods import neggrad_plus, salun, scrub
from unlearnlab.methods.base import wrong_labels
from unlearnlab.methods.saliency import gradient_saliency
from unlearnlab.training import make_rng


@pytest.fixture()
def splits(mnist_train, mnist_test):
    """80 training images (8 forgotten, at random) and 50 test images."""
    return random_splits(0.1, mnist_train.subset(slice(0, 80)), mnist_test.subset(slice(0, 50)), seed=0)


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 10))


def _close(a: nn.Module, b: nn.Module) -> bool:
    return all(torch.allclose(p, q, atol=1e-6) for p, q in zip(a.parameters(), b.parameters()))


def test_neggrad_plus_loss_closed_form():
    g = torch.Generator().manual_seed(0)
    zr, zf = torch.randn(4, 10, generator=g), torch.randn(3, 10, generator=g)
    yr, yf = torch.tensor([0, 1, 2, 3]), torch.tensor([4, 5, 6])
    ce_r = -zr.log_softmax(1)[torch.arange(4), yr].mean()
    ce_f = -zf.log_softmax(1)[torch.arange(3), yf].mean()
    assert float(neggrad_plus.neggrad_plus_loss(zr, yr, zf, yf, 0.9)) == pytest.approx(float(0.9 * ce_r - 0.1 * ce_f))
    with pytest.raises(ValueError, match="alpha"):
        neggrad_plus.neggrad_plus_loss(zr, yr, zf, yf, 1.5)


def test_neggrad_plus_is_adam_on_retain_descent_and_forget_ascent(splits):
    model = _model()
    config = neggrad_plus.Config(alpha=0.9, num_epochs=2, lr=1e-2, batch_size=16, forget_batch_size=3)
    result = neggrad_plus.unlearn(model, splits, config, device="cpu", seed=0)

    reference = copy.deepcopy(model)
    opt = torch.optim.Adam(reference.parameters(), lr=1e-2)
    forget = make_loader(splits.forget, 3, shuffle=True, seed=0)
    forget_batches = (batch for _ in range(100) for batch in forget)  # cycled, a new shuffle per pass
    retain = make_loader(splits.retain, 16, shuffle=True, seed=0)
    for _ in range(2):
        for X, y in retain:
            X_f, y_f = next(forget_batches)
            loss = 0.9 * F.cross_entropy(reference(X), y) - 0.1 * F.cross_entropy(reference(X_f), y_f)
            opt.zero_grad()
            loss.backward()
            opt.step()
    assert _close(result.model, reference)
    assert len(result.history.step_loss) == 2 * 5  # 72 retain images in batches of 16, twice
    assert torch.equal(model[1].weight, _model()[1].weight)  # the input is untouched


def test_salun_trains_only_the_salient_half_on_random_labels(splits):
    model = _model()
    config = salun.Config(fraction=0.5, num_epochs=1, lr=1e-2, batch_size=16)
    result = salun.unlearn(model, splits, config, device="cpu", seed=0)

    # saliency by hand: |d CE(forget) / d w| (one batch: the forget set has 8 images), top half overall
    loss = F.cross_entropy(model(splits.forget.X), splits.forget.y)
    grads = torch.autograd.grad(loss, list(model.parameters()))
    flat = torch.cat([g.abs().flatten() for g in grads])
    chosen = torch.zeros_like(flat, dtype=torch.bool)
    chosen[torch.topk(flat, round(0.5 * flat.numel())).indices] = True
    masks = [chosen[: grads[0].numel()].view_as(grads[0]), chosen[grads[0].numel() :].view_as(grads[1])]
    assert [torch.equal(result.masks[n], m) for n, m in zip(["1.weight", "1.bias"], masks)] == [True, True]
    assert result.fraction == round(0.5 * 7850) / 7850

    # training by hand: Adam over retain + wrong-labelled forget, the gradient of unchosen entries zeroed
    reference = copy.deepcopy(model)
    opt = torch.optim.Adam(reference.parameters(), lr=1e-2)
    forget = TensorData(splits.forget.X, wrong_labels(splits.forget.y, make_rng(0)))
    for X, y in make_loader(concat(splits.retain, forget), 16, shuffle=True, seed=0):
        opt.zero_grad()
        F.cross_entropy(reference(X), y).backward()
        for p, m in zip(reference.parameters(), masks):
            p.grad *= m
        opt.step()
    assert _close(result.model, reference)
    for p, q, m in zip(result.model.parameters(), model.parameters(), masks):
        assert torch.equal(p[~m], q[~m])  # unchosen entries are bit-identical


def test_saliency_is_the_magnitude_of_the_summed_batch_gradients(splits):
    """SalUn sums the gradients of the batch-mean losses and takes the magnitude of the total (not per batch)."""
    model = _model()
    batches = list(make_loader(splits.forget, 3))  # 8 mixed-label images: batches of 3, 3 and 2
    grads = [torch.autograd.grad(F.cross_entropy(model(X), y), list(model.parameters())) for X, y in batches]
    total = [sum(g[k] for g in grads).abs() for k in range(2)]
    per_batch = [sum(g[k].abs() for g in grads) for k in range(2)]
    scores = gradient_saliency(model, make_loader(splits.forget, 3), "cpu")
    assert all(torch.allclose(scores[n], t, atol=1e-7) for n, t in zip(["1.weight", "1.bias"], total))
    assert not torch.allclose(scores["1.bias"], per_batch[1])  # the batches pull some weights apart


def test_scrub_losses_closed_form():
    g = torch.Generator().manual_seed(1)
    s, t, y, T = torch.randn(5, 10, generator=g), torch.randn(5, 10, generator=g), torch.arange(5), 4.0
    p_t, log_p_s = (t / T).softmax(1), (s / T).log_softmax(1)
    kl = T * T * (p_t * (p_t.log() - log_p_s)).sum(1).mean()
    assert float(scrub.scrub_max_loss(s, t, T)) == pytest.approx(float(-kl), rel=1e-5)
    ce = -s.log_softmax(1)[torch.arange(5), y].mean()
    expected = 0.99 * ce + 0.001 * kl
    assert float(scrub.scrub_min_loss(s, t, y, 0.99, 0.001, T)) == pytest.approx(float(expected), rel=1e-5)


def test_scrub_alternates_max_and_min_passes_with_sgd(splits):
    model = _model()
    config = scrub.Config(num_epochs=3, max_epochs=2, lr=1e-2, batch_size=16, forget_batch_size=4)
    result = scrub.unlearn(model, splits, config, device="cpu", seed=0)

    teacher, student = copy.deepcopy(model), copy.deepcopy(model)
    opt = torch.optim.SGD(student.parameters(), lr=1e-2, momentum=0.9, weight_decay=5e-4)
    forget = make_loader(splits.forget, 4, shuffle=True, seed=0)
    retain = make_loader(splits.retain, 16, shuffle=True, seed=0)
    for epoch in range(3):
        passes = ([(forget, "max")] if epoch < 2 else []) + [(retain, "min")]
        for loader, phase in passes:
            for X, y in loader:
                with torch.no_grad():
                    t = teacher(X)
                if phase == "max":
                    loss = scrub.scrub_max_loss(student(X), t, 4.0)
                else:
                    loss = scrub.scrub_min_loss(student(X), t, y, 0.99, 0.001, 4.0)
                opt.zero_grad()
                loss.backward()
                opt.step()
    assert _close(result.model, student)
    assert len(result.history.step_loss) == 2 * 2 + 3 * 5  # 8 forget images by 4 twice, 72 retain by 16 thrice
    with pytest.raises(ValueError, match="max_epochs"):
        scrub.unlearn(model, splits, scrub.Config(num_epochs=1, max_epochs=2), device="cpu")


def test_scrub_max_pass_runs_over_a_fixed_sample_of_max_steps_batches(splits):
    config = scrub.Config(num_epochs=2, max_epochs=2, lr=1e-2, batch_size=16, forget_batch_size=2, max_steps=3)
    result = scrub.unlearn(_model(), splits, config, device="cpu", seed=0)
    assert len(result.history.step_loss) == 2 * 3 + 2 * 5  # 3 of the 4 forget batches per max pass, 72 retain by 16
    sample = scrub._max_pass_images(splits, config, seed=0)
    assert len(sample) == 6 and torch.equal(sample.X, scrub._max_pass_images(splits, config, seed=0).X)
    assert scrub._max_pass_images(splits, scrub.Config(max_steps=None), seed=0) is splits.forget


def test_scrub_says_when_its_max_pass_diverges(splits):
    """-KL has no lower bound: pushed too fast, the student's logits overflow; SCRUB stops with what to change
    instead of returning a NaN model."""
    config = scrub.Config(num_epochs=1, max_epochs=1, lr=1e30, batch_size=16, forget_batch_size=1)
    with pytest.raises(FloatingPointError, match=r"max pass diverged in epoch 0 .* lower lr \(now 1e\+30\)"):
        scrub.unlearn(_model(), splits, config, device="cpu", seed=0)


def test_scrub_quick_and_full_configs_bound_the_max_pass():
    """The configs the course runs cap the max pass (on the course CNN, a full pass over class 6's ~3,000 quick or
    ~6,000 full images sent the forget-set loss to -inf and NaN, at lr 5e-3 and at the paper's 5e-4 alike)."""
    for name in ("quick", "full"):
        config = scrub.CONFIGS[name]
        assert config.max_steps is not None and config.max_steps * config.forget_batch_size <= 1_500

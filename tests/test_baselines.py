"""Fine-tuning, gradient ascent and seed 003's dummy labels, each against the same steps written out in torch."""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from unlearnlab.data import concat, make_loader, random_splits
from unlearnlab.methods import finetune, gradient_ascent, l1_sparse, random_labels
from unlearnlab.methods.base import wrong_labels


@pytest.fixture()
def splits(mnist_train, mnist_test):
    """60 training images (6 forgotten) and 100 test images."""
    return random_splits(0.1, mnist_train.subset(slice(0, 60)), mnist_test.subset(slice(0, 100)), seed=0)


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 10))


def _adam_by_hand(model: nn.Module, batches: list, loss, lr: float, epochs: int) -> nn.Module:
    """The reference: Adam over ``batches`` (one list per epoch) with ``loss(logits, y)``, written out."""
    model = copy.deepcopy(model)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for epoch in range(epochs):
        for X, y in batches[epoch]:
            opt.zero_grad()
            loss(model(X), y).backward()
            opt.step()
    return model


def _epochs(data, batch_size: int, epochs: int, seed: int = 0) -> list:
    loader = make_loader(data, batch_size, shuffle=True, seed=seed)  # one generator: epoch k continues epoch k-1
    return [list(loader) for _ in range(epochs)]


def _same_weights(a: nn.Module, b: nn.Module) -> bool:
    return all(torch.allclose(p, q, rtol=1e-5, atol=1e-6) for p, q in zip(a.parameters(), b.parameters()))


def test_finetune_is_adam_on_the_retain_set(splits):
    model, before = _model(), _model()
    config = finetune.Config(num_epochs=2, lr=1e-2, batch_size=16)
    result = finetune.unlearn(model, splits, config, device="cpu", seed=3)
    reference = _adam_by_hand(model, _epochs(splits.retain, 16, 2, seed=3), F.cross_entropy, 1e-2, 2)
    assert _same_weights(result.model, reference) and not _same_weights(result.model, model)
    assert _same_weights(model, before) and result.cost.seconds > 0
    assert len(result.history.step_loss) == 2 * 4  # 54 retain images in batches of 16
    assert len(finetune.unlearn(model, splits, "quick", device="cpu").history.epoch_loss) == 2


def test_gradient_ascent_ascends_the_forget_loss(splits):
    model = _model()
    config = gradient_ascent.Config(num_epochs=3, lr=1e-3, batch_size=4)
    result = gradient_ascent.unlearn(model, splits, config, device="cpu", seed=0)
    reference = _adam_by_hand(model, _epochs(splits.forget, 4, 3), lambda z, y: -F.cross_entropy(z, y), 1e-3, 3)
    assert _same_weights(result.model, reference)
    # the recorded loss is minus the cross-entropy of each batch: the forget loss went up
    assert result.history.step_loss[0] < 0 and result.history.step_loss[-1] < result.history.step_loss[0]
    X, y = splits.forget.X[:1], splits.forget.y[:1]
    assert gradient_ascent.ascent_step(model, X, y).item() == pytest.approx(-F.cross_entropy(model(X), y).item())


def test_wrong_labels_are_never_the_true_ones_and_uniform():
    y = torch.arange(10).repeat(2000)
    drawn = wrong_labels(y, torch.Generator().manual_seed(0))
    offset = torch.randint(1, 10, y.shape, generator=torch.Generator().manual_seed(0))
    assert torch.equal(drawn, (y + offset) % 10) and not (drawn == y).any()
    # each of the nine wrong classes gets 1/9 of class 0's 2,000 items (binomial sd 14)
    counts = torch.bincount(drawn[y == 0], minlength=10)
    assert counts[0] == 0 and torch.equal(counts[1:], torch.bincount(offset[y == 0], minlength=10)[1:])
    with pytest.raises(ValueError, match="at least 2 classes"):
        wrong_labels(y, torch.Generator(), num_classes=1)


def test_random_labels_trains_on_retain_plus_relabelled_forget(splits):
    model = _model()
    config = random_labels.Config(num_epochs=1, lr=1e-2, batch_size=20)
    result = random_labels.unlearn(model, splits, config, device="cpu", seed=5)
    dummy = splits.forget.subset(slice(None))
    dummy.y = wrong_labels(splits.forget.y, torch.Generator().manual_seed(5))
    reference = _adam_by_hand(model, _epochs(concat(splits.retain, dummy), 20, 1, seed=5), F.cross_entropy, 1e-2, 1)
    assert _same_weights(result.model, reference)
    assert len(result.history.step_loss) == 3  # 60 images in batches of 20


@pytest.mark.parametrize("method", [gradient_ascent, random_labels])
def test_an_empty_forget_set_is_a_clear_error(splits, method):
    empty = copy.copy(splits)
    empty.forget = splits.forget.subset(slice(0, 0))
    with pytest.raises(ValueError, match="the forget set is empty"):
        method.unlearn(_model(), empty, "quick", device="cpu")


def test_an_empty_retain_set_is_a_clear_error(splits):
    empty = copy.copy(splits)
    empty.retain = splits.retain.subset(slice(0, 0))
    with pytest.raises(ValueError, match="the retain set is empty"):
        finetune.unlearn(_model(), empty, "quick", device="cpu")


def test_l1_sparse_decays_its_weight_once_per_epoch():
    """Jia et al. (2023)'s Unlearn-Sparse code: gamma_e = alpha (1 - e / E), held for every step of epoch e."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(2, 2))
    X, y = torch.ones(1, 1, 1, 2), torch.tensor([0])
    ce = F.cross_entropy(model(X), y).item()
    l1 = sum(p.abs().sum() for p in model.parameters()).item()
    loss_fn = l1_sparse.l1_sparse_step(alpha=0.5, total_steps=6, steps_per_epoch=3)  # 2 epochs of 3 steps
    for gamma in (0.5, 0.5, 0.5, 0.25, 0.25, 0.25):
        assert loss_fn(model, X, y).item() == pytest.approx(ce + gamma * l1, rel=1e-6)
    with pytest.raises(ValueError, match="steps_per_epoch must divide"):
        l1_sparse.l1_sparse_step(0.1, 6, 4)

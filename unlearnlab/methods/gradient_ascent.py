"""Gradient ascent on the forget set (notebook 06): the other baseline every unlearning paper reports ("GA").

Maximise the cross-entropy of the forget set, i.e. minimise L = -CE(f(X_forget), y_forget), so the model
unlearns what it memorised about exactly those images (Thudi et al. 2022, "Unrolling SGD"; Jia et al. 2023's
"GA" baseline). Nothing holds the retain set in place, so a few steps too many ruin the model: the learning rate
and the number of epochs are the whole method.

Reference settings: Jia et al. run GA 5 epochs with SGD at lr 1e-5 to 1e-4 on CIFAR-10 (ResNet-18). Here Adam at
2e-5 for 2 passes over notebook 06's 400 forget images (8 steps of 100, quick and full alike): enough to lift the
forget set's loss towards held-out images' without emptying the other classes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..data import Splits, make_loader
from .base import UnlearningResult, pick_config, require, timed, train_copy


@dataclass(frozen=True)
class Config:
    """Gradient ascent on the forget set."""

    num_epochs: int = 2  # passes over the forget set
    lr: float = 2e-5  # Adam, constant; ascent diverges, so the step is small
    batch_size: int = 100  # forget images per step


CONFIGS = {
    "quick": Config(),
    "full": Config(),
}


def ascent_step(model: nn.Module, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The step loss for :func:`~unlearnlab.training.fit`: minus the cross-entropy, so the optimiser ascends it."""
    return -F.cross_entropy(model(X), y)


def unlearn(
    model: nn.Module,
    splits: Splits,
    config: Config | str = "quick",
    *,
    device: torch.device | str = "cpu",
    seed: int | None = 0,
) -> UnlearningResult:
    """Ascend the forget set's cross-entropy on a copy of ``model``."""
    config = pick_config(CONFIGS, config)
    require(splits, "gradient ascent", "forget")
    with timed() as cost:
        loader = make_loader(splits.forget, config.batch_size, shuffle=True, seed=seed)
        unlearned, history = train_copy(
            model, loader, num_epochs=config.num_epochs, lr=config.lr, loss_fn=ascent_step, device=device, desc="GA"
        )
    return UnlearningResult(unlearned, cost, history)

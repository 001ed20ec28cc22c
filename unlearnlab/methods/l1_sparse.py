"""The l1-sparse fine-tune of Jia et al. (2023) (notebook 06): retain-set cross-entropy plus a decaying L1 term.

"Model Sparsity Can Simplify Machine Unlearning" (NeurIPS 2023), its ``l1-sparse`` unlearning: fine-tune on the
retain set with L = CE(f(X), y) + gamma_e * ||theta||_1, gamma_e = alpha * (1 - e / E) in epoch e of E, decaying
once per epoch as the reference code does (Unlearn-Sparse, ``FT_l1``), so the model is pushed towards sparsity
while it forgets. Over two epochs the L1 term thus weighs alpha, then alpha / 2 (0.75 alpha on average; a decay
at every step would average about alpha / 2).

Reference settings: the paper's CIFAR-10 runs use alpha = 5e-4 and 10 epochs of SGD at lr 0.01. Here Adam at
1e-3, alpha = 5e-4, 2 epochs (quick) / 5 (full) on notebook 06's 3,600 retain images.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..data import Splits
from ..training import StepLoss
from .base import UnlearningResult, pick_config, retain_loader, timed, train_copy


@dataclass(frozen=True)
class Config:
    """The l1-sparse fine-tune's settings."""

    alpha: float = 5e-4  # gamma_0, the L1 weight at the first step (the paper's CIFAR-10 value)
    num_epochs: int = 2  # over the retain set; gamma steps down once per epoch, alpha * (1 - e / num_epochs)
    lr: float = 1e-3  # Adam, constant
    batch_size: int = 128  # images per step


CONFIGS = {
    "quick": Config(num_epochs=2),
    "full": Config(num_epochs=5),
}


def l1_norm(model: nn.Module) -> torch.Tensor:
    """||theta||_1 over every trainable parameter (weights and biases, as the Unlearn-Sparse code)."""
    return sum(p.abs().sum() for p in model.parameters() if p.requires_grad)


def l1_sparse_step(alpha: float, total_steps: int, steps_per_epoch: int = 1) -> StepLoss:
    """A step loss for :func:`~unlearnlab.training.fit`: CE + alpha * (1 - e / E) * ||theta||_1 in epoch e of the
    E = total_steps / steps_per_epoch epochs (``steps_per_epoch=1``: a decay at every step)."""
    if total_steps < 1:
        raise ValueError(f"total_steps must be positive, got {total_steps}")
    if steps_per_epoch < 1 or total_steps % steps_per_epoch:
        raise ValueError(f"steps_per_epoch must divide total_steps ({total_steps}), got {steps_per_epoch}")
    epochs, step = total_steps // steps_per_epoch, 0

    def loss_fn(model: nn.Module, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        nonlocal step
        gamma = alpha * max(0.0, 1.0 - (step // steps_per_epoch) / epochs)  # 0 <= gamma_e <= alpha
        step += 1
        return F.cross_entropy(model(X), y) + gamma * l1_norm(model)

    return loss_fn


def unlearn(
    model: nn.Module,
    splits: Splits,
    config: Config | str = "quick",
    *,
    device: torch.device | str = "cpu",
    seed: int | None = 0,
) -> UnlearningResult:
    """Fine-tune a copy of ``model`` on the retain set with the L1 penalty, decayed once per epoch."""
    config = pick_config(CONFIGS, config)
    with timed() as cost:
        loader = retain_loader(splits, config.batch_size, seed)
        loss_fn = l1_sparse_step(config.alpha, config.num_epochs * len(loader), len(loader))
        unlearned, history = train_copy(
            model, loader, num_epochs=config.num_epochs, lr=config.lr, loss_fn=loss_fn, device=device, desc="l1"
        )
    return UnlearningResult(unlearned, cost, history)

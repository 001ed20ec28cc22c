"""Fine-tune on the retain set (notebook 06): the baseline every unlearning paper reports ("FT").

Keep training the original model on the retain set only, so that what it memorised about the forget set fades
(catastrophic forgetting) while the rest is kept. Golatkar et al. (2020) and Jia et al. (2023) use it as the
simplest baseline; the NeurIPS 2023 unlearning challenge's starting kit ships it as its example method.

Reference settings: the starting kit fine-tunes 5 epochs with SGD (lr 0.1, momentum 0.9, cosine schedule);
Jia et al. 10 epochs with SGD at lr 0.01-0.1 on CIFAR-10. Here Adam at 1e-3 for 2 epochs (quick) / 5 (full)
on notebook 06's 3,600 retain images, so the cost stays a small share of retraining's 20 epochs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..data import Splits
from .base import UnlearningResult, pick_config, retain_loader, timed, train_copy


@dataclass(frozen=True)
class Config:
    """Fine-tuning on the retain set."""

    num_epochs: int = 2  # passes over the retain set
    lr: float = 1e-3  # Adam, constant
    batch_size: int = 128  # images per step


CONFIGS = {
    "quick": Config(num_epochs=2),
    "full": Config(num_epochs=5),
}


def unlearn(
    model: nn.Module,
    splits: Splits,
    config: Config | str = "quick",
    *,
    device: torch.device | str = "cpu",
    seed: int | None = 0,
) -> UnlearningResult:
    """Fine-tune a copy of ``model`` on the retain set with cross-entropy."""
    config = pick_config(CONFIGS, config)
    with timed() as cost:
        loader = retain_loader(splits, config.batch_size, seed)
        unlearned, history = train_copy(
            model, loader, num_epochs=config.num_epochs, lr=config.lr, device=device, desc="FT"
        )
    return UnlearningResult(unlearned, cost, history)

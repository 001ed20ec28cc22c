"""SalUn: random labels for the forget set, trained only on the salient weights (a standard baseline).

Fan, Liu, Zhang, Wei, Wong and Liu, "SalUn: Empowering Machine Unlearning via Gradient-based Weight Saliency"
(ICLR 2024). Two steps:

1. *Weight saliency*: the magnitude of the forget-set loss gradient, |sum_b d CE_b / d theta| (the gradients
   of the batch-mean losses summed over the batches, then the magnitude of the total), ranked over the whole
   network; the salient weights are the top ``fraction`` (the paper's default threshold keeps half of
   them, 50 %). This is :func:`unlearnlab.methods.saliency.gradient_saliency` and ``top_fraction_mask``, the
   course's notebook-02 saliency; candidates are conv and linear weights and biases (BatchNorm stays frozen).
2. *Random labelling* (the paper's "RL", :mod:`unlearnlab.methods.random_labels`, whose labels both draw with
   :func:`~unlearnlab.methods.base.wrong_labels`): fine-tune on the forget images with random labels plus the
   retain set with its true labels, updating only the salient weights (the others get a zero gradient).

The public code (github.com/OPTML-Group/Unlearn-Saliency, ``unlearn/RL.py``) draws the random labels from all
classes; here they are drawn from the *other* classes, so a forget image is never taught its own label. It runs
10 epochs of SGD at lr 0.01-0.1 on CIFAR-10; the course uses Adam at 1e-3 (the other fine-tunes' optimiser)
and one or two epochs on MNIST.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ..data import Splits, TensorData, concat, make_loader
from ..training import make_rng
from .base import UnlearningResult, pick_config, require, timed, train_copy, wrong_labels
from .saliency import Masks, gradient_saliency, mask_fraction, top_fraction_mask


@dataclass(frozen=True)
class Config:
    """SalUn settings: the saliency mask and the random-label fine-tune."""

    fraction: float = 0.5  # share of conv/linear entries that are salient and trained (the paper's 50 %)
    num_epochs: int = 1  # passes over forget (random labels) + retain data
    lr: float = 1e-3  # Adam, no weight decay: unchosen entries must not move
    batch_size: int = 128  # images per step


CONFIGS: dict[str, Config] = {
    "quick": Config(num_epochs=1),
    "full": Config(num_epochs=2),
}


@dataclass
class SalUnResult(UnlearningResult):
    """The unlearned model with its saliency mask."""

    masks: Masks = field(default_factory=dict)  # parameter name -> bool tensor (True = salient, trained)
    fraction: float = 0.0  # share of all conv/linear entries that were trained


def unlearn(
    model: nn.Module,
    splits: Splits,
    config: Config | str = "quick",
    *,
    device: torch.device | str = "cpu",
    seed: int | None = 0,
) -> SalUnResult:
    """SalUn on a copy of ``model``: saliency mask from the forget set, then random-label fine-tuning of it."""
    config = pick_config(CONFIGS, config)
    require(splits, "SalUn", "forget")
    device = torch.device(device)
    with timed() as cost:
        scores = gradient_saliency(model, make_loader(splits.forget, 256), device)
        masks = top_fraction_mask(scores, config.fraction)
        forget = TensorData(splits.forget.X, wrong_labels(splits.forget.y, make_rng(seed)))
        unlearned, history = train_copy(
            model,
            make_loader(concat(splits.retain, forget), config.batch_size, shuffle=True, seed=seed),
            num_epochs=config.num_epochs,
            lr=config.lr,
            device=device,
            desc="SalUn",
            masks=masks,
        )
    return SalUnResult(unlearned, cost, history, masks=masks, fraction=mask_fraction(masks))

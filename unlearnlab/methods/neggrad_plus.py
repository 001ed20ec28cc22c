"""NegGrad+: descend on the retain set and ascend on the forget set at once (a standard baseline).

Kurmanji, Triantafillou, Hayes and Triantafillou, "Towards Unbounded Machine Unlearning" (NeurIPS 2023),
which introduces it as a stronger gradient-ascent baseline for SCRUB: each step takes a retain batch and a
forget batch and minimises

    L = alpha * CE(f(X_r), y_r) - (1 - alpha) * CE(f(X_f), y_f)

Plain gradient ascent (alpha = 0) destroys the model; the retain term holds the rest in place, and alpha close
to 1 keeps the unbounded ascent term small. The paper tunes alpha (0.9-0.999) and the learning rate per
setting; the course uses Adam, as every other method here, alpha = 0.99 and lr = 1e-4, with batches of 128
retain and 32 forget images (SCRUB's own batch sizes). One epoch is one pass over the retain set; the forget set
is cycled alongside.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..data import BatchLoader, Splits, make_loader
from .base import UnlearningResult, pick_config, require, timed, train_copy


@dataclass(frozen=True)
class Config:
    """NegGrad+ settings."""

    alpha: float = 0.99  # weight of the retain cross-entropy; 1 - alpha weighs the (negated) forget one
    num_epochs: int = 1  # passes over the retain set
    lr: float = 1e-4  # Adam, constant
    batch_size: int = 128  # retain images per step
    forget_batch_size: int = 32  # forget images per step (cycled: the forget set is smaller)


CONFIGS: dict[str, Config] = {
    "quick": Config(num_epochs=1),
    "full": Config(num_epochs=3),
}


def neggrad_plus_loss(
    retain_logits: torch.Tensor,
    retain_y: torch.Tensor,
    forget_logits: torch.Tensor,
    forget_y: torch.Tensor,
    alpha: float,
) -> torch.Tensor:
    """alpha * CE(retain) - (1 - alpha) * CE(forget), each cross-entropy averaged over its batch."""
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    return alpha * F.cross_entropy(retain_logits, retain_y) - (1 - alpha) * F.cross_entropy(forget_logits, forget_y)


def cycle(loader: BatchLoader) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The loader's batches over and over (a new shuffle each pass)."""
    while True:
        yield from loader


def unlearn(
    model: nn.Module,
    splits: Splits,
    config: Config | str = "quick",
    *,
    device: torch.device | str = "cpu",
    seed: int | None = 0,
) -> UnlearningResult:
    """Fine-tune a copy of ``model`` with NegGrad+ (retain descent, forget ascent); class or random forgetting."""
    config = pick_config(CONFIGS, config)
    require(splits, "NegGrad+", "forget", "retain")
    device = torch.device(device)
    with timed() as cost:
        forget_batches = cycle(make_loader(splits.forget, config.forget_batch_size, shuffle=True, seed=seed))

        def step(net: nn.Module, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            X_f, y_f = (t.to(device) for t in next(forget_batches))
            return neggrad_plus_loss(net(X), y, net(X_f), y_f, config.alpha)

        unlearned, history = train_copy(
            model,
            make_loader(splits.retain, config.batch_size, shuffle=True, seed=seed),
            num_epochs=config.num_epochs,
            lr=config.lr,
            loss_fn=step,
            device=device,
            desc="NegGrad+",
        )
    return UnlearningResult(unlearned, cost, history)

"""Relabel a class and fine-tune only some layers (seeds 000 and 001; notebook 01).

The forget class is taught as another class (e.g. 6 -> 3) with every layer frozen but the ones named
trainable: the features stay as they were, and only the decision layer moves.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import torch
from torch import nn

from ..data import Splits, make_loader, relabelled_training_set
from ..training import fit
from .base import Cost, UnlearningResult, clone, timed


@dataclass(frozen=True)
class RelabelConfig:
    """Relabel-and-fine-tune settings."""

    mapping: dict[int, int] = field(default_factory=lambda: {6: 3})  # forget class -> class it is taught as
    trainable: tuple[str, ...] = ("fc3",)  # parameter-name prefixes left trainable; all else is frozen
    num_epochs: int = 1
    lr: float = 1e-3  # Adam, constant: small steps keep the other classes where they were
    batch_size: int = 128


CONFIGS = {
    "quick": RelabelConfig(num_epochs=1),
    "full": RelabelConfig(num_epochs=2),
}


def freeze_all_but(model: nn.Module, trainable: Iterable[str]) -> list[str]:
    """Freeze every parameter whose name does not start with one of ``trainable``; returns the trainable names."""
    prefixes = tuple(trainable)
    names = [name for name, _ in model.named_parameters()]
    unknown = [p for p in prefixes if not any(n.startswith(p) for n in names)]
    if unknown:
        raise ValueError(
            f"no parameter starts with {unknown[0]!r}; the model has {sorted({n.split('.')[0] for n in names})}"
        )
    kept = []
    for name, param in model.named_parameters():
        param.requires_grad = name.startswith(prefixes)
        if param.requires_grad:
            kept.append(name)
    return kept


def relabel_and_finetune(
    model: nn.Module,
    splits: Splits,
    config: RelabelConfig = RelabelConfig(),
    device: str | torch.device = "auto",
    seed: int = 0,
) -> UnlearningResult:
    """Fine-tune a copy of ``model`` on retain + relabelled forget data with only ``config.trainable`` layers."""
    if set(config.mapping) != set(splits.forget_classes):
        raise ValueError(
            f"the mapping {config.mapping} must relabel exactly the forget classes {splits.forget_classes}"
        )
    cost = Cost()
    with timed(cost):
        unlearned = clone(model)
        freeze_all_but(unlearned, config.trainable)
        train = relabelled_training_set(splits, config.mapping)
        loader = make_loader(train, config.batch_size, shuffle=True, seed=seed)
        history = fit(unlearned, loader, num_epochs=config.num_epochs, lr=config.lr, device=device, desc="relabel")
    return UnlearningResult(unlearned, cost, history)

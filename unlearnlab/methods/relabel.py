"""Relabel a class and fine-tune only some layers (notebook 01; Shani, *DLAI Project - Machine Unlearning*, 2024,
and Fabbri, *Selective Unlearning in Neural Networks: Forgetting and Relearning Classes*, 2024).

The forget class is taught as another class (e.g. 6 -> 3) with every layer frozen but the ones named
trainable: the features stay as they were, and only the decision layer moves.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn

from ..data import Splits, make_loader, relabelled_training_set
from ..training import fit
from .base import UnlearningResult, clone, pick_config, relabel_mapping, timed


@dataclass(frozen=True)
class Config:
    """Relabel-and-fine-tune settings."""

    relabel_to: int = 3  # the forget class's images are taught as this class (Shani, 2024: 6 -> 3)
    trainable: tuple[str, ...] = ("fc3",)  # parameter-name prefixes left trainable; all else is frozen
    num_epochs: int = 1  # passes over retain + relabelled forget data
    lr: float = 1e-3  # Adam, constant: small steps keep the other classes where they were
    batch_size: int = 128  # images per step


CONFIGS = {
    "quick": Config(num_epochs=1),
    "full": Config(num_epochs=2),
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


def unlearn(
    model: nn.Module,
    splits: Splits,
    config: Config | str = "quick",
    *,
    device: torch.device | str = "cpu",
    seed: int | None = 0,
) -> UnlearningResult:
    """Fine-tune a copy of ``model`` on retain + relabelled forget data with only ``config.trainable`` layers."""
    config = pick_config(CONFIGS, config)
    mapping = relabel_mapping(splits.forget_classes, config.relabel_to)
    with timed() as cost:
        unlearned = clone(model)
        freeze_all_but(unlearned, config.trainable)
        train = relabelled_training_set(splits, mapping)
        loader = make_loader(train, config.batch_size, shuffle=True, seed=seed)
        history = fit(unlearned, loader, num_epochs=config.num_epochs, lr=config.lr, device=device, desc="relabel")
    return UnlearningResult(unlearned.eval(), cost, history)

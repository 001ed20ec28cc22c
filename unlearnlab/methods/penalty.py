"""A penalty loss that forgets a class while teaching its images as another (notebook 02; Shani and Fabbri, 2024).

The story: relabel the forget class (6 as 3), keep cross-entropy for everything, and add a penalty on
predicting 6. Shani's report (*DLAI Project - Machine Unlearning*, 2024) says its penalty sometimes drove the
total loss negative and destabilised training; subtracting the class-6 cross-entropy is one penalty that does
that, since it is unbounded below. The bounded penalty ``-log(1 - p6)`` is zero when 6 is not
predicted and its gradient vanishes with ``p6``, so it stops pushing once the class is gone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..data import Splits, make_loader, relabelled_training_set
from .base import UnlearningResult, clone, pick_config, relabel_mapping, timed, train_copy
from .saliency import Masks, gradient_saliency, layer_masks, mask_fraction, top_fraction_mask

# penalty(logits (B, C), forget_class) -> scalar
Penalty = Callable[[torch.Tensor, int], torch.Tensor]


def unbounded_penalty(logits: torch.Tensor, forget_class: int) -> torch.Tensor:
    """An unbounded penalty, the kind Shani (2024) saw go negative: mean log p_6 = minus the class-6 cross-entropy.

    Unbounded below (-> -inf as p_6 -> 0).
    """
    return F.log_softmax(logits, dim=1)[:, forget_class].mean()


def bounded_penalty(logits: torch.Tensor, forget_class: int) -> torch.Tensor:
    """Mean of -log(1 - p_6) over the batch: >= 0, zero when p_6 = 0, and finite even for huge logits.

    -log(1 - p_6) = logsumexp(all logits) - logsumexp(logits without class 6), computed without forming 1 - p_6.
    """
    others = torch.cat([logits[:, :forget_class], logits[:, forget_class + 1 :]], dim=1)  # (B, C-1)
    return (torch.logsumexp(logits, dim=1) - torch.logsumexp(others, dim=1)).mean()


def penalty_loss(
    logits: torch.Tensor, y: torch.Tensor, forget_class: int, weight: float = 1.0, penalty: Penalty = bounded_penalty
) -> torch.Tensor:
    """Cross-entropy on the (already relabelled) labels ``y`` plus ``weight`` times the penalty on ``forget_class``.

    L = CE(logits, y) + weight * penalty(logits, forget_class); the penalty applies to every image, since no
    image should be called a 6 any more.
    """
    if not 0 <= forget_class < logits.shape[1]:
        raise ValueError(f"forget_class {forget_class} is outside the model's classes 0-{logits.shape[1] - 1}")
    return F.cross_entropy(logits, y) + weight * penalty(logits, forget_class)


PENALTIES: dict[str, Penalty] = {"bounded": bounded_penalty, "unbounded": unbounded_penalty, "none": lambda z, c: 0}


@dataclass(frozen=True)
class Config:
    """How to unlearn with a penalty loss and a subset of trainable weights."""

    relabel_to: int = 3  # the forget class's images are taught as this class
    trainable: str = "saliency"  # "saliency" (top `fraction` by gradient) or a layer name, e.g. "fc3"
    fraction: float = 0.05  # share of conv/linear entries trained when trainable="saliency"
    penalty: str = "bounded"  # "bounded" (-log(1 - p6)), "unbounded" (log p6, unbounded below) or "none"
    weight: float = 1.0  # penalty weight
    num_epochs: int = 1  # passes over retain + relabelled forget data
    lr: float = 1e-3  # Adam, no weight decay: frozen entries must not move
    batch_size: int = 128  # images per step


CONFIGS: dict[str, Config] = {
    "quick": Config(num_epochs=1),
    "full": Config(num_epochs=3),
}


@dataclass
class PenaltyResult(UnlearningResult):
    """The unlearned model with the trainable entries it used."""

    masks: Masks = field(default_factory=dict)  # parameter name -> bool tensor (True = trained)
    fraction: float = 0.0  # share of all conv/linear entries that were trainable


def choose_masks(model: nn.Module, splits: Splits, config: Config, device: torch.device) -> Masks:
    """The trainable entries: saliency-chosen top fraction, or a whole named layer."""
    if config.trainable == "saliency":
        scores = gradient_saliency(model, make_loader(splits.forget, 256), device)
        return top_fraction_mask(scores, config.fraction)
    return layer_masks(model, [config.trainable])


def unlearn(
    model: nn.Module,
    splits: Splits,
    config: Config | str = "quick",
    *,
    device: torch.device | str = "cpu",
    seed: int | None = 0,
    masks: Mapping[str, torch.Tensor] | None = None,
) -> PenaltyResult:
    """Relabel the forget class, then fine-tune only the chosen entries with CE + penalty; the input is not modified.

    ``masks`` overrides the choice made by ``config.trainable`` (see :mod:`unlearnlab.methods.saliency`).
    """
    config = pick_config(CONFIGS, config)
    if len(splits.forget_classes) != 1:
        raise ValueError(f"the penalty method forgets one class at a time, got {splits.forget_classes}")
    if config.penalty not in PENALTIES:
        raise ValueError(f"unknown penalty {config.penalty!r}: choose one of {', '.join(map(repr, PENALTIES))}")
    (forget_class,) = splits.forget_classes
    device = torch.device(device)
    with timed() as cost:
        masks = dict(masks) if masks is not None else choose_masks(clone(model).to(device), splits, config, device)
        data = relabelled_training_set(splits, relabel_mapping(splits.forget_classes, config.relabel_to))
        penalty = PENALTIES[config.penalty]

        def step(net: nn.Module, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return penalty_loss(net(X), y, forget_class, config.weight, penalty)

        student, history = train_copy(
            model,
            make_loader(data, config.batch_size, shuffle=True, seed=seed),
            num_epochs=config.num_epochs,
            lr=config.lr,
            loss_fn=step,
            device=device,
            desc=f"penalty ({config.penalty})",
            masks=masks,
        )
    return PenaltyResult(student, cost, history, masks=masks, fraction=mask_fraction(masks))

"""Bad teaching (notebook 03): a competent and an incompetent teacher, one student.

Chundawat et al., "Can Bad Teaching Induce Forgetting? Unlearning in Deep Networks Using an Incompetent
Teacher" (AAAI 2023). The student starts as a copy of the original model and imitates the original (the
competent teacher) on a share of the retained data and a randomly initialised network (the incompetent
teacher) on the forget data: L = T^2 KL(teacher_i || student), teacher_i chosen per image. The paper revisits
30 % of the retain set, for one epoch, with Adam at 1e-4 and T = 1.

No label is read: the loss only needs to know which images belong to the forget set, so random forgetting works
as class forgetting does.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..data import Splits, TensorData, make_loader, stratified_subset
from .base import UnlearningResult, clone, fresh_model, pick_config, require, timed, train_copy
from .losses import kd_loss, soft_targets


@dataclass(frozen=True)
class Config:
    """Bad teaching: imitate the original on retained data and a random network on the forget data."""

    retain_fraction: float = 0.3  # share of the retain set the student revisits (the paper uses 30 %)
    temperature: float = 1.0  # KL temperature T (the paper's 1)
    num_epochs: int = 1  # passes over forget + retain subset
    lr: float = 1e-4  # Adam; the paper's 1e-4 needs its full-size forget set, small subsets need more
    batch_size: int = 128  # images per step


CONFIGS: dict[str, Config] = {
    "quick": Config(lr=1e-3),  # ~20 steps on the quick subset
    "full": Config(lr=3e-4),
}


@dataclass
class BadTeacherResult(UnlearningResult):
    """The student, with the size of the retain subset it revisited."""

    retain_size: int = 0  # retained images the student saw


def unlearn(
    model: nn.Module,
    splits: Splits,
    config: Config | str = "quick",
    *,
    device: torch.device | str = "cpu",
    seed: int | None = 0,
) -> BadTeacherResult:
    """Start from ``model``; distil it on retained images and a fresh random network on the forget images.

    ``seed`` draws the incompetent teacher, the retain subset and the shuffling order.
    """
    config = pick_config(CONFIGS, config)
    if not 0 < config.retain_fraction <= 1:
        raise ValueError(f"retain_fraction must be in (0, 1], got {config.retain_fraction}")
    require(splits, "bad teaching", "forget")
    device = torch.device(device)
    seed_value = 0 if seed is None else seed
    with timed() as cost:
        good = clone(model).to(device).eval()
        bad = fresh_model(good, seed).eval()
        size = max(1, round(config.retain_fraction * len(splits.retain)))
        retain = stratified_subset(splits.retain, size, seed=seed_value)
        # the "labels" say which teacher an image gets: 1 for the forget set (bad teacher), 0 for retained
        is_forget = torch.cat([torch.zeros(len(retain)), torch.ones(len(splits.forget))]).long()
        data = TensorData(torch.cat([retain.X, splits.forget.X]), is_forget)

        def step(net: nn.Module, X: torch.Tensor, flag: torch.Tensor) -> torch.Tensor:
            # L = T^2 * KL(teacher_i || student) with teacher_i = bad on forget images, good on the rest
            with torch.no_grad():
                t_logits = torch.where(flag.bool()[:, None], bad(X), good(X))  # (B, C)
            return kd_loss(net(X), soft_targets(t_logits, config.temperature), config.temperature)

        student, history = train_copy(
            model,
            make_loader(data, config.batch_size, shuffle=True, seed=seed),
            num_epochs=config.num_epochs,
            lr=config.lr,
            loss_fn=step,
            device=device,
            desc="bad teacher",
        )
    return BadTeacherResult(student, cost, history, retain_size=size)

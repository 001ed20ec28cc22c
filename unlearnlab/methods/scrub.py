"""SCRUB: a student that stays close to the original on the retain set and moves away from it on the forget set.

Kurmanji, Triantafillou, Hayes and Triantafillou, "Towards Unbounded Machine Unlearning" (NeurIPS 2023). The
student starts as a copy of the original model (the teacher, frozen). Each epoch alternates

- a *max* pass over the forget set (only in the first ``max_epochs`` epochs): minimise -KL(teacher || student),
  i.e. push the student's outputs away from the teacher's on the images to forget;
- a *min* pass over the retain set: minimise gamma * CE(student, y) + alpha * KL(teacher || student).

KL is the temperature-softened, T^2-scaled distillation KL (:func:`unlearnlab.methods.losses.kd_loss`, the
``DistillKL`` of the public code). Reference settings of the public code (github.com/meghdadk/SCRUB, its
large-scale notebook ``large_scale_unlearning.ipynb``): SGD with momentum 0.9 and weight decay 5e-4 at lr 5e-4,
T = 4, gamma = 0.99, alpha = 0.001, 3 epochs of which the first 2 have a max pass, retain batches of 128 and
forget batches of 32.
The full profile keeps them; the quick profile runs one epoch. Both cap the max pass at 32 forget batches
(``max_steps``): -KL has no lower bound, and a whole pass over a forgotten MNIST class (thousands of images, where
the public code's forget sets are small) pushes the student's logits to infinity; a pass that diverges anyway
raises an error that says what to lower.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..data import Splits, TensorData, make_loader
from ..training import History, fit
from .base import UnlearningResult, clone, pick_config, require, timed
from .losses import kd_loss, soft_targets


@dataclass(frozen=True)
class Config:
    """SCRUB settings (the public code's names in brackets)."""

    num_epochs: int = 3  # epochs, each a min pass over the retain set (sgda_epochs)
    max_epochs: int = 2  # the first epochs that also run a max pass over the forget set (msteps)
    gamma: float = 0.99  # weight of the retain cross-entropy (gamma)
    alpha: float = 0.001  # weight of the retain KL to the teacher (alpha)
    temperature: float = 4.0  # KL temperature (kd_T)
    lr: float = 5e-4  # SGD learning rate (sgda_learning_rate)
    momentum: float = 0.9  # SGD momentum (sgda_momentum)
    weight_decay: float = 5e-4  # SGD weight decay (sgda_weight_decay)
    batch_size: int = 128  # retain images per step (sgda_batch_size)
    forget_batch_size: int = 32  # forget images per step (del_batch_size)
    max_steps: int | None = None  # forget batches per max pass, a fixed seeded sample (None: the whole forget set)


CONFIGS: dict[str, Config] = {
    # the max pass sees 32 forget batches: a whole pass over class 6 (~90 quick, ~190 full batches) drove the course
    # CNN's forget-set loss to -inf and its weights to NaN, at the quick profile's former lr 5e-3 and at 5e-4 alike
    "quick": Config(num_epochs=1, max_epochs=1, max_steps=32),
    "full": Config(max_steps=32),
}


def scrub_max_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """The max step's loss on forget images: -T^2 KL(softmax(teacher / T) || softmax(student / T))."""
    return -kd_loss(student_logits, soft_targets(teacher_logits, temperature), temperature)


def scrub_min_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    y: torch.Tensor,
    gamma: float,
    alpha: float,
    temperature: float,
) -> torch.Tensor:
    """The min step's loss on retain images: gamma * CE(student, y) + alpha * T^2 KL(teacher || student)."""
    kl = kd_loss(student_logits, soft_targets(teacher_logits, temperature), temperature)
    return gamma * F.cross_entropy(student_logits, y) + alpha * kl


def _max_pass_images(splits: Splits, config: Config, seed: int | None) -> TensorData:
    """The forget images a max pass runs over: all of them, or a fixed seeded sample of ``max_steps`` batches."""
    size = None if config.max_steps is None else config.max_steps * config.forget_batch_size
    if size is None or size >= len(splits.forget):
        return splits.forget
    rng = torch.Generator().manual_seed(0 if seed is None else seed)
    return splits.forget.subset(torch.randperm(len(splits.forget), generator=rng)[:size])


def _check_finite(step_loss: list[float], epoch: int, config: Config) -> None:
    """Raise a clear error when the max pass diverged: -KL has no lower bound, and too long or too fast a push
    away from the teacher sends the student's logits (then its weights) to infinity."""
    bad = next((k for k, loss in enumerate(step_loss) if not math.isfinite(loss)), None)
    if bad is not None:
        raise FloatingPointError(
            f"SCRUB's max pass diverged in epoch {epoch} at forget step {bad} of {len(step_loss)} (loss "
            f"{step_loss[bad]}): lower lr (now {config.lr}) or max_steps (now {config.max_steps})"
        )


def unlearn(
    model: nn.Module,
    splits: Splits,
    config: Config | str = "quick",
    *,
    device: torch.device | str = "cpu",
    seed: int | None = 0,
) -> UnlearningResult:
    """SCRUB on a copy of ``model`` (the frozen original is the teacher); class or random forgetting."""
    config = pick_config(CONFIGS, config)
    require(splits, "SCRUB", "forget", "retain")
    if not 0 <= config.max_epochs <= config.num_epochs:
        raise ValueError(f"max_epochs must be in [0, num_epochs], got {config.max_epochs}")
    device = torch.device(device)
    with timed() as cost:
        teacher = clone(model).to(device).eval()
        student = clone(model).to(device)
        optimizer = torch.optim.SGD(
            student.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
        )
        T = config.temperature

        def max_step(net: nn.Module, X: torch.Tensor, _: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                t_logits = teacher(X)
            return scrub_max_loss(net(X), t_logits, T)

        def min_step(net: nn.Module, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                t_logits = teacher(X)
            return scrub_min_loss(net(X), t_logits, y, config.gamma, config.alpha, T)

        forget = make_loader(_max_pass_images(splits, config, seed), config.forget_batch_size, shuffle=True, seed=seed)
        retain = make_loader(splits.retain, config.batch_size, shuffle=True, seed=seed)
        history = History()
        for epoch in range(config.num_epochs):
            phases = [("max", forget, max_step)] if epoch < config.max_epochs else []
            for phase, loader, step in [*phases, ("min", retain, min_step)]:
                part = fit(student, loader, optimizer=optimizer, loss_fn=step, device=device, desc=f"SCRUB {phase}")
                if phase == "max":
                    _check_finite(part.step_loss, epoch, config)
                history.step_loss += part.step_loss
                history.epoch_loss += part.epoch_loss
    history.seconds = cost.seconds
    return UnlearningResult(student.eval(), cost, history)

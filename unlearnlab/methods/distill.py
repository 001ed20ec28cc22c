"""Knowledge distillation that leaves a class out (notebook 03; Shani, *DLAI Project - Machine Unlearning*, 2024).

Student: same architecture as the teacher (the original model), trained from scratch on the relabelled data
(6 taught as 3) with L = alpha * CE(student, y) + (1 - alpha) * T^2 * KL(targets || softmax(student / T)),
where the targets are the teacher's softened outputs with the forget class's mass moved to its new label,
so the forgotten class cannot leak back through the teacher.

The KL term and the soft targets (:func:`~unlearnlab.methods.losses.kd_loss`, ``soft_targets``,
``soft_targets_without``) are in :mod:`unlearnlab.methods.losses`: the bad teacher, SCRUB, GKT and the zero-shot
student use them too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..data import Splits, make_loader, relabelled_training_set
from ..training import fit
from .base import UnlearningResult, clone, fresh_model, pick_config, relabel_mapping, timed
from .losses import kd_loss, soft_targets, soft_targets_without


def move_class_mass(probs: torch.Tensor, forget_class: int, to: int) -> torch.Tensor:
    """Probabilities (B, C) with the forget class's mass added to class ``to`` and the forget class set to 0."""
    num_classes = probs.shape[1]
    for c in (forget_class, to):
        if not 0 <= c < num_classes:
            raise ValueError(f"class {c} is outside the model's classes 0-{num_classes - 1}")
    if forget_class == to:
        raise ValueError(f"moving class {forget_class}'s mass onto itself changes nothing: pick another class")
    out = probs.clone()
    out[:, to] += out[:, forget_class]
    out[:, forget_class] = 0.0
    return out


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """The classic distillation term: T^2 * KL(softmax(teacher / T) || softmax(student / T)), batchmean."""
    return kd_loss(student_logits, soft_targets(teacher_logits.detach(), temperature), temperature)


def double_softmax_kd_loss(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float
) -> torch.Tensor:
    """A hypothesis for the flat distillation loss Shani (2024) reports: softmax applied twice.

    Its models ended in a softmax layer, and the distiller softened those *probabilities* again. Values in
    [0, 1] divided by T give almost uniform distributions for any student, so the KL term is tiny, nearly
    constant, and its gradient nearly zero: the curve stays flat and the student learns from the labels alone.
    """
    p_student, p_teacher = F.softmax(student_logits, dim=1), F.softmax(teacher_logits, dim=1)
    return distillation_loss(p_student, p_teacher, temperature)


# teacher-target handling: (teacher_logits, forget_class, relabel_to, T) -> target probabilities (B, C)
TargetRule = Callable[[torch.Tensor, int, int, float], torch.Tensor]
TARGET_RULES: dict[str, TargetRule] = {
    "move": lambda z, c, to, T: move_class_mass(soft_targets(z, T), c, to),
    "drop": lambda z, c, to, T: soft_targets_without(z, [c], T),
    "keep": lambda z, c, to, T: soft_targets(z, T),  # leaks the forget class back into the student
}


@dataclass(frozen=True)
class Config:
    """How the student learns from the labels and from the teacher."""

    relabel_to: int = 3  # the forget class's images are taught as this class
    temperature: float = 4.0  # softening T of both distributions
    alpha: float = 0.5  # weight of the cross-entropy; 1 - alpha goes to the distillation term
    targets: str = "move"  # teacher targets: "move" (6's mass to 3), "drop" (renormalise without 6) or "keep"
    loss: str = "kd"  # "kd" (log-probabilities, correct) or "double_softmax" (the double-softmax hypothesis)
    num_epochs: int = 2  # passes over retain + relabelled forget data
    lr: float = 3e-3  # peak Adam learning rate (one-cycle schedule)
    batch_size: int = 128  # images per step


CONFIGS: dict[str, Config] = {
    "quick": Config(num_epochs=2),
    "full": Config(num_epochs=6),
}

LOSSES = ("kd", "double_softmax")


@dataclass
class DistillParts:
    """The two terms of the student's loss at every step (before weighting)."""

    ce: list[float] = field(default_factory=list)  # CE(student, relabelled y)
    kd: list[float] = field(default_factory=list)  # T^2 KL(targets || student) (or the double-softmax one)


@dataclass
class DistillResult(UnlearningResult):
    """The student, with both loss terms per step."""

    parts: DistillParts = field(default_factory=DistillParts)


def unlearn(
    model: nn.Module,
    splits: Splits,
    config: Config | str = "quick",
    *,
    device: torch.device | str = "cpu",
    seed: int | None = 0,
) -> DistillResult:
    """Train a fresh student on the relabelled data with CE + distillation from ``model`` (the teacher).

    ``seed`` draws the student's initial weights and the shuffling order.
    """
    config = pick_config(CONFIGS, config)
    if len(splits.forget_classes) != 1:
        raise ValueError(f"distillation forgets one class at a time, got {splits.forget_classes}")
    for name, choices in (("targets", tuple(TARGET_RULES)), ("loss", LOSSES)):
        if getattr(config, name) not in choices:
            raise ValueError(f"unknown {name} {getattr(config, name)!r}: choose one of {', '.join(map(repr, choices))}")
    if not 0 <= config.alpha <= 1:
        raise ValueError(f"alpha must be in [0, 1], got {config.alpha}")
    (forget_class,) = splits.forget_classes
    device = torch.device(device)
    rule = TARGET_RULES[config.targets]
    parts = DistillParts()
    with timed() as cost:
        teacher = clone(model).to(device).eval()
        student = fresh_model(teacher, seed)
        data = relabelled_training_set(splits, relabel_mapping(splits.forget_classes, config.relabel_to))

        def step(net: nn.Module, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            # L = alpha * CE(s, y) + (1 - alpha) * T^2 * KL(targets || softmax(s / T))
            with torch.no_grad():
                t_logits = teacher(X)  # (B, C)
            s_logits = net(X)  # (B, C)
            if config.loss == "double_softmax":  # the bug ignores the target rule: it never sees logits
                kd = double_softmax_kd_loss(s_logits, t_logits, config.temperature)
            else:
                targets = rule(t_logits, forget_class, config.relabel_to, config.temperature)
                kd = kd_loss(s_logits, targets, config.temperature)
            ce = F.cross_entropy(s_logits, y)
            parts.ce.append(ce.item())
            parts.kd.append(kd.item())
            return config.alpha * ce + (1 - config.alpha) * kd

        history = fit(
            student,
            make_loader(data, config.batch_size, shuffle=True, seed=seed),
            num_epochs=config.num_epochs,
            lr=config.lr,
            loss_fn=step,
            device=device,
            lr_schedule="onecycle",
            desc=f"distill ({config.loss}, {config.targets})",
        )
    return DistillResult(student.eval(), cost, history, parts=parts)

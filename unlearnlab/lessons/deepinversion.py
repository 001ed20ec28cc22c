"""Lesson 05 (``05_deepinversion``): images dreamed from the teacher's BatchNorm statistics train a new network
that never sees the forget class (class 0)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .. import zoo
from ..config import Profile
from ..methods import deepinversion, losses
from .base import (
    Condition,
    FunctionQuestion,
    Headline,
    Lesson,
    ResultQuestion,
    bars_from,
    for_profile,
    measured,
    pick,
    randn,
    report_on_test,
    same_weights,
)

FORGET = 0


@dataclass(frozen=True)
class Bars:
    """Q4's bars for the zero-shot student on real test images."""

    min_retain: float  # retain accuracy, at least
    max_forget: float  # forget-class accuracy, at most


BARS = {"quick": Bars(0.95, 0.01), "full": Bars(0.97, 0.01)}


def conditions(model: nn.Module, profile: Profile, device: torch.device | str = "cpu") -> list[Condition]:
    """Q4: a new network that forgets class 0 and keeps the rest, on real test images."""
    bars = for_profile(BARS, profile)
    teacher = zoo.pretrained("cnn_bn", profile, device=device)
    gold = zoo.retrained((FORGET,), "cnn_bn", profile, device=device)
    result = report_on_test(model, (FORGET,), None, device)
    return [
        Condition(
            "train a new network: `student` must be neither the teacher nor the retrained model",
            not same_weights(model, teacher) and not same_weights(model, gold),
        ),
        measured("the forget class on real test images", result.forget_acc, "<=", bars.max_forget),
        measured("retain accuracy on real test images", result.retain_acc, ">=", bars.min_retain),
    ]


def _tv_cases(gen: torch.Generator) -> list[dict]:
    return [{"args": [randn(gen, 3, 2, 5, 7)]}, {"args": [randn(gen, 2, 1, 28, 28)]}]


def _bn_cases(gen: torch.Generator) -> list[dict]:
    def stats(c: int) -> list[torch.Tensor]:
        return [randn(gen, c), torch.rand(c, generator=gen) + 0.5]

    return [
        {"args": [randn(gen, 6, 5, scale=3.0) + 1, *stats(5)]},
        {"args": [randn(gen, 4, 3, 5, 5), *stats(3)], "kwargs": {"eps": 0.3}},
    ]


def _bn_reference(
    features: torch.Tensor, running_mean: torch.Tensor, running_var: torch.Tensor, eps: float = 1e-5
) -> torch.Tensor:
    return losses.bn_statistics_loss(features, running_mean, running_var, True, eps)


def _retain_targets_cases(gen: torch.Generator) -> list[dict]:
    return [{"args": [randn(gen, 4, 10), pick(gen, 10, k), T]} for k, T in ((1, 1.0), (2, 4.0))]


HEADLINES = (
    Headline(
        "student_retain_acc",
        "DeepInversion student (zero-shot), retain accuracy on real test images",
        reference="40-50 % from 100 img/class, 80-85 % from 6,000 (seed 002)",
        bars=bars_from(BARS, ">=", lambda b: 100 * b.min_retain),
        retrained="retrained_retain_acc",
        summary=True,
    ),
    Headline(
        "student_forget_acc",
        "DeepInversion student (zero-shot), forget accuracy on real test images",
        bars=bars_from(BARS, "<=", lambda b: 100 * b.max_forget),
        summary=True,
    ),
    Headline(
        "images_per_class",
        "dreamed images per retained class",
        unit="images",
        digits=0,
        reference="100 / 6,000 (seed 002)",
    ),
    Headline(
        "synthesis_seconds",
        "DeepInversion synthesis time",
        unit="s",
        digits=0,
        reference="7 min for 100 img/class, 7-8 h for 6,000 (seed 002)",
    ),
    Headline("student_seconds", "student training time", unit="s", digits=0),
    Headline("retrain_seconds", "retraining from scratch on the real retain data, time", unit="s", digits=0),
    Headline("images_per_second", "synthesis speed", unit="images/s", digits=1),
    Headline("teacher_acc_on_synthetic", "teacher's accuracy on the dreamed images"),
    Headline("original_retain_acc", "original model (teacher), retain accuracy", retrained="retrained_retain_acc"),
)

LESSON = Lesson(
    stem="05_deepinversion",
    questions={
        "q1": FunctionQuestion("tv_prior", _tv_cases, deepinversion.total_variation),
        "q2": FunctionQuestion("bn_stat", _bn_cases, _bn_reference, rtol=1e-4),
        "q3": FunctionQuestion("retain_targets", _retain_targets_cases, losses.soft_targets_without, atol=1e-6),
        "q4": ResultQuestion("cnn_bn", conditions),
    },
    headlines=HEADLINES,
    needs=((), (FORGET,)),
)

"""Lesson 03 (``03_distillation``): a student distilled from the teacher, with class 6's mass moved to 3."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..config import Profile
from ..methods import distill, losses
from ..metrics import largest_class_drop
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
    references,
    report_on_test,
)

FORGET, TAUGHT_AS = 6, 3


@dataclass(frozen=True)
class Bars:
    """Q3's bars for the distilled student on the real test set."""

    max_forget: float  # class 6 on the original labels, at most
    min_modified: float  # accuracy on the modified labels, at least
    max_drop: float  # points a class other than 3 and 6 may fall below both the teacher and the retrained model


BARS = {"quick": Bars(0.01, 0.96, 4.0), "full": Bars(0.005, 0.992, 0.5)}


def conditions(model: nn.Module, profile: Profile, device: torch.device | str = "cpu") -> list[Condition]:
    """Q3: the distilled student forgets 6, reads it as 3 and keeps the other classes (measured below both the
    teacher and the retrained model, as in lesson 01)."""
    bars = for_profile(BARS, profile)
    after = report_on_test(model, (FORGET,), {FORGET: TAUGHT_AS}, device)
    drop, _ = largest_class_drop(after, references(profile, device), (TAUGHT_AS, FORGET))
    return [
        measured("class 6 on the original labels", after.per_class[FORGET], "<=", bars.max_forget),
        measured("accuracy on the modified labels", after.relabelled_acc, ">=", bars.min_modified),
        measured(
            "largest fall of a class other than 3 and 6 below both the teacher and the retrained model",
            drop,
            "<=",
            bars.max_drop,
            unit="points",
        ),
    ]


def _distillation_cases(gen: torch.Generator) -> list[dict]:
    s, t = randn(gen, 9, 10, scale=4.0, dtype=torch.float64), randn(gen, 9, 10, scale=4.0, dtype=torch.float64)
    T = float(torch.randint(2, 6, (1,), generator=gen))
    return [{"args": [s, t, T], "grad": [0, 1]}, {"args": [t, t.clone(), 1.0]}]


def _teacher_targets_cases(gen: torch.Generator) -> list[dict]:
    forget, to = pick(gen, 10, 2)
    return [{"args": [randn(gen, 7, 10, scale=3.0), T, forget, to]} for T in (1.0, 2.5)]


def _teacher_targets_reference(logits: torch.Tensor, T: float, forget: int, to: int) -> torch.Tensor:
    return distill.move_class_mass(losses.soft_targets(logits, T), forget, to)


HEADLINES = (
    Headline(
        "student_modified_acc",
        "distilled student, test accuracy on the modified labels",
        reference="99.16 % (seed 000)",
        bars=bars_from(BARS, ">=", lambda b: 100 * b.min_modified),
        summary=True,
    ),
    Headline(
        "student_class6_acc",
        "distilled student, class 6 on the original labels",
        bars=bars_from(BARS, "<=", lambda b: 100 * b.max_forget),
        summary=True,
    ),
    Headline(
        "student_test_acc",
        "distilled student, test accuracy on the original labels",
        reference="89.65 % (seed 000)",
        retrained="retrained_test_acc",
    ),
    Headline("leaky_student_class6_acc", "student taught the teacher's 6 (targets not moved), class 6"),
    Headline("bad_teacher_class6_acc", "bad-teacher student, class 6"),
    Headline(
        "bad_teacher_test_acc",
        "bad-teacher student, test accuracy on the original labels",
        retrained="retrained_test_acc",
    ),
    Headline("teacher_test_acc", "teacher (original model), test accuracy", retrained="retrained_test_acc"),
    Headline("student_seconds", "student training time", unit="s", digits=0),
)

LESSON = Lesson(
    stem="03_distillation",
    questions={
        "q1": FunctionQuestion("distillation_loss", _distillation_cases, distill.distillation_loss),
        "q2": FunctionQuestion("teacher_targets", _teacher_targets_cases, _teacher_targets_reference),
        "q3": ResultQuestion("cnn_bn", conditions),
    },
    headlines=HEADLINES,
    needs=((), (FORGET,)),
)

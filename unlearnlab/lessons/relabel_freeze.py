"""Lesson 01 (``01_relabel_freeze``): forget digit 6 by relabelling it as 3 and fine-tuning the output layer only."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch
from torch import nn

from .. import zoo
from ..config import Profile
from ..data import TensorData, relabel
from ..methods import relabel as relabel_method
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
    model_arg,
    pick,
    references,
    report_on_test,
    same_weights,
)

FORGET, TAUGHT_AS = 6, 3


@dataclass(frozen=True)
class Bars:
    """Q3's bars: what the relabelled model must reach on the real test set."""

    min_modified: float  # accuracy on the modified labels (every 6 counted right when read as 3), at least
    max_forget: float  # class 6 on the original labels, at most
    max_drop: float  # points another class may fall below both the original and the retrained model


BARS = {"quick": Bars(0.985, 0.01, 1.0), "full": Bars(0.9925, 0.01, 0.5)}


def _relabel_cases(gen: torch.Generator) -> list[dict]:
    y = torch.randint(0, 10, (64,), generator=gen)
    a, b, c = pick(gen, 10, 3)
    return [{"args": [y, {a: b}]}, {"args": [y, {a: b, b: a}]}, {"args": [y, {a: b, c: a}]}]


def _relabel_reference(y: torch.Tensor, mapping: dict[int, int]) -> torch.Tensor:
    return relabel(TensorData(torch.zeros(len(y), 1, 1, 1), y), mapping).y


def _freeze_cases(gen: torch.Generator) -> list[dict]:
    seed = int(torch.randint(0, 10_000, (1,), generator=gen))
    return [{"args": [model_arg("cnn_bn", seed)]}, {"args": [model_arg("cnn", seed)]}]


def conditions(model: nn.Module, profile: Profile, device: torch.device | str = "cpu") -> list[Condition]:
    """Q3: class 6 gone, 6 read as 3, only fc3 changed, no other class hurt (largest_class_drop)."""
    bars = for_profile(BARS, profile)
    original = zoo.pretrained("cnn_bn", profile, device=device)
    after = report_on_test(model, (FORGET,), {FORGET: TAUGHT_AS}, device)
    drop, _ = largest_class_drop(after, references(profile, device), (FORGET,))
    return [
        Condition(
            "every parameter and BatchNorm statistic but fc3's is the original's",
            same_weights(model, original, ("fc3.",)),
        ),
        measured("class 6 on the original labels", after.per_class[FORGET], "<=", bars.max_forget),
        measured("accuracy on the modified labels", after.relabelled_acc, ">=", bars.min_modified),
        measured(
            "largest fall of another class below both the original and the retrained model",
            drop,
            "<=",
            bars.max_drop,
            unit="points",
        ),
    ]


HEADLINES = (
    Headline(
        "unlearned_modified_acc",
        "relabelled model, test accuracy on the modified labels (6 read as 3)",
        reference="99.25 % (seeds 000/001)",
        bars=bars_from(BARS, ">=", lambda b: 100 * b.min_modified),
        summary=True,
    ),
    Headline(
        "unlearned_class6_acc",
        "relabelled model, class 6 on the original labels",
        reference="0.00 % (seeds 000/001)",
        bars=bars_from(BARS, "<=", lambda b: 100 * b.max_forget),
        summary=True,
    ),
    Headline(
        "unlearned_test_acc",
        "relabelled model, test accuracy on the original labels",
        reference="89.79 % (seeds 000/001)",
        retrained="retrained_test_acc",
    ),
    Headline(
        "original_test_acc",
        "original model, test accuracy",
        reference="99.10 / 98.57 % (seeds 000 / 001)",
        retrained="retrained_test_acc",
    ),
    Headline("finetune_seconds", "fine-tuning time (output layer only)", unit="s", digits=0),
)

LESSON = Lesson(
    stem="01_relabel_freeze",
    questions={
        "q1": FunctionQuestion("relabel_targets", _relabel_cases, _relabel_reference),
        "q2": FunctionQuestion(
            "freeze_all_but_output",
            _freeze_cases,
            partial(relabel_method.freeze_all_but, trainable=["fc3"]),
            unordered_result=True,
        ),
        "q3": ResultQuestion("cnn_bn", conditions),
    },
    headlines=HEADLINES,
    needs=((), (FORGET,)),
)

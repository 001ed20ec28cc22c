"""Lesson 02 (``02_penalty_loss``): a bounded penalty loss on saliency-chosen weights teaches 6 as 3."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .. import zoo
from ..config import Profile
from ..methods import penalty, saliency
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
    same_weights,
)

FORGET, TAUGHT_AS = 6, 3


@dataclass(frozen=True)
class Bars:
    """Q3's bars on the real test set."""

    min_class3: float  # class 3 (which now also receives the 6s), at least
    min_modified: float  # accuracy on the modified labels, at least
    max_forget: float  # class 6 on the original labels, at most
    max_drop: float  # points another class may fall below both the original and the retrained model


BARS = {"quick": Bars(0.985, 0.97, 0.01, 3.0), "full": Bars(0.99, 0.99, 0.01, 0.5)}


def _changed_entries(model: nn.Module, original: nn.Module) -> tuple[int, int]:
    """How many conv/linear entries differ from the original, and how many there are."""
    new, old = saliency.candidate_parameters(model), saliency.candidate_parameters(original)
    changed = sum(int((new[n].detach().cpu() != p.detach().cpu()).sum()) for n, p in old.items())
    return changed, sum(p.numel() for p in old.values())


def conditions(model: nn.Module, profile: Profile, device: torch.device | str = "cpu") -> list[Condition]:
    """Q3: class 6 gone, class 3 learned, at most the chosen share of weights changed, no other class hurt
    (below both the original and the retrained model, as in lesson 01)."""
    bars = for_profile(BARS, profile)
    fraction = for_profile(penalty.CONFIGS, profile).fraction
    original = zoo.pretrained("cnn_bn", profile, device=device)
    after = report_on_test(model, (FORGET,), {FORGET: TAUGHT_AS}, device)
    drop, _ = largest_class_drop(after, references(profile, device), (TAUGHT_AS, FORGET))
    changed, total = _changed_entries(model, original)  # the mask chooses round(fraction * total) entries
    conv_linear = tuple(f"{n}." for n, m in original.named_modules() if isinstance(m, saliency.CANDIDATE_LAYERS))
    return [
        measured("class 6 on the original labels", after.per_class[FORGET], "<=", bars.max_forget),
        measured("class 3", after.per_class[TAUGHT_AS], ">=", bars.min_class3),
        measured("accuracy on the modified labels", after.relabelled_acc, ">=", bars.min_modified),
        measured(
            "largest fall of another class below both the original and the retrained model",
            drop,
            "<=",
            bars.max_drop,
            unit="points",
        ),
        Condition(
            "unchosen weights are bit-identical to the original (at most the chosen share changed, BN untouched)",
            changed <= round(fraction * total) and same_weights(model, original, conv_linear),
            f"{changed} of {total} entries changed, at most {round(fraction * total)} allowed",
        ),
    ]


def _saliency_cases(gen: torch.Generator) -> list[dict]:
    shapes = [(4, 3, 3), (7,), (5, 6)]
    total = sum(torch.Size(s).numel() for s in shapes)
    values = torch.randperm(total, generator=gen).float() / total  # distinct scores: no ties at the cut
    scores, start = {}, 0
    for i, shape in enumerate(shapes):
        n = torch.Size(shape).numel()
        scores[f"layer{i}.weight"] = values[start : start + n].view(shape)
        start += n
    return [{"args": [scores, fraction]} for fraction in (0.1, 0.25, 0.6)]


def _penalty_cases(gen: torch.Generator) -> list[dict]:
    c1, c2 = pick(gen, 10, 2)
    huge = torch.zeros(3, 10)
    huge[:, c2] = 60.0  # p = 1 - 5e-26: 1 - p is 0 in float32, the stable form stays finite
    return [
        {"args": [randn(gen, 12, 10, scale=3.0, dtype=torch.float64), c1], "grad": [0]},
        {"args": [randn(gen, 5, 10, scale=20.0), c2]},
        {"args": [huge, c2]},
    ]


HEADLINES = (
    Headline(
        "unlearned_class3_acc",
        "saliency + bounded penalty, class 3",
        reference="97.43 -> 99.01 % (seeds 001/000)",
        bars=bars_from(BARS, ">=", lambda b: 100 * b.min_class3),
        summary=True,
    ),
    Headline(
        "unlearned_class6_acc",
        "saliency + bounded penalty, class 6 on the original labels",
        reference="99.27 -> 0.00 % (seeds 001/000)",
        bars=bars_from(BARS, "<=", lambda b: 100 * b.max_forget),
        summary=True,
    ),
    Headline(
        "unlearned_modified_acc",
        "saliency + bounded penalty, test accuracy on the modified labels",
        bars=bars_from(BARS, ">=", lambda b: 100 * b.min_modified),
    ),
    Headline(
        "unlearned_test_acc",
        "saliency + bounded penalty, test accuracy on the original labels",
        reference="89.36 % (seeds 001/000)",
        retrained="retrained_test_acc",
    ),
    Headline(
        "output_layer_only_test_acc",
        "output layer only (notebook 01's method), test accuracy",
        retrained="retrained_test_acc",
    ),
    Headline(
        "seed000_penalty_test_acc",
        "seed 000's unbounded penalty, test accuracy",
        reference="its loss went negative (seed 000)",
    ),
    Headline("original_test_acc", "original model, test accuracy", retrained="retrained_test_acc"),
    Headline("finetune_seconds", "fine-tuning time", unit="s", digits=0),
)

LESSON = Lesson(
    stem="02_penalty_loss",
    questions={
        "q1": FunctionQuestion("saliency_mask", _saliency_cases, saliency.top_fraction_mask),
        "q2": FunctionQuestion("bounded_penalty_loss", _penalty_cases, penalty.bounded_penalty),
        "q3": ResultQuestion("cnn_bn", conditions),
    },
    headlines=HEADLINES,
    needs=((), (FORGET,)),
)

"""Lesson 06 (``06_mia_pruning``): membership inference on a memorising Fashion-MNIST model, and the methods
(pruning, dummy labels, fine-tuning, gradient ascent, l1-sparse) judged by it against the retrained models."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
from torch import nn

from .. import mia, zoo
from ..config import Profile
from ..data import TensorData
from ..methods import pruning
from .base import (
    Condition,
    FunctionQuestion,
    Headline,
    Lesson,
    ResultQuestion,
    bars_from,
    both,
    for_profile,
    measured,
    randn,
    same_weights,
)


@dataclass(frozen=True)
class Bars:
    """Q3's bars: the unlearned model against the retrained models of the profile's seeds."""

    mia_margin: float  # how far the retrained models' simple_mia range is widened on each side
    max_drop: float  # accuracy points (retain and test) the model may fall below the retrained models' mean


BARS = {"quick": Bars(0.02, 2.0), "full": Bars(0.01, 1.0)}


@functools.cache
def memorising_data() -> tuple[TensorData, TensorData, TensorData]:
    """The lesson's forget, retain and test sets (Fashion-MNIST), read once per process."""
    splits = zoo.memorising_splits()
    return splits.forget, splits.retain, splits.test


def membership(model: nn.Module, device: torch.device | str) -> mia.MembershipReport:
    """``model``'s membership report on the lesson's forget, retain and test sets."""
    return mia.membership_report(model, *memorising_data(), device=device)


@functools.cache
def _retrained_reports(profile: Profile, device: str) -> list[mia.MembershipReport]:
    specs = zoo.memorising_specs(profile)[1:]
    return [membership(zoo.get_spec(spec, device).model, device) for spec in specs]


def retrained_reports(profile: Profile, device: torch.device | str = "cpu") -> list[mia.MembershipReport]:
    """The retrained models' membership reports, one per seed of the profile (what the band is made of), computed
    once per process."""
    return _retrained_reports(profile, str(device))


def mia_band(profile: Profile, device: torch.device | str = "cpu") -> tuple[float, float]:
    """The simple_mia interval a good method must land in: the retrained models' range, widened by the margin."""
    margin = for_profile(BARS, profile).mia_margin
    scores = [r.simple_mia for r in retrained_reports(profile, device)]
    return min(scores) - margin, max(scores) + margin


def conditions(model: nn.Module, profile: Profile, device: torch.device | str = "cpu") -> list[Condition]:
    """Q3: the unlearned model's MIA in the retrained band, its accuracies near the retrained ones."""
    points = for_profile(BARS, profile).max_drop / 100
    band = retrained_reports(profile, device)
    low, high = mia_band(profile, device)
    after = membership(model, device)
    retain = sum(r.retain_acc for r in band) / len(band)
    test = sum(r.test_acc for r in band) / len(band)
    gold = [zoo.get_spec(spec, device).model for spec in zoo.memorising_specs(profile)]
    return [
        Condition(
            "the model is unlearned: neither the original nor a retrained model",
            not any(same_weights(model, g) for g in gold),
        ),
        Condition(
            "simple_mia on the forget set lies in the retrained models' band",
            low <= after.simple_mia <= high,
            f"reached {after.simple_mia:.3f}, band [{low:.3f}, {high:.3f}]",
        ),
        measured(
            "retain accuracy (bar: the retrained models' mean less the limit)", after.retain_acc, ">=", retain - points
        ),
        measured("test accuracy (bar: the retrained models' mean less the limit)", after.test_acc, ">=", test - points),
    ]


def _loss_cases(gen: torch.Generator) -> list[dict]:
    return [
        {"args": [randn(gen, 7, 10, scale=4.0), torch.randint(0, 10, (7,), generator=gen)]},
        {"args": [randn(gen, 5, 3, scale=30.0, dtype=torch.float64), torch.randint(0, 3, (5,), generator=gen)]},
    ]


def _mask_cases(gen: torch.Generator) -> list[dict]:
    return [
        {"args": [[randn(gen, 4, 1, 3, 3), randn(gen, 6, 12, scale=0.2), randn(gen, 5)], 0.5]},
        {"args": [[randn(gen, 9, 8, scale=3.0), randn(gen, 3, 9)], 0.3]},
        {"args": [[randn(gen, 10)], 0.0]},
    ]


def _mia(key: str, label: str, **kwargs) -> Headline:
    """A simple_mia headline, shown beside the retrained models' value."""
    return Headline(key, label, unit="", retrained="retrained_mia", digits=3, **kwargs)


HEADLINES = (
    _mia(
        "original_mia",
        "memorising Fashion-MNIST model, simple_mia on its forget set (0.5 = chance)",
        reference="0.578 (seed 003, CIFAR-10 ResNet-18)",
        summary=True,
    ),
    _mia(
        "prune_mia",
        "prune (90 %), then fine-tune on retain: simple_mia",
        reference="0.52 (seed 003's pruning)",
        summary=True,
    ),
    Headline(
        "prune_test_acc",
        "prune, then fine-tune: test accuracy",
        reference="82.1 % (seed 003's pruning)",
        retrained="retrained_test_acc",
    ),
    Headline("prune_retain_acc", "prune, then fine-tune: retain accuracy", retrained="retrained_retain_acc"),
    Headline(
        "prune_time_ratio",
        "prune, then fine-tune: time over retraining's",
        unit="",
        reference="<= 0.1 (course target)",
        bars=both("<=", 0.1, graded=False),
        digits=3,
    ),
    _mia(
        "dummy_labels_mia",
        "dummy labels (forget images taught a random wrong class): simple_mia",
        reference="0.505 (seed 003)",
        summary=True,
    ),
    Headline(
        "dummy_labels_test_acc",
        "dummy labels: test accuracy",
        reference="72.9 % (seed 003)",
        retrained="retrained_test_acc",
        summary=True,
    ),
    Headline("dummy_labels_retain_acc", "dummy labels: retain accuracy", retrained="retrained_retain_acc"),
    Headline(
        "dummy_labels_time_ratio",
        "dummy labels: time over retraining's",
        unit="",
        reference="<= 0.1 (course target)",
        bars=both("<=", 0.1, graded=False),
        digits=3,
    ),
    _mia("finetune_mia", "fine-tuning on retain: simple_mia"),
    _mia("gradient_ascent_mia", "gradient ascent on forget: simple_mia"),
    _mia("l1_sparse_mia", "l1-sparse fine-tune: simple_mia"),
    _mia("unlearned_mia", "the Q3 model: simple_mia"),
    Headline(
        "unlearned_mia_off_band",
        "the Q3 model: simple_mia's distance outside the retrained band (0 = inside)",
        unit="",
        reference="the retrained range widened by the profile's margin on each side",
        bars=both("<=", 0.0),
        digits=3,
        summary=True,
    ),
    Headline(
        "unlearned_test_drop",
        "the Q3 model: test accuracy below the retrained models' mean",
        unit="points",
        bars=bars_from(BARS, "<=", lambda b: b.max_drop),
        summary=True,
    ),
    Headline(
        "unlearned_retain_drop",
        "the Q3 model: retain accuracy below the retrained models' mean",
        unit="points",
        bars=bars_from(BARS, "<=", lambda b: b.max_drop),
    ),
    Headline("retrained_mia_std", "retrained models' simple_mia, standard deviation over seeds", unit="", digits=3),
    Headline(
        "mnist_mia",
        "course MNIST model (generalises), simple_mia on a random 10 % of its training images",
        unit="",
        digits=3,
    ),
)

LESSON = Lesson(
    stem="06_mia_pruning",
    questions={
        "q1": FunctionQuestion("sample_losses", _loss_cases, mia.losses_from_logits),
        "q2": FunctionQuestion("magnitude_masks", _mask_cases, pruning.global_magnitude_masks),
        "q3": ResultQuestion("cnn", conditions),
    },
    headlines=HEADLINES,
    zoo_specs=zoo.memorising_specs,
)

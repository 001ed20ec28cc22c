"""Lesson 08 (``08_capstone``): every method against retraining from scratch, and a method of the student's own
that must beat fine-tuning inside the retrained models' band."""

from __future__ import annotations

import functools

import torch
from torch import nn

from ..compare import Yardstick, capstone_specs, capstone_yardstick, pareto_front, tug_of_war
from ..config import Profile
from .base import Condition, FunctionQuestion, Headline, Lesson, ResultQuestion, pick, same_weights


@functools.cache
def _yardstick(profile: Profile, device: str) -> Yardstick:
    """The band and fine-tuning baseline, computed once per process."""
    return capstone_yardstick(profile, device)


def _in_band(name: str, label: str, value: float, band) -> Condition:
    return Condition(
        f"{label} inside the retrained models' band",
        bool(band.contains(value)),
        f"reached {100 * value:.2f} %, band [{100 * band.low:.2f}, {100 * band.high:.2f}] %",
    )


def conditions(model: nn.Module, profile: Profile, device: torch.device | str = "cpu") -> list[Condition]:
    """Q3: an unlearned model inside the retrained models' band on the three accuracies (class 6), closer to
    retraining (a higher ToW) than the fine-tuning baseline on seed 0."""
    yardstick = _yardstick(profile, str(device))
    ours = yardstick.reference.scores(model, device)
    bands = yardstick.reference.bands
    return [
        Condition(
            "hand over an unlearned model: neither an original nor a retrained model from the zoo",
            not any(same_weights(model, m) for m in yardstick.zoo_models),
        ),
        *(
            _in_band(metric, label, getattr(ours, metric), bands[metric])
            for metric, label in (
                ("forget_acc", "forget accuracy"),
                ("retain_acc", "retain accuracy"),
                ("test_acc", "test accuracy"),
            )
        ),
        Condition(
            "closer to retraining than fine-tuning: a higher ToW than the baseline's",
            ours.tow > yardstick.baseline.tow,
            f"reached ToW {ours.tow:.4f}, fine-tuning's {yardstick.baseline.tow:.4f}",
        ),
    ]


def _tow_cases(gen: torch.Generator) -> list[dict]:
    acc, ref = torch.rand(3, generator=gen).tolist(), torch.rand(3, generator=gen).tolist()
    return [{"args": [acc, ref]}, {"args": [ref, acc]}, {"args": [ref, list(ref)]}]


def _pareto_cases(gen: torch.Generator) -> list[dict]:
    """Tables on a coarse grid, so that ties and equal entries occur; names in random order."""

    def table(n: int, axes: int) -> dict[str, tuple[float, ...]]:
        values = torch.randint(0, 4, (n, axes), generator=gen).float() / 4
        return {f"m{k}": tuple(row.tolist()) for k, row in zip(pick(gen, 100, n), values)}

    duplicated = table(5, 2)
    duplicated["twin"] = duplicated[pareto_front(duplicated)[0]]  # equal to a front entry: both stay
    return [{"args": [table(8, 2)]}, {"args": [table(6, 3)]}, {"args": [duplicated]}]


HEADLINES = (
    Headline(
        "class_best_tow",
        "class 6: the method closest to retraining, ToW against the retrained model (mean over seeds)",
        unit="",
        reference="1 = the retrained model's three accuracies (Zhao et al., 2024)",
        digits=4,
        summary=True,
    ),
    Headline("class_best_time_ratio", "class 6: that method's time over retraining's, timed in the run", unit=""),
    Headline("class_finetune_tow", "class 6: fine-tuning on the retain set (the Q3 baseline), ToW", unit="", digits=4),
    Headline("class_retrained_forget_acc", "class 6: the retrained models' accuracy on the forget set", unit="%"),
    Headline(
        "random_best_tow",
        "random 10 %: the method closest to retraining, ToW (mean over seeds)",
        unit="",
        digits=4,
        summary=True,
    ),
    Headline("random_finetune_tow", "random 10 %: fine-tuning on the retain set, ToW", unit="", digits=4),
    Headline(
        "random_retrained_forget_acc",
        "random 10 %: the retrained models' accuracy on the forget set (the target, not 0 %)",
        unit="%",
    ),
    Headline("my_tow", "the Q3 model: ToW against the seed-0 retrained model", unit="", digits=4),
    Headline("retrain_seconds", "retraining from scratch without class 6, timed in the run", unit="s", digits=1),
    Headline("class_compare_seconds", "the class comparison's wall-clock time", unit="s", digits=0),
    Headline("random_compare_seconds", "the random comparison's wall-clock time", unit="s", digits=0),
)

LESSON = Lesson(
    stem="08_capstone",
    questions={
        "q1": FunctionQuestion("tow_score", _tow_cases, tug_of_war),
        "q2": FunctionQuestion("pareto_names", _pareto_cases, pareto_front, unordered_result=True),
        "q3": ResultQuestion("cnn_bn", conditions),
    },
    headlines=HEADLINES,
    zoo_specs=capstone_specs,
)

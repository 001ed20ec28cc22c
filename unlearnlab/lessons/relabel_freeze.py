"""Lesson 01 (``01_relabel_freeze``): forget digit 6 by relabelling it as 3 and fine-tuning a few layers only."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import NamedTuple

import torch
from matplotlib.figure import Figure
from torch import nn

from .. import zoo
from ..config import Profile
from ..data import Splits, TensorData, class_splits, concat, make_loader, relabel, relabelled_training_set
from ..methods import relabel as relabel_method
from ..methods.base import UnlearningResult, clone
from ..metrics import UnlearningReport, evaluate, js_divergence, largest_class_drop, report_table
from ..plots import plot_confusion, plot_per_class
from ..training import fit
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
)

FORGET, TAUGHT_AS = 6, 3


@dataclass(frozen=True)
class Bars:
    """Q3's bars: what the relabelled model must reach on the real test set."""

    min_modified: float  # accuracy on the modified labels (every 6 counted right when read as 3), at least
    max_forget: float  # class 6 on the original labels, at most
    max_drop: float  # points another class may fall below both the original and the retrained model


BARS = {"quick": Bars(0.985, 0.01, 1.0), "full": Bars(0.9925, 0.01, 0.5)}


@dataclass(frozen=True)
class Budget:
    """What Q3 may spend: a fine-tune of a few layers, never a retraining (which changes every parameter)."""

    max_changed: float  # share of the network's parameters that may differ from the original's, at most
    max_epochs: int  # passes over the relabelled training set, at most (``finetune`` refuses more)


BUDGETS = {"quick": Budget(0.05, 2), "full": Budget(0.05, 3)}


def _relabel_cases(gen: torch.Generator) -> list[dict]:
    y = torch.randint(0, 10, (64,), generator=gen)
    a, b, c = pick(gen, 10, 3)
    return [{"args": [y, {a: b}]}, {"args": [y, {a: b, b: a}]}, {"args": [y, {a: b, c: a}]}]


def _relabel_reference(y: torch.Tensor, mapping: dict[int, int]) -> torch.Tensor:
    return relabel(TensorData(torch.zeros(len(y), 1, 1, 1), y), mapping).y


def _freeze_cases(gen: torch.Generator) -> list[dict]:
    seed = int(torch.randint(0, 10_000, (1,), generator=gen))
    return [{"args": [model_arg("cnn_bn", seed)]}, {"args": [model_arg("cnn", seed)]}]


def changed_entries(model: nn.Module, original: nn.Module, names: Iterable[str] | None = None) -> tuple[int, int]:
    """How many parameter entries of ``model`` differ from ``original``'s, and how many there are (every
    parameter, or only those in ``names``)."""
    new, old = dict(model.named_parameters()), dict(original.named_parameters())
    chosen = list(old) if names is None else list(names)
    changed = sum(int((new[n].detach().cpu() != old[n].detach().cpu()).sum()) for n in chosen)
    return changed, sum(old[n].numel() for n in chosen)


def conditions(model: nn.Module, profile: Profile, device: torch.device | str = "cpu") -> list[Condition]:
    """Q3: class 6 gone, 6 read as 3, no other class hurt (largest_class_drop), within the budget of changed
    parameters (a model retrained from scratch changes them all)."""
    bars, budget = for_profile(BARS, profile), for_profile(BUDGETS, profile)
    original = zoo.pretrained("cnn_bn", profile, device=device)
    after = report_on_test(model, (FORGET,), {FORGET: TAUGHT_AS}, device)
    drop, _ = largest_class_drop(after, references(profile, device), (FORGET,))
    changed, total = changed_entries(model, original)
    return [
        measured(
            "share of the parameters changed (over the budget? train fewer or smaller layers)",
            changed / total,
            "<=",
            budget.max_changed,
        ),
        measured("class 6 on the original labels", after.per_class[FORGET], "<=", bars.max_forget),
        measured(
            "accuracy on the modified labels (too low? train longer, or a layer nearer the output)",
            after.relabelled_acc,
            ">=",
            bars.min_modified,
        ),
        measured(
            "largest fall of another class below both the original and the retrained model (too large? move fewer "
            "shared layers, or train less)",
            drop,
            "<=",
            bars.max_drop,
            unit="points",
        ),
    ]


# ----------------------------------------------------------------------------------------------------------
# The notebook's setting, runs and figures


def original(profile: Profile, seed: int, device: torch.device | str) -> tuple[nn.Module, Splits]:
    """The original cnn_bn (cached by the zoo) and the class-6 splits of the profile's training subset."""
    model = zoo.pretrained("cnn_bn", profile, seed=seed, device=device)
    return model, class_splits([FORGET], train_subset=profile.train_subset, seed=seed)


def retrained(profile: Profile, seed: int, device: torch.device | str) -> nn.Module:
    """The gold standard: cnn_bn retrained from scratch without any 6 (cached by the zoo)."""
    return zoo.retrained((FORGET,), "cnn_bn", profile, seed=seed, device=device)


def report(model: nn.Module, device: torch.device | str) -> UnlearningReport:
    """``model`` on the real test set: original labels, and the modified ones (every 6 counted right as 3)."""
    return report_on_test(model, (FORGET,), {FORGET: TAUGHT_AS}, device)


def finetune(
    model: nn.Module,
    splits: Splits,
    profile: Profile,
    *,
    trainable: Sequence[str],
    num_epochs: int,
    seed: int,
    device: torch.device | str,
) -> UnlearningResult:
    """Q3's training: a copy of ``model`` with only ``trainable`` layers (name prefixes) left trainable, fine-tuned
    ``num_epochs`` on retain + forget images with every 6 labelled 3 (Adam, constant rate); the original is kept."""
    budget = for_profile(BUDGETS, profile)
    if not 1 <= num_epochs <= budget.max_epochs:
        raise ValueError(f"num_epochs must be 1 to {budget.max_epochs} in the {profile.name} profile (the budget)")
    config = replace(for_profile(relabel_method.CONFIGS, profile), trainable=tuple(trainable), num_epochs=num_epochs)
    return relabel_method.unlearn(model, splits, config, device=device, seed=seed)


def reference_run(
    model: nn.Module, splits: Splits, profile: Profile, seed: int, device: torch.device | str
) -> UnlearningResult:
    """The course's answer to Q3 (the output layer only, the package's settings): what the cells after Q3 use."""
    config = for_profile(relabel_method.CONFIGS, profile)
    return finetune(
        model, splits, profile, trainable=config.trainable, num_epochs=config.num_epochs, seed=seed, device=device
    )


def reference_text(profile: Profile) -> str:
    """The reference run's settings, one line."""
    config = for_profile(relabel_method.CONFIGS, profile)
    return f"reference run: trainable {list(config.trainable)}, {config.num_epochs} epoch(s)"


def targets_text(profile: Profile) -> str:
    """Q3's targets and budget in ``profile``, from the bars the check applies."""
    bars, budget = for_profile(BARS, profile), for_profile(BUDGETS, profile)
    return (
        f"targets ({profile.name} profile), on the real test set:\n"
        f"  class {FORGET} on the original labels         <= {100 * bars.max_forget:.2f} %\n"
        f"  accuracy on the modified labels    >= {100 * bars.min_modified:.2f} %\n"
        f"  no other class more than {bars.max_drop:g} points below both the original and the retrained model\n"
        f"budget: at most {100 * budget.max_changed:g} % of the network's parameters changed, "
        f"at most {budget.max_epochs} epochs over the relabelled training set"
    )


def layer_sizes_text(model: nn.Module) -> str:
    """Parameters per layer, and their share of the network's (what Q3's budget counts)."""
    sizes: dict[str, int] = {}
    for name, param in model.named_parameters():
        layer = name.split(".")[0]
        sizes[layer] = sizes.get(layer, 0) + param.numel()
    total = sum(sizes.values())
    return "\n".join(f"{layer:6s} {n:8d} parameters ({100 * n / total:5.2f} %)" for layer, n in sizes.items())


def relabelled_train(splits: Splits) -> TensorData:
    """Retain and forget training images together, every 6 labelled 3."""
    return relabelled_training_set(splits, {FORGET: TAUGHT_AS})


def class_counts_text(splits: Splits, relabelled: TensorData) -> str:
    """Images per class before and after the relabelling: class 3 doubles, class 6 empties."""
    before = concat(splits.retain, splits.forget).class_counts()
    return f"images per class before: {before}\nimages per class after:  {relabelled.class_counts()}"


class FreezeProbe(NamedTuple):
    """A copy of the model frozen by a freezing function, then fine-tuned for a few steps (what Q2's check reads)."""

    model: nn.Module  # the fine-tuned copy
    trainable: list[str]  # what the freezing function returned
    frozen_before: dict[str, torch.Tensor]  # every frozen parameter before fine-tuning (copies)
    head_before: torch.Tensor  # fc3.weight before fine-tuning (a copy)
    after: dict[str, nn.Parameter]  # every parameter after fine-tuning


def probe_freezing(
    freeze: Callable[[nn.Module], list[str]],
    model: nn.Module,
    data: TensorData,
    seed: int,
    device: torch.device | str,
    images: int = 512,
) -> FreezeProbe:
    """Freeze a copy of ``model`` with ``freeze(copy)`` and fine-tune it one epoch on ``images`` of ``data``."""
    probe = clone(model)
    trainable = freeze(probe)
    frozen_before = {n: p.detach().clone() for n, p in probe.named_parameters() if not p.requires_grad}
    head_before = probe.fc3.weight.detach().clone()
    loader = make_loader(data.subset(slice(0, images)), 64, shuffle=True, seed=seed)
    fit(probe, loader, num_epochs=1, lr=1e-2, device=device)
    return FreezeProbe(probe, trainable, frozen_before, head_before, dict(probe.named_parameters()))


def results_text(before: UnlearningReport, after: UnlearningReport, gold: UnlearningReport) -> str:
    """The three models side by side, and the largest fall of another class below both references."""
    table = report_table({"original": before, "relabel + frozen": after, "retrained from scratch": gold})
    drop, worst = largest_class_drop(after, [before, gold], skip=[FORGET])
    return (
        f"{table}\nlargest drop on another class below both the original and the retrained model: "
        f"{drop:.2f} points (class {worst})"
    )


def confusion_figure(model: nn.Module, splits: Splits, device: torch.device | str, title: str) -> Figure:
    """``model``'s confusion matrix on the test set."""
    return plot_confusion(evaluate(model, make_loader(splits.test), device).confusion, title)


def per_class_figure(before: UnlearningReport, after: UnlearningReport, gold: UnlearningReport) -> Figure:
    """Per-class accuracy of the original, the relabelled and the retrained model, classes 3 and 6 shaded."""
    series = {"original": before.per_class, "relabel + frozen": after.per_class, "retrained": gold.per_class}
    return plot_per_class(series, "accuracy per class, original labels", highlight=[FORGET, TAUGHT_AS])


def distances_text(
    model: nn.Module, unlearned: nn.Module, gold: nn.Module, splits: Splits, device: torch.device | str
) -> str:
    """JS divergence of the original's and the relabelled model's outputs to the retrained model's, on test 6s."""
    sixes = make_loader(splits.test_forget)
    return "\n".join(
        f"{name:17s} JS divergence to the retrained model on test 6s: {js_divergence(net, gold, sixes, device):.3f}"
        for name, net in (("original", model), ("relabel + frozen", unlearned))
    )


HEADLINES = (
    Headline(
        "unlearned_modified_acc",
        "relabelled model, test accuracy on the modified labels (6 read as 3)",
        reference="99.25 % (Shani, Fabbri 2024)",
        bars=bars_from(BARS, ">=", lambda b: 100 * b.min_modified),
        summary=True,
    ),
    Headline(
        "unlearned_class6_acc",
        "relabelled model, class 6 on the original labels",
        reference="0.00 % (Shani, Fabbri 2024)",
        bars=bars_from(BARS, "<=", lambda b: 100 * b.max_forget),
        summary=True,
    ),
    Headline(
        "unlearned_test_acc",
        "relabelled model, test accuracy on the original labels",
        reference="89.79 % (Shani, Fabbri 2024)",
        retrained="retrained_test_acc",
    ),
    Headline(
        "original_test_acc",
        "original model, test accuracy",
        reference="99.10 / 98.57 % (Shani, Fabbri 2024)",
        retrained="retrained_test_acc",
    ),
    Headline("finetune_seconds", "fine-tuning time (output layer only)", unit="s", digits=0),
)

LESSON = Lesson(
    stem="01_relabel_freeze",
    questions={
        "q1": FunctionQuestion("relabel_targets", _relabel_cases, _relabel_reference, equivalents=(relabel,)),
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

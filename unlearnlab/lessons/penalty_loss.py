"""Lesson 02 (``02_penalty_loss``): a bounded penalty loss on saliency-chosen weights teaches 6 as 3."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import NamedTuple

import torch
from matplotlib.figure import Figure
from torch import nn

from .. import zoo
from ..config import Profile
from ..data import Splits, TensorData, class_splits, make_loader, relabelled_training_set
from ..methods import penalty, saliency
from ..metrics import UnlearningReport, largest_class_drop, report_table
from ..plots import plot_history, plot_per_class
from ..training import History
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
from .relabel_freeze import changed_entries
from .relabel_freeze import confusion_figure as confusion_figure  # re-exported: the same 6 -> 3 setting as 01
from .relabel_freeze import report as report

FORGET, TAUGHT_AS = 6, 3


@dataclass(frozen=True)
class Bars:
    """Q3's bars on the real test set."""

    min_class3: float  # class 3 (which now also receives the 6s), at least
    min_modified: float  # accuracy on the modified labels, at least
    max_forget: float  # class 6 on the original labels, at most
    max_drop: float  # points another class may fall below both the original and the retrained model


BARS = {"quick": Bars(0.985, 0.97, 0.01, 3.0), "full": Bars(0.99, 0.99, 0.01, 0.5)}


@dataclass(frozen=True)
class Budget:
    """What Q3 may spend: a share of the weights, never a retraining (which changes every weight)."""

    max_fraction: float  # share of the conv and linear entries that may change (the mask's fraction), at most


BUDGETS = {"quick": Budget(0.10), "full": Budget(0.10)}


def changed_share(model: nn.Module, original: nn.Module) -> float:
    """The share of the conv and linear entries of ``model`` that differ from ``original``'s."""
    changed, total = changed_entries(model, original, saliency.candidate_parameters(original))
    return changed / total


def conditions(model: nn.Module, profile: Profile, device: torch.device | str = "cpu") -> list[Condition]:
    """Q3: class 6 gone, class 3 learned, no other class hurt (below both the original and the retrained model, as
    in lesson 01), within the budget of changed weights (a model retrained from scratch changes them all)."""
    bars, budget = for_profile(BARS, profile), for_profile(BUDGETS, profile)
    original = zoo.pretrained("cnn_bn", profile, device=device)
    after = report_on_test(model, (FORGET,), {FORGET: TAUGHT_AS}, device)
    drop, _ = largest_class_drop(after, references(profile, device), (TAUGHT_AS, FORGET))
    conv_linear = tuple(f"{n}." for n, m in original.named_modules() if isinstance(m, saliency.CANDIDATE_LAYERS))
    return [
        measured(
            "class 6 on the original labels (too high? a larger penalty weight or fraction)",
            after.per_class[FORGET],
            "<=",
            bars.max_forget,
        ),
        measured(
            "class 3 (too low? a larger fraction lets more weights carry the 6s to 3)",
            after.per_class[TAUGHT_AS],
            ">=",
            bars.min_class3,
        ),
        measured(
            "accuracy on the modified labels (too low? see which classes fell in the table above)",
            after.relabelled_acc,
            ">=",
            bars.min_modified,
        ),
        measured(
            "largest fall of another class below both the original and the retrained model (too large? a smaller "
            "fraction or penalty weight moves fewer shared features)",
            drop,
            "<=",
            bars.max_drop,
            unit="points",
        ),
        measured(
            "share of the conv and linear weights changed (over the budget? a smaller fraction)",
            changed_share(model, original),
            "<=",
            budget.max_fraction,
        ),
        Condition("BatchNorm parameters and statistics are the original's", same_weights(model, original, conv_linear)),
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


# ----------------------------------------------------------------------------------------------------------
# The notebook's setting, runs and figures


@dataclass(frozen=True)
class Sizes:
    """How much data the notebook fine-tunes on."""

    train_subset: int | None  # fine-tuning images, a stratified subset (None: all 60,000)


SIZES = {"quick": Sizes(train_subset=10_000), "full": Sizes(train_subset=None)}


class Setting(NamedTuple):
    """The models and data every cell of the notebook uses."""

    model: nn.Module  # the original cnn_bn (zoo)
    retrained: nn.Module  # the gold standard, retrained from scratch without any 6 (zoo)
    splits: Splits  # class-6 splits of the profile's fine-tuning subset
    relabelled_train: TensorData  # retain + forget training images, every 6 labelled 3


def setting(profile: Profile, seed: int, device: torch.device | str) -> Setting:
    """The original and the retrained model, the splits and the relabelled training set of ``profile``."""
    splits = class_splits([FORGET], train_subset=for_profile(SIZES, profile).train_subset, seed=seed)
    return Setting(
        zoo.pretrained("cnn_bn", profile, seed=seed, device=device),
        zoo.retrained((FORGET,), "cnn_bn", profile, seed=seed, device=device),
        splits,
        relabelled_training_set(splits, {FORGET: TAUGHT_AS}),
    )


def finetune_config(profile: Profile) -> penalty.Config:
    """The penalty method's settings for ``profile`` (the notebook's ``cfg``)."""
    return for_profile(penalty.CONFIGS, profile)


def class_line(result: UnlearningReport) -> str:
    """Accuracy on class 3 and class 6, one line."""
    return f"class 3: {100 * result.per_class[TAUGHT_AS]:.2f} %, class 6: {100 * result.per_class[FORGET]:.2f} %"


def references_text(before: UnlearningReport, gold: UnlearningReport) -> str:
    """The original next to the retrained model, and the original's classes 3 and 6."""
    return f"{report_table({'original': before, 'retrained from scratch': gold})}\n{class_line(before)}"


def saliency_scores(model: nn.Module, splits: Splits, device: torch.device | str) -> dict[str, torch.Tensor]:
    """|dL_6/dw| summed over the training 6s (true labels), per conv and linear parameter."""
    return saliency.gradient_saliency(model, make_loader(splits.forget, 256), device)


def scores_text(scores: Mapping[str, torch.Tensor]) -> str:
    """One line per scored parameter: its shape and mean score."""
    return "\n".join(
        f"{name:12s} {str(tuple(s.shape)):18s} mean score {s.mean().item():.2e}" for name, s in scores.items()
    )


def masks(scores: Mapping[str, torch.Tensor], fraction: float) -> saliency.Masks:
    """The entries with the top ``fraction`` of the scores, ranked across all tensors (the package's Q1)."""
    return saliency.top_fraction_mask(dict(scores), fraction)


def mask_table(masks: Mapping[str, torch.Tensor]) -> str:
    """How many entries of each parameter the mask chooses, out of how many."""
    rows = [f"{'parameter':12s} {'chosen':>8s} {'of':>8s} {'share':>7s}"]
    for name, row in saliency.mask_summary(masks).items():
        rows.append(f"{name:12s} {row['chosen']:8d} {row['size']:8d} {100 * row['fraction']:6.2f}%")
    return "\n".join(rows)


class Run(NamedTuple):
    """One fine-tuning run of the penalty method, with its report on the test set."""

    model: nn.Module
    history: History
    report: UnlearningReport


def run_recipe(
    model: nn.Module,
    splits: Splits,
    config: penalty.Config,
    seed: int,
    device: torch.device | str,
    masks: Mapping[str, torch.Tensor] | None = None,
    **changes: object,
) -> Run:
    """The penalty method with ``config`` changed by ``changes`` (e.g. ``penalty="unbounded"``), and its report."""
    result = penalty.unlearn(model, splits, replace(config, **changes), device=device, seed=seed, masks=masks)
    return Run(result.model, result.history, report(result.model, device))


def unbounded_text(naive: Run, before: UnlearningReport) -> str:
    """The unbounded penalty's first and last step loss, and its model next to the original."""
    loss = naive.history.step_loss
    table = report_table({"original": before, "unbounded penalty (log p6)": naive.report})
    return f"loss: first step {loss[0]:.2f}, last step {loss[-1]:.1f}\n{table}"


def unbounded_figure(naive: Run) -> Figure:
    """The training loss with the unbounded penalty."""
    return plot_history({"CE + log p6": naive.history}, "training loss with the unbounded penalty")


def unlearn(
    model: nn.Module,
    splits: Splits,
    scores: Mapping[str, torch.Tensor],
    profile: Profile,
    *,
    fraction: float,
    weight: float,
    seed: int,
    device: torch.device | str,
) -> Run:
    """Q3's training: the top ``fraction`` of ``scores`` trainable, CE on the relabelled data + ``weight`` times the
    bounded penalty, the profile's epochs and learning rate; the original is kept."""
    budget = for_profile(BUDGETS, profile)
    if not 0 < fraction <= budget.max_fraction:
        raise ValueError(f"fraction must be in (0, {budget.max_fraction:g}] (the budget), got {fraction}")
    if weight < 0:
        raise ValueError(f"weight must be >= 0, got {weight}")
    config = replace(finetune_config(profile), fraction=fraction, weight=weight)
    return run_recipe(model, splits, config, seed, device, masks=masks(scores, fraction))


def reference_run(
    model: nn.Module,
    splits: Splits,
    scores: Mapping[str, torch.Tensor],
    profile: Profile,
    seed: int,
    device: torch.device | str,
) -> Run:
    """The course's answer to Q3 (the package's settings): what the cells after Q3 use."""
    config = finetune_config(profile)
    return unlearn(
        model, splits, scores, profile, fraction=config.fraction, weight=config.weight, seed=seed, device=device
    )


def targets_text(profile: Profile) -> str:
    """Q3's targets and budget in ``profile``, from the bars the check applies."""
    bars, budget = for_profile(BARS, profile), for_profile(BUDGETS, profile)
    epochs = finetune_config(profile).num_epochs
    return (
        f"targets ({profile.name} profile), on the real test set:\n"
        f"  class {FORGET} on the original labels         <= {100 * bars.max_forget:.2f} %\n"
        f"  class {TAUGHT_AS}                               >= {100 * bars.min_class3:.2f} %\n"
        f"  accuracy on the modified labels    >= {100 * bars.min_modified:.2f} %\n"
        f"  no other class more than {bars.max_drop:g} points below both the original and the retrained model\n"
        f"budget: at most {100 * budget.max_fraction:g} % of the conv and linear weights changed, BatchNorm untouched, "
        f"{epochs} epoch(s) over the relabelled training set"
    )


def result_text(before: UnlearningReport, after: UnlearningReport, gold: UnlearningReport, changed: float) -> str:
    """Q3's model next to the original and the retrained one, its classes 3 and 6, its largest drop elsewhere, and
    the share of the weights it changed."""
    table = report_table({"original": before, "saliency + bounded penalty": after, "retrained from scratch": gold})
    drop, worst = largest_class_drop(after, [before, gold], skip=[FORGET, TAUGHT_AS])
    return (
        f"{table}\n{class_line(after)}\nlargest drop on another class below both the original and the retrained "
        f"model: {drop:.2f} points (class {worst})\nshare of the conv and linear weights changed: {100 * changed:.2f} %"
    )


def comparison_text(
    before: UnlearningReport, baseline: Run, naive: Run, after: UnlearningReport, gold: UnlearningReport
) -> str:
    """Every model of the notebook in one table."""
    return report_table(
        {
            "original": before,
            "output layer only (01)": baseline.report,
            "unbounded penalty (log p6)": naive.report,
            "saliency + bounded penalty": after,
            "retrained from scratch": gold,
        }
    )


def per_class_figure(
    before: UnlearningReport, baseline: Run, after: UnlearningReport, gold: UnlearningReport
) -> Figure:
    """Per-class accuracy of the original, notebook 01's recipe, Q3's model and the retrained one."""
    series = {
        "original": before.per_class,
        "output layer only": baseline.report.per_class,
        "saliency + bounded": after.per_class,
        "retrained": gold.per_class,
    }
    return plot_per_class(series, "accuracy per class, original labels", highlight=[FORGET, TAUGHT_AS])


def history_figure(baseline: Run, history: History) -> Figure:
    """The fine-tuning loss of notebook 01's recipe and of Q3's run."""
    runs = {"output layer only, CE": baseline.history, "saliency, CE + bounded penalty": history}
    return plot_history(runs, "fine-tuning loss")


HEADLINES = (
    Headline(
        "unlearned_class3_acc",
        "saliency + bounded penalty, class 3",
        reference="97.43 -> 99.01 % (Fabbri, Shani 2024)",
        bars=bars_from(BARS, ">=", lambda b: 100 * b.min_class3),
        summary=True,
    ),
    Headline(
        "unlearned_class6_acc",
        "saliency + bounded penalty, class 6 on the original labels",
        reference="99.27 -> 0.00 % (Fabbri, Shani 2024)",
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
        reference="89.36 % (Fabbri, Shani 2024)",
        retrained="retrained_test_acc",
    ),
    Headline(
        "output_layer_only_test_acc",
        "output layer only (notebook 01's method), test accuracy",
        retrained="retrained_test_acc",
    ),
    Headline(
        "seed000_penalty_test_acc",
        "the unbounded penalty (log p6, as in Shani, 2024), test accuracy",
        reference="its loss went negative (Shani 2024)",
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

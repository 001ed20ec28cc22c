"""Lesson 03 (``03_distillation``): a student distilled from the teacher, with class 6's mass moved to 3."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import NamedTuple

import torch
from matplotlib.figure import Figure
from torch import nn

from .. import zoo
from ..config import Profile
from ..data import Splits, TensorData, class_splits, make_loader, relabelled_training_set
from ..methods import bad_teacher, distill, losses
from ..methods.base import UnlearningResult
from ..metrics import UnlearningReport, largest_class_drop, report_table
from ..plots import plot_history, plot_per_class
from ..training import History, predict
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
from .relabel_freeze import confusion_figure as confusion_figure  # re-exported: the same 6 -> 3 setting as 01
from .relabel_freeze import report

FORGET, TAUGHT_AS = 6, 3


@dataclass(frozen=True)
class Bars:
    """Q3's bars for the distilled student on the real test set."""

    max_forget: float  # class 6 on the original labels, at most
    min_modified: float  # accuracy on the modified labels, at least
    max_drop: float  # points a class other than 3 and 6 may fall below both the teacher and the retrained model


BARS = {"quick": Bars(0.01, 0.96, 4.0), "full": Bars(0.005, 0.992, 0.5)}


@dataclass(frozen=True)
class Budget:
    """What Q3 may spend: a few passes over the profile's training subset (``train_student`` refuses more)."""

    max_epochs: int  # passes over the relabelled training subset, at most


BUDGETS = {"quick": Budget(3), "full": Budget(8)}


def conditions(model: nn.Module, profile: Profile, device: torch.device | str = "cpu") -> list[Condition]:
    """Q3: the distilled student forgets 6, reads it as 3 and keeps the other classes (measured below both the
    teacher and the retrained model, as in lesson 01)."""
    bars = for_profile(BARS, profile)
    after = report_on_test(model, (FORGET,), {FORGET: TAUGHT_AS}, device)
    drop, _ = largest_class_drop(after, references(profile, device), (TAUGHT_AS, FORGET))
    return [
        measured(
            "class 6 on the original labels (too high? what do the teacher's targets say about a 6?)",
            after.per_class[FORGET],
            "<=",
            bars.max_forget,
        ),
        measured(
            "accuracy on the modified labels (too low? train longer within the budget, or weigh the labels and the "
            "teacher differently)",
            after.relabelled_acc,
            ">=",
            bars.min_modified,
        ),
        measured(
            "largest fall of a class other than 3 and 6 below both the teacher and the retrained model (too large? "
            "train longer, or let the teacher's soft targets carry more about the other digits)",
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


# ----------------------------------------------------------------------------------------------------------
# The notebook's setting, runs and figures


@dataclass(frozen=True)
class Sizes:
    """How much data the students learn from."""

    train_subset: int | None  # student training images, a stratified subset (None: all 60,000)


SIZES = {"quick": Sizes(train_subset=6_000), "full": Sizes(train_subset=None)}


class Setting(NamedTuple):
    """The models and data every cell of the notebook uses."""

    teacher: nn.Module  # the original cnn_bn (zoo)
    retrained: nn.Module  # the gold standard, retrained from scratch without any 6 (zoo)
    splits: Splits  # class-6 splits of the profile's training subset
    relabelled_train: TensorData  # retain + forget training images, every 6 labelled 3


def setting(profile: Profile, seed: int, device: torch.device | str) -> Setting:
    """The teacher and the retrained model, the splits and the relabelled training set of ``profile``."""
    splits = class_splits([FORGET], train_subset=for_profile(SIZES, profile).train_subset, seed=seed)
    return Setting(
        zoo.pretrained("cnn_bn", profile, seed=seed, device=device),
        zoo.retrained((FORGET,), "cnn_bn", profile, seed=seed, device=device),
        splits,
        relabelled_training_set(splits, {FORGET: TAUGHT_AS}),
    )


def student_config(profile: Profile) -> distill.Config:
    """The distilled student's settings for ``profile`` (the notebook's ``cfg``)."""
    return for_profile(distill.CONFIGS, profile)


def train_student(
    teacher: nn.Module,
    splits: Splits,
    profile: Profile,
    *,
    temperature: float,
    targets: str,
    alpha: float,
    num_epochs: int,
    seed: int,
    device: torch.device | str,
) -> Run:
    """Q3's training: a fresh student on the relabelled data with alpha * CE + (1 - alpha) * T^2 KL(targets || student),
    the teacher's targets at ``temperature`` treated by ``targets`` ("keep", "move" or "drop" the 6), and its report."""
    budget = for_profile(BUDGETS, profile)
    if not 1 <= num_epochs <= budget.max_epochs:
        raise ValueError(f"num_epochs must be 1 to {budget.max_epochs} in the {profile.name} profile (the budget)")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    config = replace(
        student_config(profile), temperature=temperature, targets=targets, alpha=alpha, num_epochs=num_epochs
    )
    result = distill.unlearn(teacher, splits, config, device=device, seed=seed)
    return Run(result, report(result.model, device))


def reference_run(teacher: nn.Module, splits: Splits, profile: Profile, seed: int, device: torch.device | str) -> Run:
    """The course's answer to Q3 (the package's settings): what the cells after Q3 use."""
    config = student_config(profile)
    return train_student(
        teacher,
        splits,
        profile,
        temperature=config.temperature,
        targets=config.targets,
        alpha=config.alpha,
        num_epochs=config.num_epochs,
        seed=seed,
        device=device,
    )


def reference_text(profile: Profile) -> str:
    """The reference run's settings, one line."""
    config = student_config(profile)
    return (
        f"reference run: temperature {config.temperature:g}, targets {config.targets!r}, alpha {config.alpha:g}, "
        f"{config.num_epochs} epoch(s)"
    )


def targets_text(profile: Profile) -> str:
    """Q3's targets and budget in ``profile``, from the bars the check applies."""
    bars, budget = for_profile(BARS, profile), for_profile(BUDGETS, profile)
    subset = for_profile(SIZES, profile).train_subset
    images = "all 60,000" if subset is None else f"{subset:,}"
    return (
        f"targets ({profile.name} profile), on the real test set:\n"
        f"  class {FORGET} on the original labels         <= {100 * bars.max_forget:.2f} %\n"
        f"  accuracy on the modified labels    >= {100 * bars.min_modified:.2f} %\n"
        f"  no class other than {TAUGHT_AS} and {FORGET} more than {bars.max_drop:g} points below both the teacher and "
        "the retrained model\n"
        f"budget: at most {budget.max_epochs} epochs over {images} training images, from random weights"
    )


def references_text(before: UnlearningReport, gold: UnlearningReport) -> str:
    """The teacher next to the retrained model."""
    return report_table({"teacher (original)": before, "retrained from scratch": gold})


class Run(NamedTuple):
    """A trained student and its report on the test set."""

    result: UnlearningResult  # the method's result: model, cost, history (and, for distillation, the loss terms)
    report: UnlearningReport


def demo_config(config: distill.Config, **changes: object) -> distill.Config:
    """Section 3's demonstration: one epoch, listening mostly to the raw teacher (alpha 0.1, targets kept)."""
    return replace(config, num_epochs=1, alpha=0.1, targets="keep", **changes)


class Demonstrations(NamedTuple):
    """Section 3's two students: the double softmax (the flat-loss hypothesis) and the correct loss, both with the
    teacher's 6 kept."""

    flat: Run  # softmax applied twice (the hypothesis for Shani's flat loss)
    moving: Run  # log-probabilities, the targets as they are: the 6 leaks back


def demonstrations(
    teacher: nn.Module, splits: Splits, config: distill.Config, seed: int, device: torch.device | str
) -> Demonstrations:
    """Train both demonstration students and report on them."""

    def run(demo: distill.Config) -> Run:
        result = distill.unlearn(teacher, splits, demo, device=device, seed=seed)
        return Run(result, report(result.model, device))

    return Demonstrations(run(demo_config(config, loss="double_softmax")), run(demo_config(config)))


def flat_loss_text(demos: Demonstrations) -> str:
    """Section 3's test of the double-softmax hypothesis: how far each KD term moved, and whether the buggy one
    stayed constant as Shani's report printed its loss (4 decimals)."""
    flat, moving = demos.flat.result.parts.kd, demos.moving.result.parts.kd
    flat_span, moving_span = max(flat) - min(flat), max(moving) - min(moving)
    ratio = moving_span / flat_span if flat_span else float("inf")
    printed = len({f"{v:.4f}" for v in flat})
    verdict = "constant, as in the report" if printed == 1 else "not constant"
    return (
        f"double softmax: KD term from {flat[0]:.4f} to {flat[-1]:.4f}, spread {flat_span:.4f} over {len(flat)} steps\n"
        f"log-probabilities: KD term from {moving[0]:.2f} to {moving[-1]:.2f}, spread {moving_span:.2f}\n"
        f"the correct term spreads {ratio:.0f} times as far as the double-softmax one\n"
        f"printed with 4 decimals, the double-softmax term takes {printed} distinct value(s): {verdict}"
    )


def kd_figure(demos: Demonstrations) -> Figure:
    """The distillation term per step, softmax applied twice against the logits."""
    terms = {
        "KD term, softmax applied twice": History(step_loss=demos.flat.result.parts.kd),
        "KD term, logits (fixed)": History(step_loss=demos.moving.result.parts.kd),
    }
    return plot_history(terms, "distillation term per step")


def prob_of_forget_class(model: nn.Module, splits: Splits, device: torch.device | str) -> float:
    """Mean probability of class 6 on the test images of class 6."""
    logits, _ = predict(model, make_loader(splits.test_forget), device)
    return logits.softmax(1)[:, FORGET].mean().item()


def leak_text(
    teacher: nn.Module,
    leaky: Run,
    retrained: nn.Module,
    before: UnlearningReport,
    splits: Splits,
    device: torch.device | str,
) -> str:
    """The student taught the teacher's 6 next to the teacher, and how much probability each gives to 6."""
    table = report_table({"teacher": before, "student, class 6 left in the targets": leaky.report})
    teacher_p, leaky_p = (prob_of_forget_class(m, splits, device) for m in (teacher, leaky.result.model))
    return (
        f"{table}\nmean probability of 6 on test 6s: teacher {teacher_p:.3f}, student taught with the raw targets "
        f"{leaky_p:.3f}, retrained {prob_of_forget_class(retrained, splits, device):.4f}"
    )


def student_text(
    student: nn.Module,
    splits: Splits,
    before: UnlearningReport,
    after: UnlearningReport,
    gold: UnlearningReport,
    device: torch.device | str,
) -> str:
    """Q3's student next to the teacher and the retrained model, its class 6, its probability of 6, its worst
    drop on another class."""
    table = report_table({"teacher": before, "student (6 moved to 3)": after, "retrained from scratch": gold})
    drop, worst = largest_class_drop(after, [before, gold], skip=[FORGET, TAUGHT_AS])
    return (
        f"{table}\nclass 6: {100 * after.per_class[FORGET]:.2f} %, modified labels: {100 * after.relabelled_acc:.2f} %"
        f"\nmean probability of 6 on test 6s: {prob_of_forget_class(student, splits, device):.4f}\n"
        f"largest drop on another class below both the teacher and the retrained model: {drop:.2f} points "
        f"(class {worst})"
    )


def bad_teacher_config(profile: Profile) -> bad_teacher.Config:
    """The bad-teacher method's settings for ``profile``."""
    return for_profile(bad_teacher.CONFIGS, profile)


def bad_teacher_run(
    teacher: nn.Module, splits: Splits, config: bad_teacher.Config, seed: int, device: torch.device | str
) -> Run:
    """Chundawat et al.'s bad-teacher student (a copy of the teacher, two teachers), and its report."""
    result = bad_teacher.unlearn(teacher, splits, config, device=device, seed=seed)
    return Run(result, report(result.model, device))


def bad_teacher_text(bad: Run, before: UnlearningReport, gold: UnlearningReport) -> str:
    """The bad-teacher student next to the teacher and the retrained model, and its test 6s still read as 6."""
    table = report_table({"teacher": before, "bad-teacher student": bad.report, "retrained from scratch": gold})
    return (
        f"{table}\ntest 6s still read as 6: bad-teacher student {100 * bad.report.per_class[FORGET]:.2f} %, "
        f"retrained model {100 * gold.per_class[FORGET]:.2f} %"
    )


def side_by_side_text(
    before: UnlearningReport, demos: Demonstrations, after: UnlearningReport, bad: Run, gold: UnlearningReport
) -> str:
    """Every model of the notebook in one table."""
    return report_table(
        {
            "teacher (original)": before,
            "student, flat loss (1 epoch, alpha 0.1)": demos.flat.report,
            "student, 6 left in targets (1 epoch, alpha 0.1)": demos.moving.report,
            "student, 6 moved to 3": after,
            "bad-teacher student": bad.report,
            "retrained from scratch": gold,
        }
    )


def per_class_figure(before: UnlearningReport, after: UnlearningReport, bad: Run, gold: UnlearningReport) -> Figure:
    """Per-class accuracy of the teacher, both students and the retrained model, classes 3 and 6 shaded."""
    series = {
        "teacher": before.per_class,
        "student": after.per_class,
        "bad teacher": bad.report.per_class,
        "retrained": gold.per_class,
    }
    return plot_per_class(series, "accuracy per class, original labels", highlight=[FORGET, TAUGHT_AS])


def history_figure(history: History, bad: Run) -> Figure:
    """The training loss of Q3's student and of the bad-teacher student."""
    return plot_history({"student (CE + KD)": history, "bad teacher (KD only)": bad.result.history}, "training loss")


HEADLINES = (
    Headline(
        "student_modified_acc",
        "distilled student, test accuracy on the modified labels",
        reference="99.16 % (Shani 2024)",
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
        reference="89.65 % (Shani 2024)",
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
        "q2": FunctionQuestion(
            "teacher_targets",
            _teacher_targets_cases,
            _teacher_targets_reference,
            equivalents=(distill.move_class_mass,),
        ),
        "q3": ResultQuestion("cnn_bn", conditions),
    },
    headlines=HEADLINES,
    needs=((), (FORGET,)),
)

"""Each notebook's headline metrics: what they mean, their unit, the seed's or paper's figure and the profile's bar.

The one source for ``report.md`` and for the README's results table (:mod:`unlearnlab.course.report`). Keys are
the names the notebooks pass to :func:`unlearnlab.record`; recorded accuracies are in percent, so bars are too
(a check cell's ``0.985`` is a bar at 98.5). Reference figures are quoted from the seed reports and papers, with
their source; they are theirs, not ours.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

PROFILES = ("quick", "full")


@dataclass(frozen=True)
class Bar:
    """A threshold a recorded value must meet: ``value >= at`` or ``value <= at``."""

    op: Literal[">=", "<="]
    at: float  # in the metric's unit
    graded: bool = True  # True: a check cell enforces it; False: a course target no check cell enforces (yet)

    def passes(self, value: float) -> bool:
        """Whether ``value`` meets the bar."""
        return value >= self.at if self.op == ">=" else value <= self.at

    def __str__(self) -> str:
        text = f"{'≥' if self.op == '>=' else '≤'} {self.at:g}"
        return text if self.graded else f"{text} (target)"


@dataclass(frozen=True)
class Headline:
    """One headline metric of a notebook, as a reader needs it to judge the recorded value."""

    key: str  # the name given to record(...)
    label: str  # what the number is, in words
    unit: str = "%"  # "%", "s", "images", "" (a ratio) ...
    reference: str = ""  # the seed's or paper's figure with its source, e.g. "99.25 % (seeds 000/001)"
    bars: dict[str, Bar] = field(default_factory=dict)  # per profile name ("quick", "full")
    retrained: str | None = None  # recorded key holding the retrained model's value of the same quantity
    reached: str | None = None  # recorded bool key: False marks this value "not reached"
    digits: int = 2  # decimals shown
    summary: bool = False  # also a row of the README's headline table


def both(op: Literal[">=", "<="], at: float, graded: bool = True) -> dict[str, Bar]:
    """The same bar in every profile."""
    return {name: Bar(op, at, graded) for name in PROFILES}


def per_profile(op: Literal[">=", "<="], quick: float, full: float, graded: bool = True) -> dict[str, Bar]:
    """A bar that differs between the quick and the full profile."""
    return {"quick": Bar(op, quick, graded), "full": Bar(op, full, graded)}


HEADLINES: dict[str, tuple[Headline, ...]] = {
    "01_relabel_freeze": (
        Headline(
            "unlearned_modified_acc",
            "relabelled model, test accuracy on the modified labels (6 read as 3)",
            reference="99.25 % (seeds 000/001)",
            bars=per_profile(">=", 98.5, 99.25),
            summary=True,
        ),
        Headline(
            "unlearned_class6_acc",
            "relabelled model, class 6 on the original labels",
            reference="0.00 % (seeds 000/001)",
            bars=both("<=", 1.0),
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
    ),
    "02_penalty_loss": (
        Headline(
            "unlearned_class3_acc",
            "saliency + bounded penalty, class 3",
            reference="97.43 -> 99.01 % (seeds 001/000)",
            bars=per_profile(">=", 98.5, 99.0),
            summary=True,
        ),
        Headline(
            "unlearned_class6_acc",
            "saliency + bounded penalty, class 6 on the original labels",
            reference="99.27 -> 0.00 % (seeds 001/000)",
            bars=both("<=", 1.0),
            summary=True,
        ),
        Headline(
            "unlearned_modified_acc",
            "saliency + bounded penalty, test accuracy on the modified labels",
            bars=per_profile(">=", 97.0, 99.0),
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
    ),
    "03_distillation": (
        Headline(
            "student_modified_acc",
            "distilled student, test accuracy on the modified labels",
            reference="99.16 % (seed 000)",
            bars=per_profile(">=", 96.0, 99.2),
            summary=True,
        ),
        Headline(
            "student_class6_acc",
            "distilled student, class 6 on the original labels",
            bars=per_profile("<=", 1.0, 0.5),
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
    ),
    "04_zero_shot": (
        Headline(
            "gkt_retain_acc",
            "GKT (β = 250), retain accuracy (the rule's snapshot, or the final student when it never fired)",
            reference="97.12 % (paper, quoted by seed 002)",
            bars=per_profile(">=", 90.0, 97.0, graded=False),
            retrained="retrained_retain_acc",
            summary=True,
        ),
        Headline(
            "gkt_forget_acc",
            "GKT (β = 250), forget accuracy (the rule's snapshot, or the final student)",
            bars=both("<=", 1.0, graded=False),
            summary=True,
        ),
        Headline("gkt_final_forget_acc", "GKT (β = 250), forget accuracy at the end of the run"),
        Headline(
            "gkt_entropy_retain_acc",
            "GKT + entropy filter 0.6, retain accuracy",
            reference="98.3 % in 500 epochs, against 850 without (paper, quoted by seed 002)",
            retrained="retrained_retain_acc",
        ),
        Headline(
            "gkt_beta0_retain_acc", "GKT without attention (β = 0), retain accuracy", retrained="retrained_retain_acc"
        ),
        Headline("gkt_beta0_final_forget_acc", "GKT without attention (β = 0), forget accuracy at the end of the run"),
        Headline("gkt_seconds", "GKT (β = 250), unlearning time", unit="s"),
        Headline(
            "emmn_retain_acc",
            "EMMN (zero-shot), retain accuracy",
            reference="10.57 % (paper, quoted by seed 002)",
            retrained="retrained_retain_acc",
        ),
        Headline("emmn_forget_acc", "EMMN (zero-shot), forget accuracy"),
        Headline(
            "unsir_retain_acc",
            "UNSIR (50 real retain images per class), retain accuracy",
            retrained="retrained_retain_acc",
        ),
        Headline(
            "original_retain_acc",
            "original model, retain accuracy",
            reference="97.84 % (paper, quoted by seed 002)",
            retrained="retrained_retain_acc",
        ),
        Headline(
            "retrained_retain_acc",
            "retrained model (gold standard), retain accuracy",
            reference="99.25 % (paper, quoted by seed 002)",
        ),
        Headline(
            "ain_gkt",
            "anamnesis index, GKT (β = 250) at the snapshot (retrained = 1)",
            unit="",
            reached="ain_gkt_reached",
        ),
        Headline("ain_emmn", "anamnesis index, EMMN (retrained = 1)", unit="", reached="ain_emmn_reached"),
        Headline(
            "ain_original", "anamnesis index, original model (retrained = 1)", unit="", reached="ain_original_reached"
        ),
    ),
    "05_deepinversion": (
        Headline(
            "student_retain_acc",
            "DeepInversion student (zero-shot), retain accuracy on real test images",
            reference="40-50 % from 100 img/class, 80-85 % from 6,000 (seed 002)",
            bars=per_profile(">=", 95.0, 97.0),
            retrained="retrained_retain_acc",
            summary=True,
        ),
        Headline(
            "student_forget_acc",
            "DeepInversion student (zero-shot), forget accuracy on real test images",
            bars=both("<=", 1.0),
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
    ),
    "06_mia_pruning": (
        Headline(
            "original_mia",
            "memorising Fashion-MNIST model, simple_mia on its forget set (0.5 = chance)",
            unit="",
            reference="0.578 (seed 003, CIFAR-10 ResNet-18)",
            retrained="retrained_mia",
            digits=3,
            summary=True,
        ),
        Headline(
            "prune_mia",
            "prune (90 %), then fine-tune on retain: simple_mia",
            unit="",
            reference="0.52 (seed 003's pruning)",
            retrained="retrained_mia",
            digits=3,
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
        Headline(
            "dummy_labels_mia",
            "dummy labels (forget images taught a random wrong class): simple_mia",
            unit="",
            reference="0.505 (seed 003)",
            retrained="retrained_mia",
            digits=3,
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
        Headline("finetune_mia", "fine-tuning on retain: simple_mia", unit="", retrained="retrained_mia", digits=3),
        Headline(
            "gradient_ascent_mia", "gradient ascent on forget: simple_mia", unit="", retrained="retrained_mia", digits=3
        ),
        Headline("l1_sparse_mia", "l1-sparse fine-tune: simple_mia", unit="", retrained="retrained_mia", digits=3),
        Headline("unlearned_mia", "the Q3 model: simple_mia", unit="", retrained="retrained_mia", digits=3),
        Headline(
            "unlearned_mia_off_band",
            "the Q3 model: simple_mia's distance outside the retrained band (0 = inside)",
            unit="",
            reference="the retrained range widened by 0.02 (quick) or 0.01 (full) each side (issue 12)",
            bars=both("<=", 0.0),
            digits=3,
            summary=True,
        ),
        Headline(
            "unlearned_test_drop",
            "the Q3 model: test accuracy below the retrained models' mean",
            unit="points",
            reference="at most 1 point (full, issue 12)",
            bars=per_profile("<=", 2.0, 1.0),
            summary=True,
        ),
        Headline(
            "unlearned_retain_drop",
            "the Q3 model: retain accuracy below the retrained models' mean",
            unit="points",
            bars=per_profile("<=", 2.0, 1.0),
        ),
        Headline("retrained_mia_std", "retrained models' simple_mia, standard deviation over seeds", unit="", digits=3),
        Headline(
            "mnist_mia",
            "course MNIST model (generalises), simple_mia on a random 10 % of its training images",
            unit="",
            digits=3,
        ),
    ),
    "07_amnesiac": (
        Headline(
            "q3_retain_acc",
            "partial amnesiac undo of Q3 (course CNN, no repair), retain accuracy",
            reference="95.2 % right after the full undo, 99 % after further training (Graves et al., 2021)",
            bars=per_profile(">=", 95.0, 98.5),
            retrained="retrained_retain_acc",
            summary=True,
        ),
        Headline(
            "q3_forget_class_acc",
            "partial amnesiac undo of Q3, test images of class 6",
            bars=both("<=", 1.0),
            summary=True,
        ),
        Headline(
            "partial_best_storage_ratio",
            "full ledger bytes / bytes of the sweep's best partial ledger (CNN)",
            unit="x",
            digits=0,
            reference="target: at least 10 x smaller at k <= 10 % (issue 14)",
            bars=both(">=", 10.0, graded=False),
        ),
        Headline(
            "partial_best_retain_acc",
            "sweep's best partial undo (CNN), retain accuracy",
            retrained="retrained_retain_acc",
        ),
        Headline("partial_best_forget_class_acc", "sweep's best partial undo (CNN), test images of class 6"),
        Headline("partial_best_mb", "sweep's best partial ledger (CNN), stored", unit="MB", digits=3),
        Headline(
            "full_ledger_mb",
            "full ledger of the CNN run, stored",
            unit="MB",
            digits=1,
            reference="about 45 MB per stored batch for ResNet-18 (Graves et al., 2021)",
        ),
        Headline(
            "full_undo_retain_acc",
            "full ledger undone, no repair, retain accuracy",
            reference="95.2 % (Graves et al., 2021, MNIST)",
            retrained="retrained_retain_acc",
        ),
        Headline("full_undo_forget_class_acc", "full ledger undone, no repair, test images of class 6"),
        Headline(
            "repaired_retain_acc",
            "full ledger undone + one repair epoch, retain accuracy",
            reference="99 % (Graves et al., 2021, MNIST)",
            retrained="retrained_retain_acc",
        ),
        Headline(
            "partial_repaired_retain_acc",
            "top 0.1 % of each update undone + one repair epoch (every retain image in the full profile), retain acc.",
            reference="target: at least 99 % (issue 14)",
            bars={"full": Bar(">=", 99.0, graded=False)},  # the quick repair runs over 3,000 images only
            retrained="retrained_retain_acc",
        ),
        Headline(
            "original_retain_acc", "original (ledger-trained CNN), retain accuracy", retrained="retrained_retain_acc"
        ),
        Headline("undo_gap_sgd", "full undo's distance to the retrained model / the original's (plain SGD)", unit=""),
        Headline("undo_gap_adam", "the same distance ratio with Adam", unit=""),
        Headline(
            "forget_mia",
            "sweep's best partial undo, simple_mia forgotten vs held-out 6s (0.5 = chance)",
            unit="",
            digits=3,
            retrained="retrained_mia",
        ),
    ),
    "08_capstone": (
        Headline(
            "class_best_tow",
            "class 6: the method closest to retraining, ToW against the retrained model (mean over seeds)",
            unit="",
            reference="1 = the retrained model's three accuracies (Zhao et al., 2024)",
            digits=4,
            summary=True,
        ),
        Headline("class_best_time_ratio", "class 6: that method's time over retraining's, timed in the run", unit=""),
        Headline(
            "class_finetune_tow", "class 6: fine-tuning on the retain set (the Q3 baseline), ToW", unit="", digits=4
        ),
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
    ),
}


def headlines(notebook: str) -> tuple[Headline, ...]:
    """The headline metrics of a notebook, by its stem (``01_relabel_freeze``); none for an unknown notebook."""
    return HEADLINES.get(notebook, ())


def bar(notebook: str, key: str, profile: str) -> Bar | None:
    """The profile's bar for one metric of a notebook, or None where it has none."""
    for entry in headlines(notebook):
        if entry.key == key:
            return entry.bars.get(profile)
    raise KeyError(f"{notebook} has no headline metric {key!r}")

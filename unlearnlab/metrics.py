"""Evaluation (accuracy per class, confusion matrix), forget/retain/test accuracy and distances between models."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from .data import NUM_CLASSES, TensorData, check_classes, class_mask, make_loader
from .training import Batches, pick_device, predict


def accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of rows of ``logits`` (N, C) whose argmax equals ``y`` (N,)."""
    return float((logits.argmax(1) == y).float().mean())


@dataclass
class Evaluation:
    """Accuracy overall and per class (in [0, 1]; NaN for a class absent from the data) and the confusion matrix."""

    accuracy: float
    per_class: list[float]
    confusion: np.ndarray  # (C, C): rows = true class, columns = predicted class
    n: int


def confusion_matrix(y_true: torch.Tensor, y_pred: torch.Tensor, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """Counts of (true, predicted) pairs: rows are true classes, columns predictions."""
    flat = y_true.long() * num_classes + y_pred.long()
    return torch.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes).numpy()


def evaluation_from_predictions(
    y_true: torch.Tensor, y_pred: torch.Tensor, num_classes: int = NUM_CLASSES
) -> Evaluation:
    """An :class:`Evaluation` from labels and predicted labels."""
    cm = confusion_matrix(y_true, y_pred, num_classes)
    support = cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = np.where(support > 0, np.diag(cm) / support, np.nan)
    n = int(support.sum())
    accuracy = float(np.trace(cm) / n) if n else float("nan")
    return Evaluation(accuracy, [float(a) for a in per_class], cm, n)


def evaluate(
    model: nn.Module, loader: Batches, device: str | torch.device = "auto", num_classes: int = NUM_CLASSES
) -> Evaluation:
    """Evaluate ``model`` on every batch of ``loader``."""
    logits, y = predict(model, loader, device)
    return evaluation_from_predictions(y, logits.argmax(1), num_classes)


@dataclass
class UnlearningReport:
    """Accuracies in [0, 1] on test data: the forget classes, the retained classes, everything."""

    forget_acc: float  # test images of the forget classes, original labels
    retain_acc: float  # test images of every other class
    test_acc: float  # all test images, original labels
    per_class: list[float]  # accuracy of each class 0-9, original labels
    relabelled_acc: float | None = None  # all test images with the relabel mapping applied (e.g. 6 -> 3)

    def as_dict(self) -> dict[str, object]:
        """A plain dict (for JSON and tables)."""
        return asdict(self)


def unlearning_report(
    model: nn.Module,
    test: TensorData,
    forget_classes: Iterable[int],
    relabel: Mapping[int, int] | None = None,
    device: str | torch.device = "auto",
) -> UnlearningReport:
    """Evaluate ``model`` once on ``test`` and split the result into forget/retain/test accuracy."""
    forget_classes = check_classes(forget_classes)
    logits, y = predict(model, make_loader(test), device)
    pred = logits.argmax(1)
    forget = class_mask(y, forget_classes)
    overall = evaluation_from_predictions(y, pred)
    relabelled_acc = None
    if relabel:
        y_new = y.clone()
        for old, new in relabel.items():
            y_new[y == old] = new
        relabelled_acc = float((pred == y_new).float().mean())
    return UnlearningReport(
        forget_acc=float((pred[forget] == y[forget]).float().mean()) if forget.any() else float("nan"),
        retain_acc=float((pred[~forget] == y[~forget]).float().mean()),
        test_acc=overall.accuracy,
        per_class=overall.per_class,
        relabelled_acc=relabelled_acc,
    )


def largest_class_drop(
    after: UnlearningReport, references: Sequence[UnlearningReport], skip: Iterable[int] = ()
) -> tuple[float, int]:
    """The largest fall, in accuracy points, of a class below the lowest of ``references``' accuracies on it, and
    which class (classes in ``skip`` are left out).

    With the original and the retrained model as the references, what retraining itself gives up on a class is
    no fault of the method: 0.5 points is 5 test images of a class, within either model's seed-to-seed noise.
    """
    skip = set(skip)
    return max(
        (100 * (min(r.per_class[c] for r in references) - acc), c)
        for c, acc in enumerate(after.per_class)
        if c not in skip
    )


def report_table(reports: Mapping[str, UnlearningReport]) -> str:
    """A Markdown table of several reports, accuracies in percent."""
    has_relabel = any(r.relabelled_acc is not None for r in reports.values())
    header = ["model", "forget %", "retain %", "test %"] + (["relabelled %"] if has_relabel else [])
    rows = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, r in reports.items():
        cells = [name] + [f"{100 * v:.2f}" for v in (r.forget_acc, r.retain_acc, r.test_acc)]
        if has_relabel:
            cells.append("-" if r.relabelled_acc is None else f"{100 * r.relabelled_acc:.2f}")
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def js_divergence_probs(p: torch.Tensor, q: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Per-row Jensen-Shannon divergence (nats) of distributions ``p``, ``q`` (N, C): JS = (KL(p||m) + KL(q||m)) / 2."""
    m = (p + q) / 2
    kl_pm = (p * ((p + eps) / (m + eps)).log()).sum(1)
    kl_qm = (q * ((q + eps) / (m + eps)).log()).sum(1)
    return (kl_pm + kl_qm) / 2  # (N,), in [0, ln 2]


def activation_distance_probs(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Per-row L2 distance ||p - q||_2 between output distributions ``p``, ``q`` (N, C); in [0, sqrt(2)]."""
    return (p - q).norm(dim=1)  # (N,)


def _output_probs(
    model_a: nn.Module, model_b: nn.Module, loader: Batches, device: str | torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    device = pick_device(device)
    logits_a, _ = predict(model_a, loader, device)
    logits_b, _ = predict(model_b, loader, device)
    return logits_a.softmax(1), logits_b.softmax(1)


def js_divergence(
    model_a: nn.Module, model_b: nn.Module, loader: Batches, device: str | torch.device = "auto"
) -> float:
    """Mean JS divergence between two models' output distributions on ``loader`` (0 = identical)."""
    p, q = _output_probs(model_a, model_b, loader, device)
    return float(js_divergence_probs(p, q).mean())


def activation_distance(
    model_a: nn.Module, model_b: nn.Module, loader: Batches, device: str | torch.device = "auto"
) -> float:
    """Mean L2 distance between two models' output probabilities on ``loader`` (Chundawat et al., 2023)."""
    p, q = _output_probs(model_a, model_b, loader, device)
    return float((p - q).norm(dim=1).mean())

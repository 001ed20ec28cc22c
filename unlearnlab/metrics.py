"""Evaluation (accuracy per class, confusion matrix), forget/retain/test accuracy, distances between models, the
ToW and Pareto summaries, and the one definition of the retrained band."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from .data import NUM_CLASSES, TensorData, check_classes, class_mask, make_loader
from .training import Batches, predict


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
    model: nn.Module, loader: Batches, device: torch.device | str = "cpu", num_classes: int = NUM_CLASSES
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
    device: torch.device | str = "cpu",
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
    device = torch.device(device)
    logits_a, _ = predict(model_a, loader, device)
    logits_b, _ = predict(model_b, loader, device)
    return logits_a.softmax(1), logits_b.softmax(1)


def js_divergence(model_a: nn.Module, model_b: nn.Module, loader: Batches, device: torch.device | str = "cpu") -> float:
    """Mean JS divergence between two models' output distributions on ``loader`` (0 = identical)."""
    p, q = _output_probs(model_a, model_b, loader, device)
    return float(js_divergence_probs(p, q).mean())


def activation_distance(
    model_a: nn.Module, model_b: nn.Module, loader: Batches, device: torch.device | str = "cpu"
) -> float:
    """Mean L2 distance between two models' output probabilities on ``loader`` (Chundawat et al., 2023)."""
    p, q = _output_probs(model_a, model_b, loader, device)
    return float((p - q).norm(dim=1).mean())


# ----------------------------------------------------------------------------------------------------------
# Summary scores, and the band a method must land in to be as good as retraining


def tug_of_war(accuracies: Sequence[float], reference: Sequence[float]) -> float:
    """ToW = prod_k (1 - |a_k - r_k|) over (forget, retain, test) accuracies in [0, 1] against the retrained model's
    (Zhao et al., 2024, *What makes unlearning hard and what to do about it*): 1 means retraining's accuracies."""
    if len(accuracies) != len(reference):
        raise ValueError(f"give as many accuracies as reference values, got {len(accuracies)} and {len(reference)}")
    return float(np.prod([1.0 - abs(float(a) - float(r)) for a, r in zip(accuracies, reference)]))


def pareto_front(points: Mapping[str, Sequence[float]]) -> list[str]:
    """Names of the points no other point dominates, every coordinate to be minimised, in the mapping's order.

    ``q`` dominates ``p`` when ``q <= p`` in every coordinate and ``q < p`` in at least one (equal points do not
    dominate each other, so both stay on the front).
    """
    values = {name: np.asarray(p, dtype=float) for name, p in points.items()}
    sizes = {v.shape for v in values.values()}
    if len(sizes) > 1:
        raise ValueError(f"every point needs the same number of coordinates, got shapes {sorted(sizes)}")

    def dominated(p: np.ndarray) -> bool:
        return any(bool((q <= p).all() and (q < p).any()) for q in values.values())

    return [name for name, p in values.items() if not dominated(p)]


@dataclass(frozen=True)
class Band:
    """Where a metric must land to be as good as retraining: ``low <= value <= high``."""

    low: float
    high: float

    def contains(self, value: float | None) -> bool | None:
        """Whether ``value`` is in the band (``None`` for a missing value)."""
        if value is None or not math.isfinite(value):
            return None
        return self.low <= value <= self.high

    def outside_by(self, value: float) -> float:
        """How far ``value`` lies outside the band (0 inside)."""
        return max(self.low - value, value - self.high, 0.0)


def retrained_band(
    values: Sequence[float], noise: float = 0.0, *, floor: float | None = None, ceiling: float | None = None
) -> Band:
    """The one definition of "as good as retraining" on one metric, used by ``compare`` and the lessons.

    ``values`` v_1..v_s are the metric of models retrained from scratch without the forget data (one per training
    seed; for a distance or a similarity between models, one per pair of retrained models). Retraining itself
    spreads over [min_i v_i, max_i v_i]; a single evaluation also carries the metric's own sampling noise ``noise``
    (:func:`binomial_noise` for an accuracy on n images, :func:`unlearnlab.mia.simple_mia_noise` for the MIA
    score, or a margin a lesson states). So the band is two-sided:

        [min_i v_i - noise, max_i v_i + noise]

    and a method below it has forgotten *more* than retraining does (over-forgetting), one above it less. Where
    one side cannot be wrong it is replaced: ``floor`` for the low end (a distance to the retrained model: 0),
    ``ceiling`` for the high end (ToW: 1).
    """
    if not len(values):
        raise ValueError("a retrained band needs at least one retrained value")
    v = np.asarray(values, dtype=float)
    low = float(v.min()) - noise if floor is None else floor
    high = float(v.max()) + noise if ceiling is None else ceiling
    return Band(low, high)


def binomial_noise(p: float, n: int) -> float:
    """Two binomial standard errors of an accuracy ``p`` measured on ``n`` images: ``2 sqrt(p (1 - p) / n)``."""
    p = min(max(p, 0.0), 1.0)
    return 2 * math.sqrt(p * (1 - p) / n)

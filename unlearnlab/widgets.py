"""The explorers of ``notebooks/``: a pure, tested function behind each widget, and the figure it draws.

Each explorer computes its data once (model outputs, losses, pruned accuracies, synthetic images); a slider or
dropdown then only re-runs one of the ``*_view`` functions below, which take tensors or arrays and return
numbers, and one ``plot_*`` function, which draws them. A notebook calls both once with the default values (a
static figure that survives on GitHub) and wraps them in ``ipywidgets.interact`` in a separate cell.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from torch import nn

from . import cache
from .data import TensorData, check_classes, make_loader
from .methods import deepinversion
from .methods.gkt import entropy, gate_mask
from .methods.losses import kd_loss, soft_targets
from .methods.pruning import global_magnitude_prune, sparsity
from .metrics import confusion_matrix
from .mia import attack_rates
from .mia_plots import plot_threshold_panels
from .plots import CourseFigure, image_grid
from .training import predict

# ----------------------------------------------------------------------------------------------------------
# Confusion matrix and per-class accuracy: original vs unlearned


def masked_predictions(logits: torch.Tensor, forget_classes: Iterable[int]) -> torch.Tensor:
    """Predictions (N,) from ``logits`` (N, C) with the forget classes never predicted (their logits set to -inf).

    The cheapest "unlearning" there is: the model is unchanged and only its output hides the classes.
    """
    if logits.dim() != 2:
        raise ValueError(f"logits must be (items, classes), got shape {tuple(logits.shape)}")
    forget = check_classes(forget_classes, logits.shape[1])
    if len(forget) >= logits.shape[1]:
        raise ValueError("every class is hidden: keep at least one")
    masked = logits.clone()
    masked[:, list(forget)] = float("-inf")
    return masked.argmax(1)


def per_class_accuracy(cm: np.ndarray) -> np.ndarray:
    """Accuracy of each class (C,) from a confusion matrix (rows true, columns predicted); NaN for an empty row."""
    cm = np.asarray(cm, dtype=float)
    support = cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, np.diag(cm) / support, np.nan)


@dataclass(frozen=True)
class ConfusionView:
    """Two models on the same labelled images."""

    forget_class: int
    cm_before: np.ndarray  # (C, C) confusion matrix of the original model
    cm_after: np.ndarray  # (C, C) confusion matrix of the unlearned model
    acc_before: np.ndarray  # (C,) per-class accuracy of the original model
    acc_after: np.ndarray  # (C,) per-class accuracy of the unlearned model
    moved_to: np.ndarray  # (C,) share of the forget class's images the unlearned model puts in each class


def confusion_view(
    y: torch.Tensor, pred_before: torch.Tensor, pred_after: torch.Tensor, forget_class: int
) -> ConfusionView:
    """Confusion matrices, per-class accuracies and where the forget class's images go after unlearning."""
    if not (len(y) == len(pred_before) == len(pred_after)):
        raise ValueError(f"labels and predictions differ in length: {len(y)}, {len(pred_before)}, {len(pred_after)}")
    (forget_class,) = check_classes([forget_class])
    cm_before, cm_after = confusion_matrix(y, pred_before), confusion_matrix(y, pred_after)
    row = cm_after[forget_class].astype(float)
    return ConfusionView(
        forget_class,
        cm_before,
        cm_after,
        per_class_accuracy(cm_before),
        per_class_accuracy(cm_after),
        row / max(row.sum(), 1.0),
    )


def plot_confusion_view(view: ConfusionView, before: str = "original", after: str = "unlearned") -> Figure:
    """The unlearned model's confusion matrix beside both models' per-class accuracy."""
    fig = CourseFigure(figsize=(10, 3.8))
    ax_cm, ax_bar = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.4]})
    cm = view.cm_after / np.maximum(view.cm_after.sum(axis=1, keepdims=True), 1)
    ax_cm.imshow(cm, cmap="Blues", vmin=0, vmax=1)
    n = cm.shape[0]
    ax_cm.set(xticks=range(n), yticks=range(n), xlabel="predicted", ylabel="true", title=f"{after}: confusion")
    ax_cm.add_patch(_row_box(view.forget_class, n))
    classes = np.arange(n)
    ax_bar.bar(classes - 0.2, 100 * view.acc_before, 0.4, label=before)
    ax_bar.bar(classes + 0.2, 100 * view.acc_after, 0.4, label=after)
    ax_bar.axvspan(view.forget_class - 0.5, view.forget_class + 0.5, color="red", alpha=0.08)
    ax_bar.set(xticks=classes, xlabel="class", ylabel="accuracy %", ylim=(0, 105), title="accuracy per class")
    ax_bar.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    return fig


def _row_box(row: int, n: int) -> Rectangle:
    return Rectangle((-0.5, row - 0.5), n, 1, fill=False, edgecolor="red", linewidth=1.5)


# ----------------------------------------------------------------------------------------------------------
# Distillation temperature


@dataclass(frozen=True)
class TemperatureView:
    """Soft targets of one image at temperature ``T`` and the size of the distillation gradient."""

    temperature: float
    teacher_probs: np.ndarray  # (C,) softmax(z_teacher / T)
    student_probs: np.ndarray  # (C,) softmax(z_student / T)
    kl: float  # KL(p^T || q^T) in nats
    grad_norm: float  # || d KL / d z_student ||: shrinks like 1/T^2 for large T
    scaled_grad_norm: float  # || d (T^2 KL) / d z_student || = T || q^T - p^T ||: about constant in T


def temperature_view(teacher_logits: torch.Tensor, student_logits: torch.Tensor, temperature: float) -> TemperatureView:
    """Softened outputs of one image's logits (C,) and the gradient of the distillation loss, with and without T^2."""
    if teacher_logits.dim() != 1 or teacher_logits.shape != student_logits.shape:
        raise ValueError(
            f"pass one image's logits (C,) for both models, got {tuple(teacher_logits.shape)} and "
            f"{tuple(student_logits.shape)}"
        )
    p = soft_targets(teacher_logits.detach().float()[None], temperature)  # (1, C); raises for T <= 0
    z = student_logits.detach().float()[None].clone().requires_grad_(True)  # (1, C)
    scaled = kd_loss(z, p, temperature)  # T^2 KL(p || q)
    (grad,) = torch.autograd.grad(scaled, z)
    kl = float(scaled.detach()) / temperature**2
    return TemperatureView(
        float(temperature),
        p[0].numpy(),
        soft_targets(z.detach(), temperature)[0].numpy(),
        kl,
        float(grad.norm()) / temperature**2,
        float(grad.norm()),
    )


def plot_temperature(
    view: TemperatureView, sweep: Sequence[TemperatureView], forget_class: int | None = None
) -> Figure:
    """Soft targets at the chosen temperature, and the gradient's size over a range of temperatures."""
    fig = CourseFigure(figsize=(10, 3.4))
    ax_p, ax_g = fig.subplots(1, 2)
    classes = np.arange(len(view.teacher_probs))
    ax_p.bar(classes - 0.2, view.teacher_probs, 0.4, label="teacher $p^T$")
    ax_p.bar(classes + 0.2, view.student_probs, 0.4, label="student $q^T$")
    if forget_class is not None:
        ax_p.axvspan(forget_class - 0.5, forget_class + 0.5, color="red", alpha=0.08)
    ax_p.set(
        xticks=classes,
        xlabel="class",
        ylabel="probability",
        ylim=(0, 1),
        title=f"soft targets, T = {view.temperature:g}",
    )
    ax_p.legend(fontsize=8)
    temps = [v.temperature for v in sweep]
    ax_g.plot(temps, [v.grad_norm for v in sweep], marker="o", label="KL alone")
    ax_g.plot(temps, [v.scaled_grad_norm for v in sweep], marker="o", label="$T^2$ KL")
    ax_g.axvline(view.temperature, color="gray", linestyle="--")
    ax_g.set(
        xscale="log",
        yscale="log",
        xlabel="temperature T",
        ylabel="gradient norm",
        title="gradient on the student's logits",
    )
    ax_g.legend(fontsize=8)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------------------------------------
# GKT's gate and entropy filter


def blend(X_a: torch.Tensor, X_b: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
    """Images ``lam * X_a + (1 - lam) * X_b`` (N, 1, 28, 28), one ``lam`` (N,) in [0, 1] per pair."""
    if X_a.shape != X_b.shape or lam.shape != X_a.shape[:1]:
        raise ValueError(f"shapes do not match: {tuple(X_a.shape)}, {tuple(X_b.shape)}, lam {tuple(lam.shape)}")
    if bool(((lam < 0) | (lam > 1)).any()):
        raise ValueError("every lam must lie in [0, 1]")
    w = lam.view(-1, 1, 1, 1)
    return w * X_a + (1 - w) * X_b


@dataclass(frozen=True)
class GateView:
    """How many pseudo-images pass GKT's gate (every forget-class probability below ``threshold``)."""

    threshold: float
    max_entropy: float | None
    kept: int  # images passing the gate and, when set, the entropy filter
    total: int
    kept_by_gate: int  # passing the gate alone
    kept_per_class: np.ndarray  # (C,) kept images by the teacher's predicted class


def gate_view(
    probs: torch.Tensor, forget_classes: Iterable[int], threshold: float, max_entropy: float | None = None
) -> GateView:
    """Count the rows of ``probs`` (N, C) that GKT's gate (and entropy filter) would let the student learn from."""
    keep = gate_mask(probs, forget_classes, threshold, max_entropy)
    by_gate = gate_mask(probs, forget_classes, threshold)
    predicted = probs.argmax(1)[keep]
    return GateView(
        float(threshold),
        None if max_entropy is None else float(max_entropy),
        int(keep.sum()),
        len(probs),
        int(by_gate.sum()),
        torch.bincount(predicted, minlength=probs.shape[1]).numpy(),
    )


def plot_gate(view: GateView, probs: torch.Tensor, forget_classes: Iterable[int]) -> Figure:
    """The forget-class probability and entropy of every pseudo-image, with the gate's cuts; kept images per class."""
    forget = list(check_classes(forget_classes, probs.shape[1]))
    top_forget = probs[:, forget].max(1).values.numpy()
    ent = entropy(probs).numpy()
    keep = gate_mask(probs, forget, view.threshold, view.max_entropy).numpy()
    fig = CourseFigure(figsize=(10, 3.4))
    ax_s, ax_b = fig.subplots(1, 2)
    ax_s.scatter(top_forget[~keep], ent[~keep], s=6, color="tab:red", label="blocked")
    ax_s.scatter(top_forget[keep], ent[keep], s=6, color="tab:green", label="kept")
    ax_s.axvline(view.threshold, color="gray", linestyle="--")
    if view.max_entropy is not None:
        ax_s.axhline(view.max_entropy, color="gray", linestyle=":")
    ax_s.set(
        xlabel="teacher's forget-class probability",
        ylabel="entropy (nats)",
        title=f"kept {view.kept} of {view.total} pseudo-images",
    )
    ax_s.set_xscale("symlog", linthresh=1e-3)  # linear near 0, logarithmic above 1e-3
    ax_s.set_xlim(0, 1.05)
    ax_s.legend(fontsize=8, loc="upper left")
    classes = np.arange(len(view.kept_per_class))
    ax_b.bar(classes, view.kept_per_class)
    ax_b.set(xticks=classes, xlabel="teacher's predicted class", ylabel="kept images", title="what the student sees")
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------------------------------------
# DeepInversion gallery

GALLERY_VERSION = 1  # bump when the gallery's images change for the same arguments, so old cache files are not reused


@dataclass(frozen=True)
class GallerySetting:
    """One point of the gallery's grid: the weights of DeepInversion's priors."""

    bn_weight: float  # weight of the BatchNorm-statistics loss
    tv_weight: float  # weight of the total-variation prior


def inversion_gallery(
    teacher: nn.Module,
    settings: Sequence[GallerySetting],
    images_per_class: int = 3,
    steps: int = 60,
    device: torch.device | str = "cpu",
    seed: int = 0,
) -> dict[GallerySetting, deepinversion.SynthesisResult]:
    """DeepInversion images of every class for each setting (the quick config with the given weights and steps)."""
    base = replace(deepinversion.CONFIGS["quick"], batch_per_class=images_per_class, steps=steps)
    return {
        s: deepinversion.synthesize(
            teacher,
            config=replace(base, bn_weight=s.bn_weight, tv_weight=s.tv_weight),
            images_per_class=images_per_class,
            device=device,
            seed=seed,
        )
        for s in settings
    }


def cached_inversion_gallery(
    teacher: nn.Module,
    settings: Sequence[GallerySetting],
    images_per_class: int = 3,
    steps: int = 60,
    device: torch.device | str = "cpu",
    seed: int = 0,
) -> dict[GallerySetting, TensorData]:
    """:func:`inversion_gallery`'s images, cached on disk under a hash of the teacher's weights and the arguments."""
    config = {
        "teacher": cache.weights_digest(teacher),
        "settings": [asdict(s) for s in settings],
        "images_per_class": images_per_class,
        "steps": steps,
        "seed": seed,
    }

    def build() -> dict[GallerySetting, TensorData]:
        made = inversion_gallery(teacher, settings, images_per_class, steps, device, seed)
        return {s: made[s].data for s in settings}

    return cache.load_or_build(
        cache.entry_path("gallery", f"deepinversion-{cache.key(config, GALLERY_VERSION)}"),
        build,
        lambda gallery: {key: torch.stack([getattr(gallery[s], key) for s in settings]) for key in ("X", "y")},
        lambda stored: {s: TensorData(stored["X"][i], stored["y"][i]) for i, s in enumerate(settings)},
    )


def gallery_view(
    images: TensorData, predictions: torch.Tensor, classes: Iterable[int] | None = None
) -> tuple[TensorData, torch.Tensor]:
    """The images of ``classes`` (all when ``None``) in their stored order, with their ``predictions`` (N,)."""
    if len(predictions) != len(images):
        raise ValueError(f"{len(images)} images but {len(predictions)} predictions")
    if classes is None:
        return images, predictions
    wanted = torch.isin(images.y, torch.tensor(check_classes(classes), dtype=images.y.dtype))
    return images.subset(wanted), predictions[wanted]


def plot_gallery(images: TensorData, teacher_pred: torch.Tensor, title: str) -> Figure:
    """The images with their target class and the teacher's prediction (``target→predicted``)."""
    labels = [f"{int(t)}→{int(p)}" for t, p in zip(images.y, teacher_pred)]
    return image_grid(images.X, labels, ncol=min(10, max(1, len(images))), title=title)


# ----------------------------------------------------------------------------------------------------------
# Membership inference: one loss threshold


@dataclass(frozen=True)
class ThresholdView:
    """The loss-threshold attack at one threshold: "member" when an image's loss is at most ``threshold``."""

    threshold: float
    tpr: float  # members (forget set) called members
    fpr: float  # non-members (held-out images) called members
    advantage: float  # tpr - fpr: 0 for an attack that guesses, 1 for a perfect one
    balanced_accuracy: float  # (tpr + 1 - fpr) / 2


def threshold_view(member_losses: np.ndarray, nonmember_losses: np.ndarray, threshold: float) -> ThresholdView:
    """The attack's rates at ``threshold`` (:func:`unlearnlab.mia.attack_rates`) and what they add up to."""
    tpr, fpr = attack_rates(member_losses, nonmember_losses, threshold)
    return ThresholdView(float(threshold), tpr, fpr, tpr - fpr, (tpr + 1 - fpr) / 2)


def plot_threshold(views: Mapping[str, ThresholdView], losses: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> Figure:
    """Per model: histograms of member and non-member losses (log scale) with the view's threshold."""
    return plot_threshold_panels({name: losses[name] for name in views}, {n: v.threshold for n, v in views.items()})


# ----------------------------------------------------------------------------------------------------------
# Pruning sparsity


@dataclass(frozen=True)
class PruningPoint:
    """A model pruned to one global sparsity (no fine-tuning), evaluated on forget and retain images."""

    amount: float  # share of Conv/Linear weights asked to be zero
    sparsity: float  # share that is zero afterwards
    forget_acc: float  # accuracy on the forget images
    retain_acc: float  # accuracy on the retain images


def pruning_sweep(
    model: nn.Module,
    forget: TensorData,
    retain: TensorData,
    amounts: Sequence[float],
    device: torch.device | str = "cpu",
) -> list[PruningPoint]:
    """One-shot global magnitude pruning (:func:`global_magnitude_prune`) at each amount; ``model`` is unchanged."""
    device = torch.device(device)
    points = []
    for amount in amounts:
        pruned = global_magnitude_prune(model, amount)
        accs = [_accuracy(pruned, part, device) for part in (forget, retain)]
        points.append(PruningPoint(float(amount), sparsity(pruned), *accs))
    return points


def _accuracy(model: nn.Module, data: TensorData, device: torch.device) -> float:
    logits, y = predict(model, make_loader(data), device)
    return float((logits.argmax(1) == y).float().mean())


def pruning_view(points: Sequence[PruningPoint], amount: float) -> PruningPoint:
    """The swept point nearest to ``amount``."""
    if not points:
        raise ValueError("no pruning points: run pruning_sweep first")
    return min(points, key=lambda p: abs(p.amount - amount))


def plot_pruning(points: Sequence[PruningPoint], chosen: PruningPoint) -> Figure:
    """Forget and retain accuracy against sparsity, the chosen point marked."""
    fig = CourseFigure(figsize=(5.5, 3.4))
    ax = fig.subplots()
    s = [100 * p.sparsity for p in points]
    ax.plot(s, [100 * p.forget_acc for p in points], marker="o", label="forget images")
    ax.plot(s, [100 * p.retain_acc for p in points], marker="o", label="retain images")
    ax.axvline(100 * chosen.sparsity, color="gray", linestyle="--")
    ax.set(
        xlabel="weights set to zero %",
        ylabel="accuracy %",
        ylim=(0, 105),
        title=f"{100 * chosen.sparsity:.0f} % zero: forget {100 * chosen.forget_acc:.1f} %, "
        f"retain {100 * chosen.retain_acc:.1f} %",
    )
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    return fig

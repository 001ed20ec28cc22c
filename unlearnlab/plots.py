"""Matplotlib figures for the course. Each function returns a ``Figure`` (no global pyplot state)."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from matplotlib.figure import Figure

from .data import denormalize
from .training import History


class CourseFigure(Figure):
    """A matplotlib figure that shows itself as a PNG in Jupyter, whatever the backend (no pyplot needed)."""

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", dpi=100)
        return buffer.getvalue()


def plot_confusion(cm: np.ndarray, title: str = "confusion matrix", normalize: bool = True) -> Figure:
    """Heat map of a confusion matrix (rows: true class, columns: predicted); ``normalize`` shows row fractions."""
    cm = np.asarray(cm, dtype=float)
    shown = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1) if normalize else cm
    fig = CourseFigure(figsize=(4.6, 4))
    ax = fig.subplots()
    im = ax.imshow(shown, cmap="Blues", vmin=0)
    n = cm.shape[0]
    ax.set(xticks=range(n), yticks=range(n), xlabel="predicted", ylabel="true", title=title)
    for i in range(n):
        for j in range(n):
            if cm[i, j]:
                dark = shown[i, j] > 0.5 * shown.max()
                ax.text(
                    j, i, f"{int(cm[i, j])}", ha="center", va="center", fontsize=6, color="white" if dark else "black"
                )
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    return fig


def plot_per_class(
    series: Mapping[str, Sequence[float]], title: str = "accuracy per class", highlight: Sequence[int] = ()
) -> Figure:
    """Grouped bars of per-class accuracy (in [0, 1]) for several models; ``highlight`` shades some classes."""
    fig = CourseFigure(figsize=(7, 3))
    ax = fig.subplots()
    n_classes = len(next(iter(series.values())))
    width = 0.8 / len(series)
    for k, (name, values) in enumerate(series.items()):
        ax.bar(np.arange(n_classes) + (k - (len(series) - 1) / 2) * width, 100 * np.asarray(values), width, label=name)
    for c in highlight:
        ax.axvspan(c - 0.5, c + 0.5, color="red", alpha=0.08)
    ax.set(xticks=range(n_classes), xlabel="class", ylabel="accuracy %", ylim=(0, 105), title=title)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=min(len(series), 4), frameon=False)
    fig.tight_layout()
    return fig


def plot_history(histories: Mapping[str, History] | History, title: str = "training loss", smooth: int = 10) -> Figure:
    """Step-loss curves (moving average over ``smooth`` steps) of one or several training runs."""
    if isinstance(histories, History):
        histories = {"loss": histories}
    fig = CourseFigure(figsize=(6, 3))
    ax = fig.subplots()
    for name, h in histories.items():
        loss = np.asarray(h.step_loss, dtype=float)
        k = max(1, min(smooth, len(loss)))
        ax.plot(np.convolve(loss, np.ones(k) / k, mode="valid"), label=name)
    ax.axhline(0, color="grey", lw=0.5)
    ax.set(xlabel="step", ylabel="loss", title=title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def image_grid(
    X: torch.Tensor,
    labels: Sequence[object] | None = None,
    ncol: int = 10,
    title: str | None = None,
    normalized: bool = True,
) -> Figure:
    """A grid of digits ``X`` (N, 1, 28, 28) with optional captions."""
    X = denormalize(X.detach().cpu()) if normalized else X.detach().cpu()
    n = len(X)
    nrow = max(1, (n + ncol - 1) // ncol)
    fig = CourseFigure(figsize=(ncol * 0.9, nrow * 1.0 + (0.3 if title else 0)))
    axes = np.atleast_1d(fig.subplots(nrow, ncol)).ravel()
    for i, ax in enumerate(axes):
        ax.axis("off")
        if i < n:
            ax.imshow(X[i, 0].numpy(), cmap="gray", vmin=0, vmax=1)
            if labels is not None:
                ax.set_title(str(labels[i]), fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def class_grid(X: torch.Tensor, y: torch.Tensor, per_class: int = 4, title: str | None = None) -> Figure:
    """Digits ``X`` (N, 1, 28, 28) arranged one column per class of ``y`` (N,), ``per_class`` rows deep."""
    classes = torch.unique(y).tolist()
    columns = [X[y == c][:per_class] for c in classes]  # each (k, 1, 28, 28), k <= per_class
    rows = min((len(col) for col in columns), default=0)
    if rows == 0:
        raise ValueError("no images to show: every class needs at least one image")
    ordered = torch.stack([col[:rows] for col in columns], dim=1).flatten(0, 1)  # row by row: (rows * C, 1, 28, 28)
    labels = [f"class {c}" for c in classes] + [""] * (len(ordered) - len(classes))
    return image_grid(ordered, labels, ncol=len(classes), title=title)


def plot_scaling(
    x: Sequence[float],
    series: Mapping[str, Sequence[float]],
    references: Mapping[str, float] | None = None,
    xlabel: str = "synthetic images per class",
    ylabel: str = "accuracy %",
    title: str = "",
) -> Figure:
    """Curves of accuracy (in [0, 1]) against a size on a log axis, with horizontal reference lines."""
    fig = CourseFigure(figsize=(6, 3.2))
    ax = fig.subplots()
    for name, values in series.items():
        ax.plot(x, 100 * np.asarray(values, dtype=float), marker="o", label=name)
    for k, (name, value) in enumerate((references or {}).items()):
        ax.axhline(100 * value, ls="--", lw=1, color=f"C{k + len(series)}", label=name)
    ax.set(xscale="log", xlabel=xlabel, ylabel=ylabel, title=title, ylim=(-2, 102))
    ax.set_xticks(list(x), [f"{v:g}" for v in x])  # the measured sizes, not powers of ten
    ax.minorticks_off()
    ax.legend(fontsize=8, loc="center right")
    fig.tight_layout()
    return fig

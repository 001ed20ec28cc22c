"""Matplotlib figures for the course. Each function returns a ``Figure`` (no global pyplot state)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from matplotlib.figure import Figure

from .data import denormalize
from .training import History


def plot_confusion(cm: np.ndarray, title: str = "confusion matrix", normalize: bool = True) -> Figure:
    """Heat map of a confusion matrix (rows: true class, columns: predicted); ``normalize`` shows row fractions."""
    cm = np.asarray(cm, dtype=float)
    shown = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1) if normalize else cm
    fig = Figure(figsize=(4.6, 4))
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
    fig = Figure(figsize=(7, 3))
    ax = fig.subplots()
    n_classes = len(next(iter(series.values())))
    width = 0.8 / len(series)
    for k, (name, values) in enumerate(series.items()):
        ax.bar(np.arange(n_classes) + (k - (len(series) - 1) / 2) * width, 100 * np.asarray(values), width, label=name)
    for c in highlight:
        ax.axvspan(c - 0.5, c + 0.5, color="red", alpha=0.08)
    ax.set(xticks=range(n_classes), xlabel="class", ylabel="accuracy %", ylim=(0, 105), title=title)
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    return fig


def plot_history(histories: Mapping[str, History] | History, title: str = "training loss", smooth: int = 10) -> Figure:
    """Step-loss curves (moving average over ``smooth`` steps) of one or several training runs."""
    if isinstance(histories, History):
        histories = {"loss": histories}
    fig = Figure(figsize=(6, 3))
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
    fig = Figure(figsize=(ncol * 0.9, nrow * 1.0 + (0.3 if title else 0)))
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

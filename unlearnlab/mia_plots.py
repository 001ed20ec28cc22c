"""Figures of notebook 06: loss histograms of members and non-members, the threshold attack, ROC curves, the
sparsity sweep and the methods against the retrained band. Each function returns a ``Figure``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from .mia import MembershipReport, ThresholdAttack, attack_rates
from .plots import CourseFigure

LOSS_FLOOR = 1e-6  # losses are drawn on a log axis: a memorised image's loss can round to 0


def _log_bins(*losses: np.ndarray, n: int = 40) -> np.ndarray:
    values = np.concatenate([np.maximum(np.asarray(x, dtype=float), LOSS_FLOOR) for x in losses])
    return np.geomspace(values.min(), max(values.max(), values.min() * 10), n)


def _histogram(ax, member: np.ndarray, nonmember: np.ndarray, title: str) -> None:
    bins = _log_bins(member, nonmember)
    for values, name, color in ((nonmember, "non-members (test)", "C0"), (member, "members (forget set)", "C3")):
        weights = np.full(len(values), 1 / len(values))  # shares, so sets of different sizes compare
        ax.hist(np.maximum(values, LOSS_FLOOR), bins, weights=weights, alpha=0.55, color=color, label=name)
    ax.set(xscale="log", xlabel="per-sample loss", ylabel="share of the set", title=title)


def plot_loss_histograms(panels: Mapping[str, tuple[np.ndarray, np.ndarray]], title: str = "") -> Figure:
    """One panel per model: histograms of the members' and the non-members' losses (log axis), as shares."""
    if not panels:
        raise ValueError("no model to plot: give at least one (member losses, non-member losses) pair")
    fig = CourseFigure(figsize=(4 * len(panels), 3.2))
    axes = np.atleast_1d(fig.subplots(1, len(panels), sharey=True))
    for ax, (name, (member, nonmember)) in zip(axes, panels.items()):
        _histogram(ax, member, nonmember, name)
    axes[0].legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_threshold_panels(
    panels: Mapping[str, tuple[np.ndarray, np.ndarray]], thresholds: Mapping[str, float]
) -> Figure:
    """One panel per model: its loss histograms with its threshold; every item left of the line is called a member.

    ``panels`` maps a model's name to (member losses, non-member losses), ``thresholds`` the name to its threshold.
    """
    if not panels:
        raise ValueError("no model to plot: give at least one (member losses, non-member losses) pair")
    fig = CourseFigure(figsize=(5 * len(panels), 3.2))
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    for ax, (name, (member, nonmember)) in zip(axes, panels.items()):
        threshold = thresholds[name]
        tpr, fpr = attack_rates(member, nonmember, threshold)
        label = f"{name}: " if name else ""
        _histogram(ax, member, nonmember, f"{label}threshold {threshold:.3g}: TPR {tpr:.1%}, FPR {fpr:.1%}")
        ax.axvline(max(threshold, LOSS_FLOOR), color="k", lw=1.5)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_threshold(member: np.ndarray, nonmember: np.ndarray, threshold: float) -> Figure:
    """The loss histograms of one model with the attack's threshold (:func:`plot_threshold_panels`)."""
    return plot_threshold_panels({"": (member, nonmember)}, {"": threshold})


def plot_roc(attacks: Mapping[str, ThresholdAttack]) -> Figure:
    """ROC curves of the loss-threshold attack, linear and log-log (the low-FPR regime), with their AUC."""
    fig = CourseFigure(figsize=(9, 3.6))
    left, right = fig.subplots(1, 2)
    for name, attack in attacks.items():
        left.plot(attack.fpr, attack.tpr, label=f"{name} (AUC {attack.auc:.3f})")
        right.plot(np.maximum(attack.fpr, 1e-4), np.maximum(attack.tpr, 1e-4), label=name)
    for ax in (left, right):
        ax.plot([1e-4, 1], [1e-4, 1], ls="--", color="grey", lw=1)
    left.set(xlabel="FPR", ylabel="TPR", title="ROC of the loss-threshold attack", xlim=(0, 1), ylim=(0, 1))
    right.set(xscale="log", yscale="log", xlabel="FPR", ylabel="TPR", title="the same, log-log", xlim=(1e-3, 1))
    left.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_sparsity_sweep(
    sparsities: Sequence[float],
    reports: Sequence[MembershipReport],
    band: tuple[float, float],
    title: str = "",
) -> Figure:
    """Left: simple_mia against sparsity with the retrained band shaded; right: retain and test accuracy."""
    if len(sparsities) != len(reports) or not reports:
        raise ValueError(f"need one report per sparsity, got {len(sparsities)} sparsities and {len(reports)} reports")
    x = 100 * np.asarray(sparsities, dtype=float)
    fig = CourseFigure(figsize=(9, 3.4))
    left, right = fig.subplots(1, 2)
    left.axhspan(*band, color="0.85", label="retrained band")
    left.axhline(0.5, ls=":", color="grey", lw=1)
    left.plot(x, [r.simple_mia for r in reports], marker="o", color="C3", label="pruned + fine-tuned")
    left.set(xlabel="sparsity %", ylabel="simple_mia", title="membership inference")
    left.legend(fontsize=7)
    for key, name in (("retain_acc", "retain"), ("test_acc", "test")):
        right.plot(x, [100 * getattr(r, key) for r in reports], marker="o", label=name)
    right.set(xlabel="sparsity %", ylabel="accuracy %", title="accuracy")
    right.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_methods(reports: Mapping[str, MembershipReport], band: tuple[float, float]) -> Figure:
    """Each model's simple_mia against its test accuracy, the retrained band shaded: good methods land in it."""
    fig = CourseFigure(figsize=(6.5, 3.8))
    ax = fig.subplots()
    ax.axvspan(*band, color="0.85", label="retrained band")
    for k, (name, report) in enumerate(reports.items()):
        ax.scatter(report.simple_mia, 100 * report.test_acc, color=f"C{k % 10}")
        ax.annotate(
            name, (report.simple_mia, 100 * report.test_acc), fontsize=7, xytext=(3, 3), textcoords="offset points"
        )
    ax.set(xlabel="simple_mia on the forget set (0.5 = chance)", ylabel="test accuracy %", title="methods")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig

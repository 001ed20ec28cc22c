"""A comparison's result: one row per method, the table in Markdown, what it says in sentences, the Pareto
figure, and the files ``unlearnlab compare`` writes."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from ..files import atomic_write, write_text
from ..metrics import Band, pareto_front
from ..plots import CourseFigure
from .scoring import ACCURACIES, METRICS, Scores


@dataclass
class Row:
    """One line of the table: a method's mean and std per metric over the seeds that ran, and its failures."""

    method: str
    family: str
    seeds: list[int] = field(default_factory=list)  # seeds that ran
    mean: dict[str, float | None] = field(default_factory=dict)
    std: dict[str, float | None] = field(default_factory=dict)
    time_ratio: float | None = None  # mean seconds / the retraining seconds of this run
    inside: dict[str, bool | None] = field(default_factory=dict)  # per banded metric: mean inside the band
    errors: dict[int, str] = field(default_factory=dict)  # seed -> what went wrong
    skipped: dict[int, str] = field(default_factory=dict)  # seed -> why the method could not run there (no error)
    per_seed: list[Scores] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        """True when no seed ran (each one raised or was skipped)."""
        return not self.seeds

    @property
    def inside_all(self) -> bool | None:
        """Inside the band on every banded metric that has a verdict (``None`` without a band)."""
        verdicts = [v for v in self.inside.values() if v is not None]
        return all(verdicts) if verdicts else None


@dataclass
class CompareResult:
    """The whole comparison: one row per method (plus the original and the retrained models) and the bands."""

    scenario: str
    forget: str  # "class 6" or "random 10 %"
    profile: str
    seeds: list[int]
    retrain_seconds: float
    retrain_seconds_source: str  # "measured in this run" or where it came from
    bands: dict[str, Band]
    rows: list[Row]
    seconds: float = 0.0  # wall-clock seconds of the whole run
    device: str = "cpu"
    resumed: int = 0  # (method, seed) pairs loaded from their checkpoints instead of run
    pairs: int = 0  # (method, seed) pairs in all
    workers: int = 1  # processes the pairs ran in at once (one thread each on a CPU): a task per pair when > 1

    def resumed_text(self) -> str:
        """How many (method, seed) pairs this run resumed from checkpoints, in a sentence."""
        return f"{self.resumed} of {self.pairs} (method, seed) pairs resumed from checkpoints, the others run now."

    def row(self, method: str) -> Row:
        """The row of ``method``."""
        for r in self.rows:
            if r.method == method:
                return r
        raise KeyError(f"no row for {method!r}: rows are {', '.join(r.method for r in self.rows)}")

    def as_dict(self) -> dict:
        """A JSON-ready dict (bands as [low, high], per-seed scores kept)."""
        out = asdict(self)
        out["bands"] = {k: [b.low, b.high] for k, b in self.bands.items()}
        for row, obj in zip(out["rows"], self.rows):
            row["inside_all"] = obj.inside_all
            row["errors"] = {str(k): v for k, v in row["errors"].items()}
            row["skipped"] = {str(k): v for k, v in row["skipped"].items()}
        return out

    def markdown(self) -> str:
        """The table in Markdown (see :func:`markdown_table`)."""
        return markdown_table(self)


def mean_std(values: list[float]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (0 for one value; ``None`` for none)."""
    if not values:
        return None, None
    v = np.asarray(values, dtype=float)
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0


def summarise(
    method: str,
    family: str,
    per_seed: Mapping[int, Scores],
    errors: Mapping[int, str],
    skipped: Mapping[int, str],
    retrain_seconds: float,
) -> Row:
    """A row from one method's per-seed scores (``errors``: seeds that failed, ``skipped``: seeds it could not
    run on, each with why)."""
    seeds = sorted(per_seed)
    row = Row(method, family, seeds, errors=dict(errors), skipped=dict(skipped), per_seed=[per_seed[s] for s in seeds])
    for metric in METRICS:
        values = [getattr(s, metric) for s in row.per_seed if getattr(s, metric) is not None]
        row.mean[metric], row.std[metric] = mean_std(values)
    if row.mean["seconds"] is not None and retrain_seconds > 0:
        row.time_ratio = row.mean["seconds"] / retrain_seconds
    return row


# ----------------------------------------------------------------------------------------------------------
# Tables, figures and files


def _pm(mean: float | None, std: float | None, scale: float = 1.0, digits: int = 2) -> str:
    if mean is None:
        return "-"
    return f"{scale * mean:.{digits}f} ± {scale * (std or 0.0):.{digits}f}"


COLUMNS: tuple[tuple[str, str, float, int], ...] = (  # metric, header, scale, decimals
    ("forget_acc", "forget-set %", 100, 2),
    ("retain_acc", "retain-set %", 100, 2),
    ("test_acc", "test %", 100, 2),
    ("mia", "MIA score", 1, 3),
    ("auc", "threshold AUC", 1, 3),
    ("js", "JS to retrained", 1, 4),
    ("act_dist", "act. dist.", 1, 4),
    ("tow", "ToW", 1, 4),
    ("ain", "AIN", 1, 2),
)


def markdown_table(result: CompareResult) -> str:
    """Mean ± std over seeds; ✓ inside the retrained band, ✗ outside, nothing without a band; failures named."""
    header = ["method", *(h for _, h, _, _ in COLUMNS), "time / retrain", "stored", "in band"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in result.rows:
        cells = [row.method]
        for metric, _, scale, digits in COLUMNS:
            text = _pm(row.mean[metric], row.std[metric], scale, digits)
            verdict = row.inside.get(metric)
            cells.append(text if verdict is None or row.mean[metric] is None else f"{text} {'✓' if verdict else '✗'}")
        cells.append("-" if row.time_ratio is None else f"{row.time_ratio:.3f}")
        stored = row.mean["stored_bytes"]
        cells.append("-" if not stored else f"{stored / 1e6:.2f} MB")
        cells.append("skipped" if row.skipped and row.failed else {None: "-", True: "all", False: "no"}[row.inside_all])
        lines.append("| " + " | ".join(cells) + " |")
    failures = [(r.method, s, e) for r in result.rows for s, e in r.errors.items()]
    notes = [
        "",
        f"Scenario: {result.scenario} forgetting ({result.forget}); profile {result.profile}; seeds "
        f"{', '.join(map(str, result.seeds))}; device {result.device}. Retraining took "
        f"{result.retrain_seconds:.1f} s ({result.retrain_seconds_source}); the whole comparison "
        f"{result.seconds:.0f} s. {result.resumed_text()}",
    ]
    if result.workers > 1:
        notes.append(
            f"The pairs ran as tasks on {result.workers} worker processes at once, one thread each; a method's "
            "seconds are its own task's."
        )
    if result.bands:
        notes.append(
            "✓ / ✗: the method's mean is inside / outside the band the retrained models span across seeds "
            "(the noise floor); 'in band: all' means inside on every marked metric."
        )
    else:
        notes.append("One seed: no noise band (it needs at least two retrained seeds).")
    notes += [f"- {m} failed on seed {s}: {e}" for m, s, e in failures]
    notes += [f"- {r.method} skipped on seed {s}: {why}" for r in result.rows for s, why in r.skipped.items()]
    return "\n".join(lines + notes)


def write(result: CompareResult, out: str | Path) -> list[Path]:
    """Write ``compare.json``, ``compare.md`` and ``pareto.png`` into ``out``; returns the paths written."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "compare.json", out / "compare.md", out / "pareto.png"]
    write_text(paths[0], json.dumps(result.as_dict(), indent=1, allow_nan=False, default=_json_default))
    write_text(paths[1], result.markdown() + "\n")
    fig = plot_pareto(result)
    atomic_write(paths[2], lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    return paths


def _json_default(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def plot_pareto(result: CompareResult) -> Figure:
    """Two views of a :class:`~unlearnlab.compare.CompareResult` (failed rows left out).

    Left: forgetting gap |forget-set acc - retrained's| against utility (test accuracy), marker area growing with
    cost. Right: the gap to retraining, 1 - ToW, against the time ratio (log), the Pareto front (both minimised)
    joined by a line and the retrained models' band shaded.
    """
    retrained = result.row("retrained")
    rows = [r for r in result.rows if not r.failed and r.method != "original"]
    if not rows or retrained.failed:
        raise ValueError("nothing to plot: no method and the retrained model both ran")
    fig = CourseFigure(figsize=(10, 4))
    left, right = fig.subplots(1, 2)
    for k, row in enumerate(rows):
        gap = 100 * abs(row.mean["forget_acc"] - retrained.mean["forget_acc"])
        ratio = row.time_ratio or 0.0
        left.scatter(gap, 100 * row.mean["test_acc"], s=30 + 60 * np.log1p(10 * ratio), color=f"C{k % 10}")
        left.annotate(
            row.method, (gap, 100 * row.mean["test_acc"]), fontsize=7, xytext=(3, 3), textcoords="offset points"
        )
    left.set(
        xlabel="forgetting gap |forget-set acc - retrained| (points)",
        ylabel="test accuracy %",
        title="forgetting vs utility (area: cost)",
    )
    points = {r.method: (1 - r.mean["tow"], r.time_ratio) for r in rows if r.time_ratio}
    for k, (name, (gap, ratio)) in enumerate(points.items()):
        right.scatter(ratio, gap, color=f"C{k % 10}")
        right.annotate(name, (ratio, gap), fontsize=7, xytext=(3, 3), textcoords="offset points")
    front = sorted((points[n] for n in pareto_front(points)), key=lambda p: p[1])
    right.plot([p[1] for p in front], [p[0] for p in front], ls="--", color="k", lw=1, label="Pareto front")
    if "tow" in result.bands:
        right.axhspan(0, 1 - result.bands["tow"].low, color="0.85", label="retrained band")
    right.set(
        xscale="log",
        xlabel="time / retraining time",
        ylabel="1 - ToW (gap to retraining)",
        title="closeness to retraining vs cost",
    )
    right.legend(fontsize=7)
    fig.suptitle(f"{result.scenario} forgetting ({result.forget}), seeds {', '.join(map(str, result.seeds))}")
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------------------------------------
# Reading the table


NAMES = {
    "forget_acc": "forget-set accuracy",
    "retain_acc": "retain-set accuracy",
    "test_acc": "test accuracy",
    "mia": "MIA score",
    "auc": "threshold AUC",
    "js": "JS divergence",
    "act_dist": "activation distance",
}


def _fmt(metric: str, value: float) -> str:
    if metric in ACCURACIES:
        return f"{NAMES[metric]} {100 * value:.2f} %"
    return f"{NAMES[metric]} {value:.3f}" if metric in ("mia", "auc") else f"{NAMES[metric]} {value:.4f}"


def summary_lines(result: CompareResult) -> list[str]:
    """What the table says, in sentences computed from it: the closest method and its cost, who is inside the
    band, and where the metrics disagree (inside on the accuracies but outside on a distance or the MIA, or the
    other way round)."""
    methods = [r for r in result.rows if r.method not in ("original", "retrained") and not r.failed]
    if not methods:
        return ["No method ran: see the failures under the table."]
    best = max(methods, key=lambda r: r.mean["tow"])
    ratio = "" if best.time_ratio is None else f" at {best.time_ratio:.2f}x the retraining time"
    lines = [f"Closest to retraining by ToW: **{best.method}** (ToW {best.mean['tow']:.4f}){ratio}."]
    cheapest = min(methods, key=lambda r: r.time_ratio if r.time_ratio is not None else math.inf)
    if cheapest.time_ratio is not None:
        lines.append(
            f"Cheapest: **{cheapest.method}** at {cheapest.time_ratio:.2f}x the retraining time "
            f"(ToW {cheapest.mean['tow']:.4f})."
        )
    if not result.bands:
        return [*lines, "With one seed there is no noise band to judge 'as good as retraining'."]
    inside = [r.method for r in methods if r.inside_all]
    lines.append(
        f"Inside the retrained band on every metric: {', '.join(f'**{m}**' for m in inside)}."
        if inside
        else "No method lands inside the retrained band on every metric."
    )
    for row in methods:
        accs_in = all(row.inside[m] for m in ACCURACIES)
        others = [m for m in ("mia", "auc", "js", "act_dist") if row.inside[m] is not None]
        out = [m for m in others if not row.inside[m]]
        if accs_in and out:
            what = ", ".join(_fmt(m, row.mean[m]) for m in out)
            lines.append(f"**{row.method}**: the accuracies look like retraining, but not {what}.")
        elif not accs_in and others and not out:
            missed = [m for m in ACCURACIES if not row.inside[m]]
            what = ", ".join(_fmt(m, row.mean[m]) for m in missed)
            lines.append(f"**{row.method}**: the attacks and distances look like retraining, but not {what}.")
    return lines

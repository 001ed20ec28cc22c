"""Lesson 04 (``04_zero_shot``): forget class 0 without its data: error-min/max noise, Gated Knowledge Transfer
and the anamnesis index.

Besides the questions and the headline metrics, the notebook's study lives here: the runs it makes (EMMN and
UNSIR, four GKT variants, the models whose anamnesis index it measures), the DeepInversion probes of the
stopping rule (``benchmarks/bench_gkt.py`` makes them with :func:`make_probes` too), the figure of the GKT runs
and the text that reads this run's numbers. The notebook imports these functions by name, never a method module:
the package's reference answers to its questions stay out of the student's namespace.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import nn

from ..config import Profile
from ..data import Splits, TensorData, check_classes, class_mask, concat, per_class_subset, stratified_subset
from ..methods import anamnesis, gkt, noise
from ..methods.deepinversion import InversionConfig, synthesize
from ..metrics import UnlearningReport, unlearning_report
from ..plots import CourseFigure, image_grid
from .base import FunctionQuestion, Headline, Lesson, bars_from, for_profile, pick, randn

FORGET = 0


@dataclass(frozen=True)
class Targets:
    """The GKT student's course targets (recorded in the report; no check cell enforces them yet)."""

    min_retain: float  # retain accuracy in percent, at least
    max_forget: float  # forget accuracy in percent, at most


TARGETS = {"quick": Targets(90.0, 1.0), "full": Targets(97.0, 1.0)}


def _error_max_cases(gen: torch.Generator) -> list[dict]:
    y = torch.randint(0, 10, (5,), generator=gen)
    return [{"args": [randn(gen, 5, 10), y, randn(gen, 5, 1, 28, 28), reg]} for reg in (0.0, 0.37)]


def _gate_cases(gen: torch.Generator) -> list[dict]:
    probs = torch.softmax(randn(gen, 40, 10, scale=4.0), dim=1)
    f1, f2 = pick(gen, 10, 2)
    return [
        {"args": [probs, [f1], 0.01]},
        {"args": [probs, [f1, f2], 0.05]},
        {"args": [probs, [f1], 0.2], "kwargs": {"max_entropy": 0.5}},
    ]


def _attention_cases(gen: torch.Generator) -> list[dict]:
    shapes = [(3, 4, 6, 6), (3, 8, 3, 3)]
    S, T = [randn(gen, *s) for s in shapes], [randn(gen, *s) for s in shapes]
    return [{"args": [S[:1], T[:1]]}, {"args": [S, T]}, {"args": [[2.5 * S[0]], [T[0]]]}]


def _ain_cases(gen: torch.Generator) -> list[dict]:
    def curve(n: int) -> list[float]:
        return torch.rand(n, generator=gen).mul(0.9).tolist() + [0.97, 0.5, 0.99]

    fast = curve(int(torch.randint(1, 4, (1,), generator=gen)))
    slow = curve(int(torch.randint(5, 9, (1,), generator=gen)))
    return [{"args": [fast, slow, 0.95]}, {"args": [slow, slow, 0.95]}]


def _ain_reference(curve_unlearned: list[float], curve_retrained: list[float], target: float) -> float:
    steps = anamnesis.steps_to_reach
    return anamnesis.anamnesis_index(steps(curve_unlearned, target), steps(curve_retrained, target))


HEADLINES = (
    Headline(
        "gkt_retain_acc",
        "GKT (β = 250), retain accuracy (the rule's snapshot, or the final student when it never fired)",
        reference="97.12 % (paper, quoted by seed 002)",
        bars=bars_from(TARGETS, ">=", lambda t: t.min_retain, graded=False),
        retrained="retrained_retain_acc",
        summary=True,
    ),
    Headline(
        "gkt_forget_acc",
        "GKT (β = 250), forget accuracy (the rule's snapshot, or the final student)",
        bars=bars_from(TARGETS, "<=", lambda t: t.max_forget, graded=False),
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
)

LESSON = Lesson(
    stem="04_zero_shot",
    questions={
        "q1": FunctionQuestion(
            "error_max_objective", _error_max_cases, noise.error_max_objective, rtol=1e-4, atol=1e-4
        ),
        "q2": FunctionQuestion("keep_mask", _gate_cases, gkt.gate_mask),
        "q3": FunctionQuestion("at_loss", _attention_cases, gkt.attention_loss, rtol=1e-4),
        "q4": FunctionQuestion("ain_from_curves", _ain_cases, _ain_reference),
    },
    headlines=HEADLINES,
    needs=((), (FORGET,)),
)


# ----------------------------------------------------------------------------------------------------------
# The notebook's study: its runs, the stopping rule's probes, the figure and the text that reads the numbers

UNSIR_RETAIN_PER_CLASS = 50  # real retain images per class in UNSIR's repair (no longer zero-shot)

# the names of the notebook's models in its tables (the notebook names the first two itself)
ORIGINAL, GOLD = "original", "retrained (gold)"
EMMN, UNSIR = "EMMN (zero-shot)", f"UNSIR ({UNSIR_RETAIN_PER_CLASS} real retain img/class)"
GKT, GKT_ENTROPY = "GKT (beta=250)", "GKT + entropy filter 0.6"
GKT_BETA0, GKT_LEAKY = "GKT, no attention (beta=0)", "GKT, gate opened to 0.5"
AIN_ORIGINAL, AIN_GKT = "original (no unlearning)", "GKT (beta=250), rule's model"

MONITOR_IMAGES = 500  # real test images the GKT monitor evaluates at each checkpoint (never trained on)
RELEARN_PER_CLASS = 30  # real images per class the anamnesis index relearns from
FORGET_EVAL_IMAGES = 200  # real test images of the forget class measured after every relearning step

# DeepInversion probes of the forget class for GKT's stopping rule: all ten classes are synthesised at once (a
# batch of one class cannot match BatchNorm statistics gathered on all ten)
PROBES = {
    "quick": InversionConfig(images_per_class=10, batch_per_class=10, steps=100),
    "full": InversionConfig(images_per_class=100, batch_per_class=100, steps=400),
}


def reports_for(
    models: Mapping[str, nn.Module], splits: Splits, device: torch.device | str
) -> dict[str, UnlearningReport]:
    """Each model's report on the real test set of ``splits`` (its forget classes)."""
    return {
        name: unlearning_report(model, splits.test, splits.forget_classes, device=device)
        for name, model in models.items()
    }


# -- EMMN and UNSIR


@dataclass
class EMMNStudy:
    """Zero-shot EMMN and UNSIR (the same noise, repaired with real retain images), by their report names."""

    runs: dict[str, noise.NoiseResult]
    reports: dict[str, UnlearningReport]  # each unlearned model on the real test set

    def timing(self) -> str:
        """How long each method took."""
        return f"EMMN took {self.runs[EMMN].cost.seconds:.0f} s, UNSIR {self.runs[UNSIR].cost.seconds:.0f} s"

    def standin_check(self, teacher: nn.Module, device: torch.device | str) -> tuple[str, Figure]:
        """The teacher's loss on its own error-minimising noise, the repair pass's losses, and nine noise images."""
        result = self.runs[EMMN]
        standin = result.retain_standin
        with torch.no_grad():
            loss = F.cross_entropy(teacher.eval()(standin.X.to(device)), standin.y.to(device)).item()
        text = (
            f"the original model's loss on its own error-minimising noise: {loss:.4f}\n"
            f"repair-pass losses (zero-shot): {[round(v, 4) for v in result.repair.epoch_loss]}"
        )
        every = max(1, len(standin) // 9)
        X, y = standin.X[::every][:9], standin.y[::every][:9].tolist()
        return text, image_grid(X, y, title="error-minimising noise (retain stand-in)")

    def reading(self, gold: UnlearningReport) -> str:
        """Markdown: zero-shot EMMN's retain accuracy against UNSIR's and the retrained model's (``gold``)."""
        emmn, unsir = self.reports[EMMN], self.reports[UNSIR]
        emmn_r, unsir_r, gold_r = (100 * r.retain_acc for r in (emmn, unsir, gold))
        gap = gold_r - unsir_r
        unsir_text = "within a point of the retrained model"
        if gap > 1:
            unsir_text = f"still {gap:.1f} points below the retrained model"
        return (
            f"Zero-shot EMMN ended at **{emmn_r:.1f} %** retain accuracy (forget class: "
            f"{100 * emmn.forget_acc:.1f} %), against {gold_r:.1f} % for the retrained model. With fifty real "
            f"images per retained class, UNSIR reached **{unsir_r:.1f} %**: {unsir_r - emmn_r:.1f} points more than "
            f"zero-shot EMMN, {unsir_text}."
        )


def run_emmn(
    teacher: nn.Module, splits: Splits, profile: Profile, *, device: torch.device | str, seed: int
) -> EMMNStudy:
    """Zero-shot EMMN and UNSIR (``UNSIR_RETAIN_PER_CLASS`` real retain images per class), each model evaluated."""
    config = for_profile(noise.CONFIGS, profile)
    configs = {EMMN: config, UNSIR: replace(config, real_retain_per_class=UNSIR_RETAIN_PER_CLASS)}
    runs = {name: noise.unlearn(teacher, splits, c, device=device, seed=seed) for name, c in configs.items()}
    return EMMNStudy(runs, reports_for({name: run.model for name, run in runs.items()}, splits, device))


# -- The stopping rule's probes


@dataclass(frozen=True)
class Probes:
    """Synthetic images of the forget classes for GKT's stopping rule, and how they were chosen."""

    X: torch.Tensor  # (N, 1, 28, 28): the recognised ones, or every one of the forget classes if under 3 are
    forget_classes: tuple[int, ...]
    drawn: int  # DeepInversion images of the forget classes
    recognised: int  # of which the teacher calls their own class
    teacher_acc: float  # the teacher's accuracy on every synthetic image (all ten classes)
    seconds: float  # DeepInversion's time

    def __str__(self) -> str:
        return (
            f"{self.drawn} DeepInversion images of class {', '.join(map(str, self.forget_classes))}, "
            f"{self.recognised} recognised by the teacher; "
            f"{len(self.X)} probes; teacher accuracy on all synthetic images {100 * self.teacher_acc:.0f} % "
            f"({self.seconds:.0f} s)"
        )


def make_probes(
    teacher: nn.Module,
    forget_classes: Iterable[int],
    profile: Profile,
    *,
    device: torch.device | str,
    seed: int,
) -> Probes:
    """DeepInversion images of all classes (``PROBES``); keep those of the forget classes the teacher recognises."""
    forget = check_classes(forget_classes)
    synth = synthesize(teacher, None, for_profile(PROBES, profile), device=device, seed=seed)
    with torch.no_grad():
        called = teacher(synth.data.X.to(device)).argmax(1).cpu()  # (N,)
    of_forget = class_mask(synth.data.y, forget)
    recognised = of_forget & (called == synth.data.y)
    X = synth.data.X[recognised] if recognised.sum() >= 3 else synth.data.X[of_forget]
    return Probes(X, forget, int(of_forget.sum()), int(recognised.sum()), synth.teacher_acc, synth.seconds)


# -- Four GKT runs


def gkt_variants(profile: Profile) -> dict[str, gkt.Config]:
    """Plain GKT, the entropy filter at 0.6 nats and beta = 0 run to the end; the gate opened to 0.5 stops where
    the rule fires."""
    config = replace(for_profile(gkt.CONFIGS, profile), run_to_end=True)
    return {
        GKT: config,
        GKT_ENTROPY: replace(config, max_entropy=0.6),
        GKT_BETA0: replace(config, beta=0.0),
        GKT_LEAKY: replace(config, gate_threshold=0.5, run_to_end=False),
    }


def accuracy_monitor(
    data: TensorData, forget_classes: Iterable[int], device: torch.device | str = "cpu"
) -> gkt.Monitor:
    """A monitor for :func:`unlearnlab.methods.gkt.unlearn`: the student's forget and retain accuracy on ``data``.

    Evaluation only: GKT never trains on these images, and their time is not counted as its cost.
    """
    device = torch.device(device)
    is_forget = class_mask(data.y, forget_classes)
    if not is_forget.any() or is_forget.all():
        raise ValueError("the monitor's data must hold images of the forget classes and of the others")

    @torch.no_grad()
    def monitor(student: nn.Module) -> dict[str, float]:
        pred = student(data.X.to(device)).argmax(1).cpu()
        return {
            "forget": float((pred[is_forget] == data.y[is_forget]).float().mean()),
            "retain": float((pred[~is_forget] == data.y[~is_forget]).float().mean()),
        }

    return monitor


@dataclass
class GKTStudy:
    """The GKT runs, each final student's report and the report of the model each stopping rule returned."""

    variants: dict[str, gkt.Config]
    runs: dict[str, gkt.GKTResult]
    final: dict[str, UnlearningReport]  # the student at the end of each run, on the real test set
    chosen: dict[str, UnlearningReport]  # the rule's model: its snapshot when it fired, else the final student

    def log(self) -> str:
        """One paragraph per run: its time, the gate's share, where the rule fired, the time per phase."""
        lines = []
        for name, run in self.runs.items():
            if run.stop_iteration is not None:
                rule = f"the rule fired at pseudo-batch {run.stop_iteration} (snapshot from {run.snapshot_iteration})"
            else:
                rule = "the rule did not fire"
            phases = ", ".join(f"{phase} {seconds:.0f} s" for phase, seconds in run.phase_seconds.items())
            lines.append(
                f"{name}: {run.cost.seconds:.0f} s; the gate kept {100 * run.kept_fraction:.0f} % of the "
                f"pseudo-images; {rule}\n    time per phase: {phases}"
            )
        return "\n".join(lines)

    def plot(self) -> Figure:
        """:func:`plot_runs` of every run, with plain GKT's probe-rate limit."""
        return plot_runs(self.runs, max_probe_rate=self.variants[GKT].max_probe_rate)

    def rule_table(self, reports: Mapping[str, UnlearningReport]) -> dict[str, UnlearningReport]:
        """The original's and the retrained model's reports, then the model each run's stopping rule returned."""
        return {
            **{name: reports[name] for name in (ORIGINAL, GOLD)},
            **{f"{name}, rule's model": report for name, report in self.chosen.items()},
        }

    def reading(self, gold: UnlearningReport, profile: Profile) -> str:
        """Markdown: what the four runs show, against the retrained model (``gold``)."""
        plain, entropy_run, beta0, leaky = (self.final[name] for name in (GKT, GKT_ENTROPY, GKT_BETA0, GKT_LEAKY))
        kept = {name: 100 * run.kept_fraction for name, run in self.runs.items()}
        config = self.variants[GKT]
        no_leak = max(plain.forget_acc, beta0.forget_acc) <= 0.01
        leaky_run = self.runs[GKT_LEAKY]
        if leaky_run.stop_iteration is not None:
            caught = self.chosen[GKT_LEAKY]
            leaky_text = (
                f"when the rule fired, at pseudo-batch {leaky_run.stop_iteration}, the student called "
                f"{100 * leaky.forget_acc:.1f} % of the real 0s a 0; the rule returned the snapshot from "
                f"pseudo-batch {leaky_run.snapshot_iteration}, whose forget accuracy is "
                f"{100 * caught.forget_acc:.1f} % (retain {100 * caught.retain_acc:.1f} %)"
            )
        else:
            leaky_text = (
                f"the final student calls {100 * leaky.forget_acc:.1f} % of the real 0s a 0, and the rule did "
                "not fire: its probes did not show the leak"
            )
        if no_leak and profile.name == "quick":
            scale = (
                "The attention term's leak needs that scale (the full profile, on a GPU); no full-profile run of "
                "this notebook has been recorded, so it is not shown here."
            )
        else:
            scale = "Compare the two forget curves above: the leak, if any, shows there."
        leak = ": no leak at this scale." if no_leak else "."
        return "\n".join(
            [
                f"- **Plain GKT** ended at **{100 * plain.retain_acc:.1f} %** retain and "
                f"**{100 * plain.forget_acc:.1f} %** forget accuracy, against {100 * gold.retain_acc:.1f} % and "
                f"{100 * gold.forget_acc:.1f} % for the retrained model, without a single real image.",
                f"- **Entropy filter**: the gate and the filter kept {kept[GKT_ENTROPY]:.0f} % of the pseudo-images, "
                f"against {kept[GKT]:.0f} % for the gate alone; the student ended at "
                f"{100 * entropy_run.retain_acc:.1f} % retain accuracy "
                f"({100 * (entropy_run.retain_acc - plain.retain_acc):+.1f} points against plain GKT, same number "
                "of pseudo-batches).",
                f"- **Attention term**: without it (β = 0) the student ended at {100 * beta0.retain_acc:.1f} % "
                f"retain accuracy ({100 * (beta0.retain_acc - plain.retain_acc):+.1f} points against β = 250). "
                f"Forget accuracy at the end: {100 * plain.forget_acc:.1f} % with β = 250, "
                f"{100 * beta0.forget_acc:.1f} % with β = 0{leak}",
                f"- **Gate opened to 0.5**: {leaky_text}.",
                f"- **Scale.** This run had {config.num_iterations} pseudo-batches of {config.batch_size} images; "
                "the public GKT code's log saw the forget class return after about 800 pseudo-batches of 256 "
                f"images, with ten student steps each. {scale}",
            ]
        )


def run_gkt(
    teacher: nn.Module,
    splits: Splits,
    profile: Profile,
    probes: torch.Tensor,
    *,
    device: torch.device | str,
    seed: int,
) -> GKTStudy:
    """The four :func:`gkt_variants`, with the stopping rule on ``probes`` (N, 1, 28, 28) and an
    :func:`accuracy_monitor` on ``MONITOR_IMAGES`` real test images (evaluation only); every student evaluated."""
    variants = gkt_variants(profile)
    watch = stratified_subset(splits.test, MONITOR_IMAGES, seed=seed)
    monitor = accuracy_monitor(watch, splits.forget_classes, device)
    runs = {
        name: gkt.unlearn(teacher, splits, config, device=device, seed=seed, probes=probes, monitor=monitor)
        for name, config in variants.items()
    }
    final = reports_for({name: run.final_model for name, run in runs.items()}, splits, device)
    snapshots = {name: run.model for name, run in runs.items() if run.model is not run.final_model}
    chosen = final | reports_for(snapshots, splits, device)  # a new model to evaluate only where a rule fired
    return GKTStudy(variants, runs, final, chosen)


def plot_runs(runs: Mapping[str, gkt.GKTResult], max_probe_rate: float | None = None) -> Figure:
    """Retain and forget accuracy (from the monitor) and the probe rate at every checkpoint, one line per run.

    A dotted vertical line marks where a run's stopping rule fired; ``max_probe_rate`` draws the rule's limit.
    """
    fig = CourseFigure(figsize=(13, 3.4))
    axes = fig.subplots(1, 3)
    for name, run in runs.items():
        points = run.checkpoints
        if any("retain" not in p.metrics or "forget" not in p.metrics for p in points):
            raise ValueError(f"run {name!r} has no monitor metrics: pass monitor=accuracy_monitor(...) to unlearn")
        steps = [p.iteration for p in points]
        (line,) = axes[0].plot(steps, [100 * p.metrics["retain"] for p in points], marker="o", label=name)
        axes[1].plot(steps, [100 * p.metrics["forget"] for p in points], marker="o", color=line.get_color())
        rates = [100 * p.probe_rate if p.probe_rate is not None else float("nan") for p in points]
        axes[2].plot(steps, rates, marker="o", color=line.get_color())
        if run.stop_iteration is not None:  # where the stopping rule fired
            for ax in axes:
                ax.axvline(run.stop_iteration, color=line.get_color(), linestyle=":")
    if max_probe_rate is not None:
        axes[2].axhline(100 * max_probe_rate, color="gray", linestyle="--", label="rule's limit")
        axes[2].legend(fontsize=8)
    titles = [
        "retain accuracy % (real test, monitor)",
        "forget accuracy % (real test, monitor)",
        "probes called the forget class %",
    ]
    for ax, title in zip(axes, titles):
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("pseudo-batches")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


# -- The anamnesis index


def ain_candidates(teacher: nn.Module, emmn: EMMNStudy, study: GKTStudy) -> dict[str, nn.Module]:
    """The models whose anamnesis index the notebook measures: the original, EMMN, GKT's rule's model, beta = 0."""
    return {
        AIN_ORIGINAL: teacher,
        EMMN: emmn.runs[EMMN].model,
        AIN_GKT: study.runs[GKT].model,
        GKT_BETA0: study.runs[GKT_BETA0].model,
    }


@dataclass
class AnamnesisStudy:
    """Each candidate's anamnesis index with its relearning run, and the retrained model's run."""

    rows: dict[str, anamnesis.AnamnesisRow]
    gold: anamnesis.RelearnResult

    def __str__(self) -> str:
        lines = []
        for name, row in self.rows.items():
            note = "" if row.relearn.reached else " (not reached)"
            lines.append(f"{name:38s} relearned in {row.relearn.steps:3d} steps{note}: AIN {row.ain:.2f}")
        lines.append(f"{'retrained (gold)':38s} relearned in {self.gold.steps:3d} steps")
        return "\n".join(lines)

    def shown(self, name: str) -> str:
        """``name``'s index with two decimals, marked when the target was not reached (a lower bound)."""
        row = self.rows[name]
        return f"{row.ain:.2f}" + ("" if row.relearn.reached else " (not reached)")


def run_anamnesis(
    models: Mapping[str, nn.Module],
    gold: nn.Module,
    original_forget_acc: float,
    splits: Splits,
    profile: Profile,
    *,
    device: torch.device | str,
    seed: int,
) -> AnamnesisStudy:
    """AIN of each of ``models`` against the retrained ``gold``: relearn from ``RELEARN_PER_CLASS`` real training
    images per class, measure on ``FORGET_EVAL_IMAGES`` real test images of the forget class."""
    relearn_data = per_class_subset(concat(splits.forget, splits.retain), RELEARN_PER_CLASS, seed=seed)
    forget_eval = splits.test_forget.subset(slice(0, FORGET_EVAL_IMAGES))
    config = for_profile(anamnesis.CONFIGS, profile)
    rows, gold_run = anamnesis.anamnesis(
        models, gold, original_forget_acc, relearn_data, forget_eval, config, device=device, seed=seed
    )
    return AnamnesisStudy(rows, gold_run)


# -- What the notebook ends with


def summary_table(reports: Mapping[str, UnlearningReport], study: GKTStudy, ain: AnamnesisStudy) -> str:
    """Markdown: retain and forget accuracy and AIN of the retrained model, EMMN, UNSIR and GKT's rule's model."""

    def pct(report: UnlearningReport) -> str:
        return f"{100 * report.retain_acc:.1f} | {100 * report.forget_acc:.1f}"

    return "\n".join(
        [
            "| model | retain % | forget % | AIN |",
            "|---|---|---|---|",
            f"| retrained (gold) | {pct(reports[GOLD])} | 1 |",
            f"| EMMN (zero-shot) | {pct(reports[EMMN])} | {ain.rows[EMMN].ain:.2f} |",
            f"| UNSIR (50 real img/class) | {pct(reports[UNSIR])} | |",
            f"| GKT (β = 250), rule's model | {pct(study.chosen[GKT])} | {ain.shown(AIN_GKT)} |",
        ]
    )


def headline_metrics(
    reports: Mapping[str, UnlearningReport], study: GKTStudy, ain: AnamnesisStudy
) -> dict[str, float | bool]:
    """The values the notebook records (accuracies in percent), by the keys of ``HEADLINES``."""
    return {
        "original_retain_acc": 100 * reports[ORIGINAL].retain_acc,
        "retrained_retain_acc": 100 * reports[GOLD].retain_acc,
        "emmn_retain_acc": 100 * reports[EMMN].retain_acc,
        "emmn_forget_acc": 100 * reports[EMMN].forget_acc,
        "unsir_retain_acc": 100 * reports[UNSIR].retain_acc,
        "gkt_retain_acc": 100 * study.chosen[GKT].retain_acc,
        "gkt_forget_acc": 100 * study.chosen[GKT].forget_acc,
        "gkt_entropy_retain_acc": 100 * study.final[GKT_ENTROPY].retain_acc,
        "gkt_beta0_retain_acc": 100 * study.final[GKT_BETA0].retain_acc,
        "gkt_final_forget_acc": 100 * study.final[GKT].forget_acc,
        "gkt_beta0_final_forget_acc": 100 * study.final[GKT_BETA0].forget_acc,
        "gkt_seconds": study.runs[GKT].cost.seconds,
        "ain_gkt": ain.rows[AIN_GKT].ain,
        "ain_gkt_reached": ain.rows[AIN_GKT].relearn.reached,
        "ain_emmn": ain.rows[EMMN].ain,
        "ain_emmn_reached": ain.rows[EMMN].relearn.reached,
        "ain_original": ain.rows[AIN_ORIGINAL].ain,
        "ain_original_reached": ain.rows[AIN_ORIGINAL].relearn.reached,
    }

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

from .. import zoo
from ..config import Profile
from ..data import (
    Splits,
    TensorData,
    check_classes,
    class_mask,
    class_splits,
    concat,
    per_class_subset,
    stratified_subset,
)
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


HEADLINES = (
    Headline(
        "gkt_retain_acc",
        "GKT (β = 250), retain accuracy (the rule's snapshot, or the final student when it never fired)",
        reference="97.12 % (Chundawat et al., quoted by the CS772 report)",
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
    Headline(
        "gkt_final_retain_acc", "GKT (β = 250), retain accuracy at the end of the run", retrained="retrained_retain_acc"
    ),
    Headline("gkt_final_forget_acc", "GKT (β = 250), forget accuracy at the end of the run"),
    Headline(
        "gkt_beta0_retain_acc", "GKT without attention (β = 0), retain accuracy", retrained="retrained_retain_acc"
    ),
    Headline("gkt_beta0_final_forget_acc", "GKT without attention (β = 0), forget accuracy at the end of the run"),
    Headline(
        "gkt_temperature_final_forget_acc",
        "GKT (β = 250) at the other temperature, forget accuracy at the end of the run",
    ),
    Headline(
        "gkt_masked_retain_acc",
        "GKT (β = 250), forget class masked out of the soft targets, retain accuracy",
        retrained="retrained_retain_acc",
    ),
    Headline(
        "gkt_masked_final_forget_acc",
        "GKT (β = 250), forget class masked out of the soft targets, forget accuracy at the end",
    ),
    Headline(
        "gkt_entropy_retain_acc",
        "GKT (β = 250) with the entropy filter, retain accuracy at the end of the run",
        reference="98.3 % (the CS772 report, entropy below 0.6 nats)",
        retrained="retrained_retain_acc",
    ),
    Headline(
        "gkt_entropy_final_forget_acc", "GKT (β = 250) with the entropy filter, forget accuracy at the end of the run"
    ),
    Headline("gkt_seconds", "GKT (β = 250), unlearning time over the whole run", unit="s"),
    Headline(
        "emmn_retain_acc",
        "EMMN (zero-shot), retain accuracy",
        reference="10.57 % (Chundawat et al., quoted by the CS772 report)",
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
        reference="97.84 % (Chundawat et al., quoted by the CS772 report)",
        retrained="retrained_retain_acc",
    ),
    Headline(
        "retrained_retain_acc",
        "retrained model (gold standard), retain accuracy",
        reference="99.25 % (Chundawat et al., quoted by the CS772 report)",
    ),
    Headline(
        "ain_gkt",
        "anamnesis index, GKT (β = 250) at the snapshot (retrained = 1)",
        unit="",
        reached="ain_gkt_reached",
    ),
    Headline(
        "ain_gkt_final",
        "anamnesis index, GKT (β = 250) at the end of the run (retrained = 1)",
        unit="",
        reached="ain_gkt_final_reached",
    ),
    Headline("ain_emmn", "anamnesis index, EMMN (retrained = 1)", unit="", reached="ain_emmn_reached"),
    Headline(
        "ain_original", "anamnesis index, original model (retrained = 1)", unit="", reached="ain_original_reached"
    ),
)


# ----------------------------------------------------------------------------------------------------------
# The notebook's study: its runs, the stopping rule's probes, the figure and the text that reads the numbers

UNSIR_RETAIN_PER_CLASS = 50  # real retain images per class in UNSIR's repair (no longer zero-shot)

# the names of the notebook's models in its tables (the notebook names the first two itself)
ORIGINAL, GOLD = "original", "retrained (gold)"
EMMN, UNSIR = "EMMN (zero-shot)", f"UNSIR ({UNSIR_RETAIN_PER_CLASS} real retain img/class)"
AIN_ORIGINAL, AIN_GKT, AIN_GKT_FINAL = "original (no unlearning)", "GKT, the rule's model", "GKT, final student"
AIN_MASKED = "GKT, forget class masked, final student"

MONITOR_IMAGES = 500  # real test images the GKT monitor evaluates at each checkpoint (never trained on)
RELEARN_PER_CLASS = 30  # real images per class the anamnesis index relearns from
FORGET_EVAL_IMAGES = 200  # real test images of the forget class measured after every relearning step

# DeepInversion probes of the forget class for GKT's stopping rule: all ten classes are synthesised at once (a
# batch of one class cannot match BatchNorm statistics gathered on all ten)
PROBES = {
    "quick": InversionConfig(images_per_class=10, batch_per_class=10, steps=100),
    "full": InversionConfig(images_per_class=50, batch_per_class=50, steps=200),
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


# -- The GKT runs: the leak and its causes


@dataclass(frozen=True)
class Horizon:
    """How long the notebook's GKT runs are planned and trained, and how often they are checked."""

    planned: int  # pseudo-batches the learning rates anneal over (a long run, as the public GKT code's)
    trained: int  # pseudo-batches each run trains (the first part of the plan: where the leak shows)
    check_every: int  # pseudo-batches between checkpoints (probe rate, monitor, snapshot)
    min_iterations: int  # the stopping rule acts from here on


HORIZONS = {"quick": Horizon(600, 150, 10, 30), "full": Horizon(600, 600, 50, 100)}
LEAK_LEVEL = 0.05  # forget accuracy on the monitor's real 0s above which the forgotten class has come back

# the runs' roles: the profile's GKT, the same run with one suspect of the leak changed, and with the entropy filter
GKT, NO_ATTENTION, TEMPERATURE, MASKED = "gkt", "no attention", "other temperature", "forget class masked"
ENTROPY = "entropy filter"
ENTROPY_FILTER = 0.6  # nats: the CS772 report's threshold for the entropy filter


def gkt_variants(profile: Profile) -> dict[str, gkt.Config]:
    """The profile's GKT at the notebook's :data:`HORIZONS`, run to the end (the rule's snapshot is kept), and
    three runs that each change one suspect of the leak: no attention term (beta = 0), the other temperature
    (T = 1 <-> 4), and the forget classes masked out of the student's soft targets; and the profile's GKT with the
    CS772 report's entropy filter (:data:`ENTROPY_FILTER`)."""
    horizon = for_profile(HORIZONS, profile)
    config = replace(
        for_profile(gkt.CONFIGS, profile),
        num_iterations=horizon.planned,
        stop_at=horizon.trained,
        check_every=horizon.check_every,
        min_iterations=horizon.min_iterations,
        run_to_end=True,
    )
    return {
        GKT: config,
        NO_ATTENTION: replace(config, beta=0.0),
        TEMPERATURE: replace(config, temperature=4.0 if config.temperature == 1.0 else 1.0),
        MASKED: replace(config, mask_forget=True),
        ENTROPY: replace(config, max_entropy=ENTROPY_FILTER),
    }


def describe(config: gkt.Config) -> str:
    """A run's name in the tables: its attention weight, its temperature, whether the forget classes are masked
    and its entropy filter."""
    name = f"GKT, beta={config.beta:g}, T={config.temperature:g}"
    name += ", forget class masked" if config.mask_forget else ""
    return name + (f", entropy < {config.max_entropy:g}" if config.max_entropy is not None else "")


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


def came_back(run: gkt.GKTResult, level: float = LEAK_LEVEL) -> int | None:
    """The first checkpoint at which the monitor saw the forget accuracy above ``level`` (None: never)."""
    return next((point.iteration for point in run.checkpoints if point.metrics.get("forget", 0.0) > level), None)


@torch.no_grad()
def forget_mass(
    teacher: nn.Module, run: gkt.GKTResult, config: gkt.Config, forget: Iterable[int], images: int = 512, seed: int = 0
) -> dict[float, tuple[float, float]]:
    """The mass the teacher's soft targets give the forget classes on pseudo-images that pass the gate.

    Draws ``images`` from the run's trained generator, keeps those the gate keeps, and returns, at T = 1 and at
    the run's temperature, the mean and the largest summed forget-class probability: ``{T: (mean, max)}``.
    """
    forget = list(forget)
    device = next(teacher.parameters()).device
    X = run.generator.eval().sample(images, torch.Generator().manual_seed(seed)).to(device)  # (N, 1, 28, 28)
    logits = teacher.eval()(X)  # (N, C)
    keep = gkt.gate_mask(logits.softmax(1), forget, config.gate_threshold, config.max_entropy)
    masses = {}
    for T in sorted({1.0, config.temperature}):
        mass = (logits[keep] / T).softmax(1)[:, forget].sum(1)  # (K,)
        masses[T] = (float(mass.mean()), float(mass.max()))
    return masses


@dataclass
class GKTStudy:
    """The GKT runs by role, each final student's report and the report of the model each stopping rule returned."""

    variants: dict[str, gkt.Config]
    runs: dict[str, gkt.GKTResult]
    final: dict[str, UnlearningReport]  # the student at the end of each run, on the real test set
    chosen: dict[str, UnlearningReport]  # the rule's model: its snapshot when it fired, else the final student
    forget_classes: tuple[int, ...]

    def name(self, role: str) -> str:
        """The run's name in tables and figures."""
        return describe(self.variants[role])

    def log(self) -> str:
        """One paragraph per run: its time, the gate's share, where the rule fired, the time per phase."""
        lines = []
        for role, run in self.runs.items():
            if run.stop_iteration is not None:
                rule = f"the rule fired at pseudo-batch {run.stop_iteration} (snapshot from {run.snapshot_iteration})"
            else:
                rule = "the rule did not fire"
            phases = ", ".join(f"{phase} {seconds:.0f} s" for phase, seconds in run.phase_seconds.items())
            lines.append(
                f"{self.name(role)}: {run.cost.seconds:.0f} s; the gate kept {100 * run.kept_fraction:.0f} % of the "
                f"pseudo-images; {rule}\n    time per phase: {phases}"
            )
        return "\n".join(lines)

    def plot(self) -> Figure:
        """:func:`plot_runs` of every run, with the rule's probe-rate limit."""
        named = {self.name(role): run for role, run in self.runs.items()}
        return plot_runs(named, max_probe_rate=self.variants[GKT].max_probe_rate)

    def final_table(self, reports: Mapping[str, UnlearningReport]) -> dict[str, UnlearningReport]:
        """The original's and the retrained model's reports, then each run's student at the end of its run."""
        return {
            **{name: reports[name] for name in (ORIGINAL, GOLD)},
            **{self.name(r): x for r, x in self.final.items()},
        }

    def rule_table(self, reports: Mapping[str, UnlearningReport]) -> dict[str, UnlearningReport]:
        """The original's and the retrained model's reports, then the model each run's stopping rule returned."""
        return {
            **{name: reports[name] for name in (ORIGINAL, GOLD)},
            **{f"{self.name(role)}, rule's model": report for role, report in self.chosen.items()},
        }

    def mass_text(self, teacher: nn.Module, seed: int) -> str:
        """What the soft targets of the GKT run teach about the forget classes, at T = 1 and at its temperature."""
        config = self.variants[GKT]
        masses = forget_mass(teacher, self.runs[GKT], config, self.forget_classes, seed=seed)
        parts = [f"T = {T:g}: mean {100 * mean:.2f} %, largest {100 * top:.2f} %" for T, (mean, top) in masses.items()]
        return (
            f"forget-class mass in the teacher's soft targets on pseudo-images that pass the gate "
            f"(gate: under {100 * config.gate_threshold:g} % at T = 1), {self.name(GKT)}'s generator: "
            + "; ".join(parts)
        )

    def _run_line(self, role: str) -> str:
        run, final = self.runs[role], self.final[role]
        at = came_back(run)
        end = f"at the end {100 * final.forget_acc:.1f} % forget, {100 * final.retain_acc:.1f} % retain accuracy"
        if at is None:
            return f"- **{self.name(role)}**: the forget class did not come back ({end})."
        return f"- **{self.name(role)}**: the forget class came back at pseudo-batch **{at}** ({end})."

    def reading(self, gold: UnlearningReport) -> str:
        """Markdown: when (if ever) each run's forget class came back, what the rule returned, and the verdict."""
        config, gkt_run = self.variants[GKT], self.runs[GKT]
        lines = [
            f"Each run trained {config.stop_at} pseudo-batches of {config.batch_size} images (its learning rates "
            f'anneal over {config.num_iterations}); "came back" means the monitor saw more than '
            f"{100 * LEAK_LEVEL:g} % of its real 0s called a 0. The retrained model: "
            f"{100 * gold.forget_acc:.1f} % forget, {100 * gold.retain_acc:.1f} % retain accuracy.",
            "",
            *(self._run_line(role) for role in self.runs),
        ]
        if gkt_run.stop_iteration is not None:
            kept = self.chosen[GKT]
            lines.append(
                f"- **Stopping rule** ({self.name(GKT)}): it fired at pseudo-batch {gkt_run.stop_iteration} and "
                f"returned the snapshot from pseudo-batch {gkt_run.snapshot_iteration}: "
                f"{100 * kept.forget_acc:.1f} % forget, {100 * kept.retain_acc:.1f} % retain accuracy."
            )
        else:
            lines.append(f"- **Stopping rule** ({self.name(GKT)}): it did not fire; GKT returns the final student.")
        return "\n".join([*lines, "", self.verdict()])

    def verdict(self) -> str:
        """Markdown: which suspects this run's comparisons point at (only from what came back and what did not)."""
        back = {role: came_back(run) for role, run in self.runs.items()}
        if back[GKT] is None:
            horizon = self.variants[GKT].stop_at
            return (
                f"**Verdict.** {self.name(GKT)}'s forget class did not come back within {horizon} pseudo-batches: "
                "no leak to explain in this run."
            )
        suspects = {
            NO_ATTENTION: "the attention term",
            TEMPERATURE: "the temperature",
            MASKED: "the forget class's share of the soft targets",
        }
        text = [f"**Verdict.** {self.name(GKT)} leaked at pseudo-batch {back[GKT]}."]
        for role, suspect in suspects.items():
            if back[role] is None:
                text.append(f"Changed in {self.name(role)}, the leak did not come back: {suspect} is needed for it.")
            else:
                text.append(
                    f"Changed in {self.name(role)}, the class still came back (pseudo-batch {back[role]}): "
                    f"{suspect} is not needed for the leak."
                )
        return " ".join(text)


def run_gkt(
    teacher: nn.Module,
    splits: Splits,
    profile: Profile,
    probes: torch.Tensor,
    *,
    device: torch.device | str,
    seed: int,
) -> GKTStudy:
    """The :func:`gkt_variants`, with the stopping rule on ``probes`` (N, 1, 28, 28) and an
    :func:`accuracy_monitor` on ``MONITOR_IMAGES`` real test images (evaluation only); every student evaluated."""
    variants = gkt_variants(profile)
    watch = stratified_subset(splits.test, MONITOR_IMAGES, seed=seed)
    monitor = accuracy_monitor(watch, splits.forget_classes, device)
    runs = {
        role: gkt.unlearn(teacher, splits, config, device=device, seed=seed, probes=probes, monitor=monitor)
        for role, config in variants.items()
    }
    final = reports_for({role: run.final_model for role, run in runs.items()}, splits, device)
    snapshots = {role: run.model for role, run in runs.items() if run.model is not run.final_model}
    chosen = final | reports_for(snapshots, splits, device)  # a new model to evaluate only where a rule fired
    return GKTStudy(variants, runs, final, chosen, splits.forget_classes)


def warm_cache(profile: Profile, device: torch.device) -> None:
    """Run the notebook's probes and GKT study once into the cache, with its default parameters (``SEED = 0``,
    class :data:`FORGET`): every GKT run is saved when it ends, so a notebook that asks for the same runs, such as
    a submission in the grading sandbox (which cannot write the cache), loads them instead of training them again."""
    teacher = zoo.pretrained("cnn_bn", profile, seed=0, device=device)
    splits = class_splits((FORGET,), train_subset=profile.train_subset, seed=0)
    probes = make_probes(teacher, splits.forget_classes, profile, device=device, seed=0)
    run_gkt(teacher, splits, profile, probes.X, device=device, seed=0)


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
    """The models whose anamnesis index the notebook measures: the original, EMMN, and GKT's rule's model, its final
    student and the final student of the run with the forget class masked."""
    return {
        AIN_ORIGINAL: teacher,
        EMMN: emmn.runs[EMMN].model,
        AIN_GKT: study.runs[GKT].model,
        AIN_GKT_FINAL: study.runs[GKT].final_model,
        AIN_MASKED: study.runs[MASKED].final_model,
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
    """Markdown: retain and forget accuracy and AIN of the retrained model, EMMN, UNSIR and the GKT students."""

    def pct(report: UnlearningReport) -> str:
        return f"{100 * report.retain_acc:.1f} | {100 * report.forget_acc:.1f}"

    return "\n".join(
        [
            "| model | retain % | forget % | AIN |",
            "|---|---|---|---|",
            f"| retrained (gold) | {pct(reports[GOLD])} | 1 |",
            f"| EMMN (zero-shot) | {pct(reports[EMMN])} | {ain.shown(EMMN)} |",
            f"| UNSIR ({UNSIR_RETAIN_PER_CLASS} real img/class) | {pct(reports[UNSIR])} | |",
            f"| {study.name(GKT)}, the rule's model | {pct(study.chosen[GKT])} | {ain.shown(AIN_GKT)} |",
            f"| {study.name(GKT)}, final student | {pct(study.final[GKT])} | {ain.shown(AIN_GKT_FINAL)} |",
            f"| {study.name(MASKED)}, final student | {pct(study.final[MASKED])} | {ain.shown(AIN_MASKED)} |",
            f"| {study.name(ENTROPY)}, final student | {pct(study.final[ENTROPY])} | |",
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
        "gkt_final_retain_acc": 100 * study.final[GKT].retain_acc,
        "gkt_final_forget_acc": 100 * study.final[GKT].forget_acc,
        "gkt_beta0_retain_acc": 100 * study.final[NO_ATTENTION].retain_acc,
        "gkt_beta0_final_forget_acc": 100 * study.final[NO_ATTENTION].forget_acc,
        "gkt_temperature_final_forget_acc": 100 * study.final[TEMPERATURE].forget_acc,
        "gkt_masked_retain_acc": 100 * study.final[MASKED].retain_acc,
        "gkt_masked_final_forget_acc": 100 * study.final[MASKED].forget_acc,
        "gkt_entropy_retain_acc": 100 * study.final[ENTROPY].retain_acc,
        "gkt_entropy_final_forget_acc": 100 * study.final[ENTROPY].forget_acc,
        "gkt_seconds": study.runs[GKT].cost.seconds,
        "ain_gkt": ain.rows[AIN_GKT].ain,
        "ain_gkt_reached": ain.rows[AIN_GKT].relearn.reached,
        "ain_gkt_final": ain.rows[AIN_GKT_FINAL].ain,
        "ain_gkt_final_reached": ain.rows[AIN_GKT_FINAL].relearn.reached,
        "ain_emmn": ain.rows[EMMN].ain,
        "ain_emmn_reached": ain.rows[EMMN].relearn.reached,
        "ain_original": ain.rows[AIN_ORIGINAL].ain,
        "ain_original_reached": ain.rows[AIN_ORIGINAL].relearn.reached,
    }


LESSON = Lesson(
    stem="04_zero_shot",
    questions={
        "q1": FunctionQuestion(
            "error_max_objective", _error_max_cases, noise.error_max_objective, rtol=1e-4, atol=1e-4
        ),
        "q2": FunctionQuestion("keep_mask", _gate_cases, gkt.gate_mask),
        "q3": FunctionQuestion("at_loss", _attention_cases, gkt.attention_loss, rtol=1e-4),
        "q4": FunctionQuestion("ain_from_curves", _ain_cases, anamnesis.index_from_curves),
    },
    headlines=HEADLINES,
    needs=((), (FORGET,)),
    warm=warm_cache,
)

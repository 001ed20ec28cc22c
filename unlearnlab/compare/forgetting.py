"""Forgetting quality F of every method on MNIST, over K models a side (``unlearnlab compare --forgetting-quality``).

Triantafillou et al. (2024), "Are we making progress in unlearning? Findings from the first NeurIPS unlearning
competition" (arXiv 2406.09073), section 3: K original models are each unlearned by the method (K unlearned
models) and K models are retrained without the forget set; per forget example, the two groups' logit-scaled
confidences are told apart as well as a threshold or an interval can, and the examples' epsilons make F
(:mod:`unlearnlab.forgetting_quality`). The competition scored 512 models a side on GPUs. Here every model is a
small MLP on an MNIST subset (a few seconds each on a CPU), so K = 32 fits the quick profile and K = 256 the
full one.

The forget set is a random share of the training images, every class mixed (random forgetting, as in the
competition): a class that is gone entirely would give every method's and every retrained model's confidence the
same collapse, and F would say little. Every seed k trains its original and its retrained model on the same
subset and forget set (:data:`~unlearnlab.compare.scoring.SPLIT_SEED`), and the method unlearns original k with
seed k. Each (method, seed) pair is checkpointed and loaded when the same study runs again.

F's scale depends on K: even two groups of models with nothing to tell apart give rules that separate some
examples' K samples by chance. So the study retrains K more models (seeds K to 2K - 1) and scores them against
the first K as if they were unlearned: the retrained row's F is the most a method can expect at this K.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from scipy.stats import kendalltau
from torch import nn
from tqdm.auto import tqdm

from .. import metrics, zoo
from ..cache import key, weights_digest
from ..checkpoints import Checkpoint
from ..config import Profile, for_profile, resolve
from ..data import Splits, TensorData, make_loader
from ..engine import LOCAL, check_workers, cluster, run_tasks
from ..files import atomic_write, write_text
from ..forgetting_quality import ForgettingQuality, forgetting_quality, logit_scaled_confidence
from ..methods import registry
from ..methods.registry import MethodSpec
from ..plots import CourseFigure
from ..training import pick_device, predict, progress
from .cluster import local_jobs, train_zoo_model
from .run import (
    SeedSetup,
    config_fields,
    data_digest,
    error_text,
    missing_inputs,
    pick_methods,
    splits_for,
    unlearn_seed,
    zoo_spec,
)

VERSION = 1  # of the (method, seed) checkpoints: raise it when what a pair measures changes


@dataclass(frozen=True)
class Study:
    """How F is measured: K models a side of a small architecture, on a random forget set of an MNIST subset."""

    model: str  # a small architecture (seconds per model on a CPU)
    models: int  # K: unlearned and retrained models a side
    train_subset: int  # training images of every model; the forget set is a share of them
    num_epochs: int  # training epochs of every original and retrained model
    forget_fraction: float  # the forget set's share of the training images
    scored: int  # forget examples F is computed on (the first of the forget set)

    def __post_init__(self) -> None:
        if self.models < 3:
            raise ValueError(f"F needs at least 3 models a side, got models={self.models}")


STUDIES = {
    # 5,000 images for 10 epochs: the originals learn their forget set by heart (a retrained model misses some of
    # it), so doing nothing is visible; all 100 forget examples are scored
    "quick": Study("mlp", 32, 5_000, 10, 0.02, 100),
    "full": Study("mlp", 256, 5_000, 10, 0.02, 100),
}


@dataclass
class PairOutcome:
    """One (method, seed) pair: the unlearned model's confidence on each scored forget example, its accuracies
    and its time, or the error it raised."""

    confidence: list[float] = field(default_factory=list)  # (N,) logit-scaled confidence on the scored examples
    forget_acc: float = math.nan
    retain_acc: float = math.nan
    test_acc: float = math.nan
    seconds: float = math.nan
    error: str = ""


@dataclass
class MethodQuality:
    """One method's F over K seeds (with F from the first k seeds of each side), and its mean accuracies and time."""

    name: str
    quality: ForgettingQuality | None  # None: a seed failed (``error``)
    by_models: dict[int, float]  # F from the first k models a side, k = 4, 8, ... up to K
    forget_acc: float
    retain_acc: float
    test_acc: float
    seconds: float  # mean unlearning time
    error: str = ""


@dataclass
class QualityResult:
    """F of every method, with the retrained models' own accuracies and training time for reference."""

    study: Study
    rows: list[MethodQuality]
    retrained: MethodQuality  # K more retrained models scored as if unlearned: F's ceiling at this K
    original: MethodQuality  # the originals scored as if unlearned: what doing nothing earns
    resumed: int  # pairs loaded from their checkpoints
    seconds: float = 0.0  # wall-clock seconds of the whole study (models trained or loaded, every method)
    workers: int = 1  # processes the methods ran in at once (tasks on a Dask cluster when > 1)
    reference: np.ndarray | None = field(default=None, repr=False)  # (K, N): the first K retrained confidences

    def scored(self) -> list[MethodQuality]:
        """The rows with an F, best first."""
        return sorted((r for r in self.rows if r.quality is not None), key=lambda r: -r.quality.score)

    def markdown(self) -> str:
        """The table: F, the accuracies and the time against retraining, best F first; failed methods last."""
        s, base = self.study, self.retrained.seconds
        lines = [
            f"Forgetting quality F over K = {s.models} models a side ({s.model}, {s.train_subset:,} MNIST images, "
            f"{s.forget_fraction:.0%} forgotten at random; {s.scored} forget examples scored)",
            "",
            "| method | F | forget acc | retain acc | test acc | time / retraining |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for row in [*self.scored(), self.original, self.retrained]:
            f = f"{row.quality.score:.3f}" if row.quality is not None else "—"
            lines.append(
                f"| {row.name} | {f} | {100 * row.forget_acc:.1f} % | {100 * row.retain_acc:.1f} % | "
                f"{100 * row.test_acc:.1f} % | {row.seconds / base:.2f} |"
            )
        lines += [f"| {r.name} | {r.error} | | | | |" for r in self.rows if r.quality is None]
        where = f" as tasks on {self.workers} worker processes" if self.workers > 1 else ""
        lines += [
            "",
            f"The study took {self.seconds:.0f} s{where}; {self.resumed} (method, seed) pairs were loaded "
            "from their checkpoints.",
        ]
        return "\n".join(lines)

    def ranking_by_models(self) -> dict[int, float]:
        """Kendall's tau between the methods' ranking by F from the first k models a side and the one from all K."""
        rows = self.scored()
        final = [r.by_models[self.study.models] for r in rows]
        taus = {}
        for k in sorted(rows[0].by_models) if len(rows) > 1 else ():
            tau = kendalltau([r.by_models[k] for r in rows], final).statistic
            taus[k] = float(tau) if not math.isnan(tau) else 0.0
        return taus

    def as_dict(self) -> dict[str, object]:
        """The study and every row as plain numbers (F, each count's F, accuracies, time), for JSON."""

        def row(r: MethodQuality) -> dict[str, object]:
            return {
                "name": r.name,
                "F": r.quality.score if r.quality is not None else None,
                "F_by_models": {str(k): v for k, v in r.by_models.items()},
                "forget_acc": r.forget_acc,
                "retain_acc": r.retain_acc,
                "test_acc": r.test_acc,
                "seconds": r.seconds,
                "error": r.error,
            }

        return {
            "study": asdict(self.study),
            "methods": [row(r) for r in self.rows],
            "original": row(self.original),
            "retrained": row(self.retrained),
            "ranking_tau_by_models": {str(k): v for k, v in self.ranking_by_models().items()},
            "seconds": self.seconds,
            "workers": self.workers,
            "resumed": self.resumed,
        }

    def figure(self) -> Figure:
        """F against the number of models a side, one line per method, with the original and retrained rows: how
        the ranking settles as K grows."""
        fig = CourseFigure(figsize=(7, 4.2))
        ax = fig.subplots()
        references = {id(self.original): "grey", id(self.retrained): "black"}
        for r in [*self.scored(), self.original, self.retrained]:
            style = {"color": references[id(r)], "linestyle": "--"} if id(r) in references else {}
            ax.plot(list(r.by_models), list(r.by_models.values()), marker="o", label=r.name, **style)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("models a side (K)")
        ax.set_ylabel("forgetting quality F")
        ax.set_title("F with more models: the ranking settles")
        ax.legend(fontsize=7, ncol=2)
        fig.tight_layout()
        return fig

    def write(self, out: str | Path) -> list[Path]:
        """Write ``forgetting_quality.json``, ``forgetting_quality.md`` and ``forgetting_quality.png`` into ``out``."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        paths = [out / f"forgetting_quality.{ext}" for ext in ("json", "md", "png")]
        write_text(paths[0], json.dumps(self.as_dict(), indent=1, default=lambda v: None))
        write_text(paths[1], self.markdown() + "\n")
        fig = self.figure()
        atomic_write(paths[2], lambda tmp: fig.savefig(tmp, format="png", dpi=110))
        return paths


def model_counts(models: int) -> list[int]:
    """The numbers of models a side at which F is also computed: 4, 8, 16, ... below K, then K."""
    return [k for k in (2**i for i in range(2, 12)) if k < models] + [models]


def confidence(model: nn.Module, data: TensorData, device: torch.device) -> list[float]:
    """``model``'s logit-scaled confidence in each example's label (:func:`logit_scaled_confidence`)."""
    logits, labels = predict(model, make_loader(data), device)
    return logit_scaled_confidence(logits, labels).tolist()


def accuracy(model: nn.Module, data: TensorData, device: torch.device) -> float:
    """The share of ``data`` that ``model`` labels correctly."""
    return metrics.accuracy(*predict(model, make_loader(data), device))


@dataclass(frozen=True)
class StudySets:
    """The study's splits and the sets every model is measured on."""

    splits: Splits
    scored: TensorData  # the first ``Study.scored`` forget examples: F's examples
    forget: TensorData  # the whole forget set (its accuracy)

    @classmethod
    def of(cls, study: Study, base: Profile) -> StudySets:
        splits = splits_for("random", (), study.forget_fraction, base)
        return cls(splits, splits.forget.subset(slice(0, study.scored)), splits.forget)

    def outcome(self, model: nn.Module, seconds: float, device: torch.device) -> PairOutcome:
        """Confidence on the scored examples, accuracy on the forget, retain and test sets, and the time."""
        return PairOutcome(
            confidence(model, self.scored, device),
            accuracy(model, self.forget, device),
            accuracy(model, self.splits.retain, device),
            accuracy(model, self.splits.test, device),
            seconds,
        )


def method_quality(name: str, outcomes: Sequence[PairOutcome], retrained: np.ndarray, k: int) -> MethodQuality:
    """A method's row from its K outcomes, with F against ``retrained``: the reference group's (K, N) confidences
    (``QualityResult.reference``); the first error, if any, instead of F."""
    error = next((o.error for o in outcomes if o.error), "")
    quality, by_models = None, {}
    if not error:
        unlearned = np.array([o.confidence for o in outcomes])  # (K, N)
        quality = forgetting_quality(unlearned, retrained)
        by_models = {n: forgetting_quality(unlearned[:n], retrained[:n]).score for n in model_counts(k)}

    def mean(field_name: str) -> float:
        return float(np.mean([getattr(o, field_name) for o in outcomes])) if not error else math.nan

    return MethodQuality(
        name, quality, by_models, mean("forget_acc"), mean("retain_acc"), mean("test_acc"), mean("seconds"), error
    )


def study_profile(study: Study, profile: Profile) -> Profile:
    """The profile the study's models train with: ``profile``'s optimiser on the study's subset and epochs."""
    return profile.with_(train_subset=study.train_subset, num_epochs=study.num_epochs)


def original_model(study: Study, base: Profile, seed: int, device: torch.device) -> nn.Module:
    """Original ``seed`` of the study (``base``: :func:`study_profile`), trained and cached on first use."""
    return zoo.get_spec(zoo_spec(study.model, base, seed, None), device).model


def retrained_entry(study: Study, base: Profile, seed: int, device: torch.device) -> zoo.ZooEntry:
    """Retrained model ``seed`` of the study (never saw the forget set) with its training time, cached."""
    return zoo.get_spec(zoo_spec(study.model, base, seed, "random", (), study.forget_fraction), device)


def seed_setup(original: nn.Module, seed: int, sets: StudySets) -> SeedSetup:
    """What a method unlearns on seed ``seed``: the original and the splits (the retrained model is no input of
    unlearning: the slot holds the original)."""
    return SeedSetup(seed, original, original, sets.splits)


def _pair(
    spec: MethodSpec, config: object, original: nn.Module, seed: int, sets: StudySets, device: torch.device
) -> PairOutcome:
    """Unlearn ``original`` with ``spec`` (seed ``seed``) and measure it; an error is recorded, not raised, and a
    method that needs inputs beyond the contract (amnesiac's ledger, which the zoo does not record) is not run."""
    setup = seed_setup(original, seed, sets)
    reason = missing_inputs(spec, setup)
    if reason:
        return PairOutcome(error=f"not run: {reason}")
    try:
        result = unlearn_seed(spec, setup, config, device)
        return sets.outcome(result.model, result.cost.seconds, device)
    except Exception as err:  # one method's failure must not lose the others' rows
        return PairOutcome(error=error_text(err))


def _method_outcomes(
    spec: MethodSpec, profile: Profile, originals: Sequence[nn.Module], sets: StudySets, context: dict, bar: tqdm
) -> tuple[list[PairOutcome], int]:
    """``spec``'s outcome on every original (seed k unlearns original k), each loaded from its checkpoint where
    one was saved; stops at the first error (the other seeds would fail the same way). Also: how many loaded."""
    outcomes, loaded = [], 0
    method = {"method": spec.name, "fields": config_fields(spec, profile.name)}
    for seed, original in enumerate(originals):
        bar.set_postfix_str(f"{spec.name}, seed {seed}")
        saved = Checkpoint.of(
            "forgetting", method, VERSION, seed=str(seed), original=weights_digest(original), **context
        )
        state = saved.load()
        if state is not None:
            outcome, loaded = PairOutcome(**state), loaded + 1
        else:
            outcome = _pair(spec, profile.name, original, seed, sets, torch.device(context["device"]))
            saved.save(vars(outcome))
        outcomes.append(outcome)
        bar.update()
        if outcome.error:
            bar.update(len(originals) - len(outcomes))
            break
    return outcomes, loaded


def study_context(study: Study, sets: StudySets, device: torch.device) -> dict[str, str]:
    """What every pair of a study shares in its checkpoint's key: the study, the splits' data and the device type."""
    return {"study": key(study, VERSION), "data": data_digest(sets.splits), "device": device.type}


def method_task(name: str, study: Study, profile: Profile, device: str) -> tuple[list[PairOutcome], int]:
    """One method over the study's K originals, as a task on a worker (:func:`_method_outcomes`, checkpointed)."""
    base, dev = study_profile(study, profile), torch.device(device)
    sets = StudySets.of(study, base)
    originals = [original_model(study, base, seed, dev) for seed in range(study.models)]
    quiet = tqdm(total=study.models, disable=True)
    return _method_outcomes(registry.get(name), profile, originals, sets, study_context(study, sets, dev), quiet)


def run_on_cluster(
    client: object, chosen: Sequence[str], study: Study, profile: Profile, device: torch.device, bar: tqdm
) -> dict[str, tuple[list[PairOutcome], int]]:
    """The study's models, then each method over K seeds, as tasks on ``client``'s cluster; by method name."""
    base = study_profile(study, profile)
    specs = [zoo_spec(study.model, base, seed, None) for seed in range(study.models)]
    specs += [zoo_spec(study.model, base, s, "random", (), study.forget_fraction) for s in range(2 * study.models)]
    run_tasks(client, train_zoo_model, specs, device.type)
    results = run_tasks(
        client, method_task, list(chosen), study, profile, device.type, on_result=lambda i, r: bar.update(len(r[0]))
    )
    return dict(zip(chosen, results, strict=True))


def run_study(
    methods: Sequence[str] | None = None,
    profile: str | Profile = "quick",
    *,
    study: Study | None = None,
    device: str | torch.device = "auto",
    scheduler: str | None = None,
    jobs: int | None = None,
    log: Callable[[str], None] | None = None,
) -> QualityResult:
    """F of ``methods`` (default: every method that forgets random examples) under ``study`` (default: the
    profile's :data:`STUDIES` entry). Each method runs with its ``profile`` config on the study's models.
    ``scheduler``: train the models and run each method as tasks on a Dask cluster (``"local"``: ``jobs`` worker
    processes here, by default one per core on a CPU; an address: a running cluster); ``None``: in this process."""
    start, profile, device = time.perf_counter(), resolve(profile), pick_device(device)
    study = study or for_profile(STUDIES, profile)
    chosen = pick_methods(methods, "random")
    say = log or (lambda text: None)
    base = study_profile(study, profile)
    sets, k = StudySets.of(study, base), study.models
    finished: dict[str, tuple[list[PairOutcome], int]] = {}
    workers = 1
    if scheduler is not None:
        say(f"training the models and running {len(chosen)} methods as tasks on the cluster")
        bar = progress(k * len(chosen), "forgetting quality on the cluster", unit="model")
        with cluster(scheduler, jobs or (local_jobs(device) if scheduler == LOCAL else None)) as client:
            workers = len(check_workers(client))
            finished = run_on_cluster(client, list(chosen), study, profile, device, bar)
        bar.close()
    say(f"training or loading {k} original and {2 * k} retrained {study.model} models")
    bar = progress(k * (3 + len(chosen) - len(finished)), "forgetting quality", unit="model")
    originals, as_is, retrained = [], [], []
    for seed in range(k):
        originals.append(original_model(study, base, seed, device))
        as_is.append(sets.outcome(originals[-1], 0.0, device))
        bar.update()
    for seed in range(2 * k):
        entry = retrained_entry(study, base, seed, device)
        retrained.append(sets.outcome(entry.model, entry.seconds, device))
        bar.update()
    reference = np.array([o.confidence for o in retrained[:k]])  # (K, N)
    context = study_context(study, sets, device)
    rows, resumed = [], 0
    for name, spec in chosen.items():
        outcomes, loaded = finished.get(name) or _method_outcomes(spec, profile, originals, sets, context, bar)
        rows.append(method_quality(name, outcomes, reference, k))
        resumed += loaded
    bar.close()
    say(f"{resumed} (method, seed) pairs loaded from their checkpoints")
    ceiling = method_quality(f"retrained (seeds {k} to {2 * k - 1})", retrained[k:], reference, k)
    original = method_quality("original (no unlearning)", as_is, reference, k)
    return QualityResult(study, rows, ceiling, original, resumed, time.perf_counter() - start, workers, reference)

"""``unlearnlab compare``: every unlearning method against retraining from scratch, over seeds (notebook 08).

For each training seed ``s`` the zoo gives the original model ``O_s`` and the model retrained without the forget
data ``R_s``. All seeds share one training subset and one forget set (``SPLIT_SEED``), so the spread of the
``R_s`` is the noise of retraining itself. Each method unlearns ``O_s`` with ``seed=s`` and its model ``M_s`` is
scored against ``R_s``:

- forget, retain and test accuracy (SalUn's FA, RA, TA) on the forget set (the training images to forget), the
  retain set and the test set, each a fixed stratified subsample of the size ``EVAL_SIZES`` gives the profile
  (full: 5,000 retain images and the whole of the other two; quick: 2,000 of each);
- membership inference: :func:`unlearnlab.mia.simple_mia` with members = the forget set and non-members =
  held-out test images of the same classes (class forgetting: the forget classes' test images; random: all);
- JS divergence and activation distance of ``M_s``'s output distributions to ``R_s``'s, on the forget set;
- ToW = (1 - |dFA|)(1 - |dRA|)(1 - |dTA|) against ``R_s`` (Zhao et al., 2024, *What makes unlearning hard and
  what to do about it*): 1 means the three accuracies of retraining;
- AIN (class forgetting only, as defined there): relearning steps of ``M_s`` over those of ``R_s``;
- cost: seconds as a ratio of one retraining measured in the same run, and the bytes a method stores.

**Inputs beyond the contract.** A method that needs state recorded while the original model was trained names
it in its registry entry (``MethodSpec.extra_inputs``: the amnesiac method's ``"ledger"``); each seed's
:class:`SeedSetup` carries such state in ``stored`` and :func:`run_compare` passes it on. A seed whose setup
does not store it skips the method, with the reason under the table (not a failure): the zoo trains its models
without a ledger, so :func:`compare` skips the amnesiac method, and setups built from
:func:`unlearnlab.methods.ledger.train_with_ledger` runs carry one.

**The noise floor.** The retrained models are scored against each other, every pair ``R_i, R_j`` (``i != j``).
For an accuracy or the MIA score the band is the retrained mean +- the largest gap between two retrained seeds
(for accuracies at least two binomial standard errors, ``2 sqrt(p (1 - p) / n)``: the evaluation set's own
sampling noise); for a distance it is [0, the largest retrained-to-retrained distance]; for ToW it is [the
smallest retrained-to-retrained ToW, 1]. A method is *inside* on a metric when its mean lands in the band.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, astuple, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import zoo
from .config import Profile, resolve
from .data import (
    Splits,
    TensorData,
    class_splits,
    concat,
    make_loader,
    per_class_subset,
    random_splits,
    stratified_subset,
)
from .files import atomic_write, write_text
from .methods import anamnesis, finetune
from .metrics import activation_distance_probs, js_divergence_probs
from .mia import simple_mia
from .training import pick_device, predict, progress

if TYPE_CHECKING:
    from .methods.base import UnlearningResult
    from .methods.registry import MethodSpec

Scenario = Literal["class", "random"]
SCENARIOS: tuple[str, ...] = ("class", "random")
SPLIT_SEED = 0  # the training subset and the random forget set: the same for every seed


@dataclass(frozen=True)
class EvalSizes:
    """Images scored per model from each set: a fixed stratified subsample (``None``: the whole set)."""

    forget: int | None
    retain: int | None
    test: int | None


# quick: ~7,000 images per model (a CPU scores one in ~6 s instead of ~17 s); full: the whole forget and test sets
EVAL_SIZES = {"quick": EvalSizes(2_000, 2_000, 2_000), "full": EvalSizes(None, 5_000, None)}
RELEARN_PER_CLASS = 30  # real images per class in the AIN relearning set (as notebook 04)
AIN_EVAL = 200  # forget-class test images the relearning probe watches (as notebook 04)
ACCURACIES = ("forget_acc", "retain_acc", "test_acc")
METRICS = ("forget_acc", "retain_acc", "test_acc", "mia", "js", "act_dist", "tow", "ain", "seconds", "stored_bytes")
BANDED = ("forget_acc", "retain_acc", "test_acc", "mia", "js", "act_dist", "tow")  # metrics with a noise band


# ----------------------------------------------------------------------------------------------------------
# Summary scores from given numbers


def tug_of_war(accuracies: Sequence[float], reference: Sequence[float]) -> float:
    """ToW = prod_k (1 - |a_k - r_k|) over (forget, retain, test) accuracies in [0, 1] against the retrained model's."""
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


# ----------------------------------------------------------------------------------------------------------
# The noise band


@dataclass(frozen=True)
class Band:
    """Where a metric's mean must land to be as good as retraining: ``low <= mean <= high``."""

    low: float
    high: float

    def contains(self, value: float | None) -> bool | None:
        """Whether ``value`` is in the band (``None`` for a missing value)."""
        if value is None or not math.isfinite(value):
            return None
        return self.low <= value <= self.high


def accuracy_band(values: Sequence[float], n: int | None = None) -> Band:
    """Retrained values of one metric over seeds -> mean +- max(largest pairwise gap, 2 binomial SE on ``n`` items)."""
    if len(values) < 2:
        raise ValueError(f"a noise band needs at least two retrained seeds, got {len(values)}")
    v = np.asarray(values, dtype=float)
    center = float(v.mean())
    half = float(v.max() - v.min())
    if n:
        p = min(max(center, 0.0), 1.0)
        half = max(half, 2 * math.sqrt(p * (1 - p) / n))
    return Band(center - half, center + half)


def distance_band(pair_values: Sequence[float]) -> Band:
    """Distances between pairs of retrained models -> [0, the largest]."""
    if not len(pair_values):
        raise ValueError("a distance band needs at least one pair of retrained seeds")
    return Band(0.0, float(max(pair_values)))


def similarity_band(pair_values: Sequence[float]) -> Band:
    """Similarities (ToW) between pairs of retrained models -> [the smallest, 1]."""
    if not len(pair_values):
        raise ValueError("a similarity band needs at least one pair of retrained seeds")
    return Band(float(min(pair_values)), 1.0)


# ----------------------------------------------------------------------------------------------------------
# Scoring one model


@dataclass
class EvalSets:
    """The images every model is scored on (the same for every seed and method)."""

    forget: TensorData  # the training images to forget (members for the MIA)
    retain: TensorData  # a fixed subsample of the retained training images
    test: TensorData  # the test set (a fixed subsample in the quick profile)
    heldout: TensorData  # non-members of the forget set's classes (MIA)
    relearn: TensorData | None = None  # AIN: a few real images per class (None: no AIN)
    relearn_eval: TensorData | None = None  # AIN: forget-class test images

    @classmethod
    def from_splits(cls, splits: Splits, ain: bool, profile: str | Profile = "full") -> EvalSets:
        """The evaluation sets of ``splits`` at ``profile``'s :data:`EVAL_SIZES` (other profiles: full's sizes);
        ``ain`` adds the relearning probe's data (class forgetting only)."""
        sizes = EVAL_SIZES.get(resolve(profile).name, EVAL_SIZES["full"])
        forget, retain, test = (
            _subsample(data, size) for data, size in zip((splits.forget, splits.retain, splits.test), astuple(sizes))
        )
        # random forgetting's non-members are the test set itself: keep them the same images
        heldout = test if splits.test_forget is splits.test else splits.test_forget
        relearn = relearn_eval = None
        if ain:
            relearn = per_class_subset(concat(splits.forget, splits.retain), RELEARN_PER_CLASS, seed=SPLIT_SEED)
            relearn_eval = splits.test_forget.subset(slice(0, AIN_EVAL))
        return cls(forget, retain, test, heldout, relearn, relearn_eval)

    def sizes(self) -> dict[str, int]:
        """Images behind each accuracy."""
        return {"forget_acc": len(self.forget), "retain_acc": len(self.retain), "test_acc": len(self.test)}


def _subsample(data: TensorData, size: int | None) -> TensorData:
    """A fixed stratified subsample of ``size`` items (``data`` itself when ``size`` is None or not smaller)."""
    return data if size is None or len(data) <= size else stratified_subset(data, size, seed=SPLIT_SEED)


@dataclass
class Outputs:
    """A model's logits on the evaluation sets (each (N, C)), with the labels."""

    forget: tuple[torch.Tensor, torch.Tensor]
    retain: tuple[torch.Tensor, torch.Tensor]
    test: tuple[torch.Tensor, torch.Tensor]
    heldout: tuple[torch.Tensor, torch.Tensor]

    @classmethod
    def of(cls, model: nn.Module, sets: EvalSets, device: torch.device) -> Outputs:
        """Run ``model`` over every evaluation set once."""
        run = {name: predict(model, make_loader(getattr(sets, name)), device) for name in ("forget", "retain", "test")}
        heldout = run["test"] if sets.heldout is sets.test else predict(model, make_loader(sets.heldout), device)
        return cls(run["forget"], run["retain"], run["test"], heldout)

    def accuracies(self) -> tuple[float, float, float]:
        """(forget, retain, test) accuracy in [0, 1]."""
        return tuple(float((z.argmax(1) == y).float().mean()) for z, y in (self.forget, self.retain, self.test))


@dataclass
class Scores:
    """One model of one seed against the retrained model of the same seed."""

    forget_acc: float
    retain_acc: float
    test_acc: float
    mia: float  # simple_mia: 0.5 = the attacker cannot tell the forget set from held-out images
    js: float  # mean JS divergence (nats) to the retrained model's outputs on the forget set
    act_dist: float  # mean L2 distance between output probabilities, same images
    tow: float  # ToW against the retrained model
    ain: float | None = None  # anamnesis index (class forgetting with AIN on), else None
    ain_reached: bool | None = None  # False: the relearning probe hit its step limit (AIN is a lower bound)
    seconds: float = 0.0  # wall-clock seconds of unlearning
    stored_bytes: int = 0  # bytes stored for unlearning


def _losses(outputs: tuple[torch.Tensor, torch.Tensor]) -> np.ndarray:
    logits, y = outputs
    return F.cross_entropy(logits.double(), y, reduction="none").numpy()


def score(model_out: Outputs, reference_out: Outputs) -> Scores:
    """Accuracies, MIA, distances and ToW of a model's outputs against the retrained model's (same sets)."""
    accs = model_out.accuracies()
    p, q = model_out.forget[0].softmax(1), reference_out.forget[0].softmax(1)
    return Scores(
        *accs,
        mia=simple_mia(_losses(model_out.forget), _losses(model_out.heldout), seed=SPLIT_SEED),
        js=float(js_divergence_probs(p, q).mean()),
        act_dist=float(activation_distance_probs(p, q).mean()),
        tow=tug_of_war(accs, reference_out.accuracies()),
    )


# ----------------------------------------------------------------------------------------------------------
# One run: setups per seed, every method, the retrained band


@dataclass
class SeedSetup:
    """What one seed needs: the original model, the retrained one and the splits (shared by all seeds)."""

    seed: int
    original: nn.Module
    retrained: nn.Module
    splits: Splits
    stored: Mapping[str, object] = field(default_factory=dict)  # recorded while training the original ("ledger")


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


def _mean_std(values: list[float]) -> tuple[float | None, float | None]:
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
        row.mean[metric], row.std[metric] = _mean_std(values)
    if row.mean["seconds"] is not None and retrain_seconds > 0:
        row.time_ratio = row.mean["seconds"] / retrain_seconds
    return row


def noise_bands(retrained_out: Sequence[Outputs], sizes: Mapping[str, int]) -> dict[str, Band]:
    """The band of every banded metric from the retrained models' outputs (one per seed; none for one seed).

    ``sizes``: images behind each accuracy (for its binomial floor).
    """
    if len(retrained_out) < 2:
        return {}
    accs = np.asarray([o.accuracies() for o in retrained_out])  # (seeds, 3)
    bands = {name: accuracy_band(accs[:, k], sizes.get(name)) for k, name in enumerate(ACCURACIES)}
    bands["mia"] = accuracy_band([score(o, o).mia for o in retrained_out])
    pair_scores = retrained_pairs(retrained_out)
    bands["js"] = distance_band([s.js for s in pair_scores])
    bands["act_dist"] = distance_band([s.act_dist for s in pair_scores])
    bands["tow"] = similarity_band([s.tow for s in pair_scores])
    return bands


def retrained_pairs(retrained_out: Sequence[Outputs]) -> list[Scores]:
    """Every retrained model scored against every other (ordered pairs: JS is symmetric, the MIA part is not)."""
    return [score(retrained_out[i], retrained_out[j]) for i, j in itertools.permutations(range(len(retrained_out)), 2)]


@dataclass
class Reference:
    """The retrained models of several seeds on one set of evaluation images, and the band they span."""

    sets: EvalSets
    outputs: list[Outputs]  # one per retrained seed; the first is what a model is scored against
    bands: dict[str, Band]

    @classmethod
    def of(
        cls,
        retrained: Sequence[nn.Module],
        splits: Splits,
        profile: str | Profile = "full",
        device: str | torch.device = "auto",
    ) -> Reference:
        """Evaluate ``retrained`` (one model per seed) on the evaluation sets of ``splits`` at ``profile``'s sizes."""
        device = pick_device(device)
        sets = EvalSets.from_splits(splits, ain=False, profile=profile)
        outputs = [Outputs.of(m, sets, device) for m in retrained]
        return cls(sets, outputs, noise_bands(outputs, sets.sizes()))

    def scores(self, model: nn.Module, device: str | torch.device = "auto") -> Scores:
        """``model`` scored against the first retrained model."""
        return score(Outputs.of(model, self.sets, pick_device(device)), self.outputs[0])


def _error_text(err: BaseException) -> str:
    where = traceback.extract_tb(err.__traceback__)[-1] if err.__traceback__ else None
    place = f" ({Path(where.filename).name}:{where.lineno})" if where else ""
    return f"{type(err).__name__}: {err}{place}"


class _SeedScorer:
    """Scores models of one seed against its retrained model (with the AIN probe when ``ain_profile`` is set)."""

    def __init__(self, setup: SeedSetup, sets: EvalSets, ain_profile: str | None, device: torch.device) -> None:
        self.sets, self.seed, self.device = sets, setup.seed, device
        self.reference = Outputs.of(setup.retrained, sets, device)
        self.ain_profile, self.gold, self.target = ain_profile, None, 0.0
        if ain_profile is not None:
            logits, y = predict(setup.original, make_loader(sets.relearn_eval), device)
            self.target = anamnesis.CONFIGS[ain_profile].alpha * float((logits.argmax(1) == y).float().mean())
            self.gold = self._relearn(setup.retrained)

    def _relearn(self, model: nn.Module) -> anamnesis.RelearnResult:
        s = self.sets
        return anamnesis.relearn(
            model, s.relearn, s.relearn_eval, self.target, self.ain_profile, device=self.device, seed=self.seed
        )

    def scored(self, model: nn.Module, seconds: float, stored_bytes: int, outputs: Outputs | None = None) -> Scores:
        """``model``'s scores with its cost; AIN when the retrained model needed at least one relearning step.

        ``outputs``: the model's outputs when already computed (the retrained model's are the reference).
        """
        s = score(outputs or Outputs.of(model, self.sets, self.device), self.reference)
        s.seconds, s.stored_bytes = seconds, stored_bytes
        if self.gold is not None and self.gold.steps > 0:
            probe = self._relearn(model)
            s.ain, s.ain_reached = anamnesis.anamnesis_index(probe.steps, self.gold.steps), probe.reached
        return s


def missing_inputs(spec: MethodSpec, setup: SeedSetup) -> str:
    """Why ``spec`` cannot run on ``setup`` ("" when it can): an input it needs that the setup did not store."""
    missing = [name for name in spec.extra_inputs if name not in setup.stored]
    if not missing:
        return ""
    return (
        f"it needs the {' and the '.join(missing)} recorded while the original model was trained, and this "
        "seed's setup stores none (the zoo trains its models without one)"
    )


def unlearn_seed(spec: MethodSpec, setup: SeedSetup, config: object, device: torch.device) -> UnlearningResult:
    """``spec``'s method on ``setup``'s original model, with ``seed=setup.seed`` and the inputs it needs beyond the
    contract taken from ``setup.stored`` (check :func:`missing_inputs` first)."""
    extras = {name: setup.stored[name] for name in spec.extra_inputs}
    return spec.module.unlearn(setup.original, setup.splits, config, device=device, seed=setup.seed, **extras)


def run_compare(
    setups: Sequence[SeedSetup],
    methods: Mapping[str, MethodSpec],
    *,
    scenario: str,
    forget: str,
    profile: str | Profile = "quick",
    configs: Mapping[str, object] | None = None,
    retrain_seconds: float,
    retrain_seconds_source: str = "measured in this run",
    ain: bool = True,
    device: str | torch.device = "auto",
) -> CompareResult:
    """Run every method on every seed's original model and score it against that seed's retrained model.

    ``configs`` overrides a method's config (default: the profile's name); ``ain`` runs the relearning probe
    (class forgetting only). A method that raises on a seed is recorded in its row (``errors``) and the run
    goes on; one whose inputs beyond the contract a seed's setup does not store (:func:`missing_inputs`) is
    skipped there, with the reason (``skipped``).
    """
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}: choose one of {', '.join(SCENARIOS)}")
    if not setups:
        raise ValueError("no seeds to run: give at least one SeedSetup")
    if retrain_seconds <= 0:
        raise ValueError(f"retrain_seconds must be positive (the time ratio divides by it), got {retrain_seconds}")
    start = time.perf_counter()
    profile = resolve(profile)
    device = pick_device(device)
    ain = ain and scenario == "class"
    configs = configs or {}
    sets = {id(s.splits): EvalSets.from_splits(s.splits, ain, profile) for s in setups}
    bar = progress(len(setups) * (len(methods) + 2), "compare", unit="model")
    scores: dict[str, dict[int, Scores]] = {name: {} for name in ("original", "retrained", *methods)}
    errors: dict[str, dict[int, str]] = {name: {} for name in scores}
    skipped: dict[str, dict[int, str]] = {name: {} for name in scores}
    retrained_out = []
    for setup in setups:
        scorer = _SeedScorer(setup, sets[id(setup.splits)], profile.name if ain else None, device)
        retrained_out.append(scorer.reference)
        scored = scorer.scored
        scores["retrained"][setup.seed] = scored(setup.retrained, retrain_seconds, 0, outputs=scorer.reference)
        bar.update()
        scores["original"][setup.seed] = scored(setup.original, 0.0, 0)
        bar.update()
        for name, spec in methods.items():
            bar.set_postfix_str(f"{name}, seed {setup.seed}")
            reason = missing_inputs(spec, setup)
            if reason:
                skipped[name][setup.seed] = reason
            else:
                try:
                    result = unlearn_seed(spec, setup, configs.get(name, profile.name), device)
                    scores[name][setup.seed] = scored(result.model, result.cost.seconds, result.cost.stored_bytes)
                except Exception as err:  # one method's failure must not lose the other rows
                    errors[name][setup.seed] = _error_text(err)
            bar.update()
    bar.close()
    bands = noise_bands(retrained_out, sets[id(setups[0].splits)].sizes())
    families = {"original": "none", "retrained": "gold standard"} | {n: s.family for n, s in methods.items()}
    rows = [summarise(n, families[n], scores[n], errors[n], skipped[n], retrain_seconds) for n in scores]
    rows[0].time_ratio = None  # the original model did nothing
    for row in rows:
        row.inside = {m: bands[m].contains(row.mean[m]) if m in bands else None for m in BANDED}
    retrained = rows[1]  # its distances to itself are 0: show the band's retrained-to-retrained values instead
    if len(setups) > 1:
        pair_js = retrained_pairs(retrained_out)
        for metric in ("js", "act_dist", "tow"):
            retrained.mean[metric], retrained.std[metric] = _mean_std([getattr(s, metric) for s in pair_js])
        retrained.inside = {m: bands[m].contains(retrained.mean[m]) for m in BANDED}
    return CompareResult(
        scenario=scenario,
        forget=forget,
        profile=profile.name,
        seeds=[s.seed for s in setups],
        retrain_seconds=retrain_seconds,
        retrain_seconds_source=retrain_seconds_source,
        bands=bands,
        rows=rows,
        seconds=time.perf_counter() - start,
        device=str(device),
    )


# ----------------------------------------------------------------------------------------------------------
# Tables and files


def _pm(mean: float | None, std: float | None, scale: float = 1.0, digits: int = 2) -> str:
    if mean is None:
        return "-"
    return f"{scale * mean:.{digits}f} ± {scale * (std or 0.0):.{digits}f}"


COLUMNS: tuple[tuple[str, str, float, int], ...] = (  # metric, header, scale, decimals
    ("forget_acc", "forget %", 100, 2),
    ("retain_acc", "retain %", 100, 2),
    ("test_acc", "test %", 100, 2),
    ("mia", "MIA %", 100, 1),
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
        f"{result.seconds:.0f} s.",
    ]
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
    from .plots import plot_pareto

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


# ----------------------------------------------------------------------------------------------------------
# The zoo-backed setups the CLI and notebook 08 use


def splits_for(scenario: str, forget_classes: Sequence[int], forget_fraction: float, profile: Profile) -> Splits:
    """The splits of a scenario on the profile's training subset (``SPLIT_SEED``: the same for every seed)."""
    if scenario == "class":
        return class_splits(forget_classes, train_subset=profile.train_subset, seed=SPLIT_SEED)
    if scenario == "random":
        return random_splits(forget_fraction, train_subset=profile.train_subset, seed=SPLIT_SEED)
    raise ValueError(f"unknown scenario {scenario!r}: choose one of {', '.join(SCENARIOS)}")


def zoo_spec(
    model: str,
    profile: Profile,
    seed: int,
    scenario: str | None,
    forget_classes: Sequence[int] = (),
    forget_fraction: float = 0.0,
) -> zoo.TrainSpec:
    """The zoo spec of the original (``scenario=None``) or the retrained model of one seed.

    Every seed trains on the subset and forget set of ``SPLIT_SEED`` (seed 0's specs are the course's usual
    cached models).
    """
    spec = zoo.TrainSpec.from_profile(model, profile, seed, tuple(forget_classes) if scenario == "class" else ())
    split_seed = None if seed == SPLIT_SEED else SPLIT_SEED
    return replace(spec, exclude_random=forget_fraction if scenario == "random" else 0.0, split_seed=split_seed)


def zoo_setups(
    scenario: str,
    seeds: Sequence[int],
    profile: Profile,
    forget_classes: Sequence[int] = (6,),
    forget_fraction: float = 0.1,
    model: str = "cnn_bn",
    device: str | torch.device = "auto",
) -> list[SeedSetup]:
    """Original and retrained zoo models per seed (trained and cached on first use) and the shared splits."""
    splits = splits_for(scenario, forget_classes, forget_fraction, profile)
    return [
        SeedSetup(
            seed,
            zoo.get_spec(zoo_spec(model, profile, seed, None), device).model,
            zoo.get_spec(zoo_spec(model, profile, seed, scenario, forget_classes, forget_fraction), device).model,
            splits,
        )
        for seed in seeds
    ]


def setup_specs(
    scenario: str,
    seeds: int | Sequence[int],
    profile: str | Profile,
    forget_classes: Sequence[int] = (6,),
    forget_fraction: float = 0.1,
    model: str = "cnn_bn",
) -> list[zoo.TrainSpec]:
    """The zoo specs :func:`zoo_setups` loads (originals, then retrained models), e.g. to train them ahead."""
    profile = resolve(profile)
    seed_list = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    originals = [zoo_spec(model, profile, s, None) for s in seed_list]
    return originals + [zoo_spec(model, profile, s, scenario, forget_classes, forget_fraction) for s in seed_list]


def measure_retraining(spec: zoo.TrainSpec, device: str | torch.device = "auto") -> float:
    """Seconds to retrain ``spec`` from scratch now (the model is thrown away: the zoo's copy is the reference)."""
    return zoo.train_from_scratch(spec, device)[1]


CAPSTONE_SEEDS = {"quick": 2, "full": 5}  # notebook 08's seeds per profile (two or more give a band)


def finetune_baseline(profile: str | Profile) -> finetune.Config:
    """Notebook 08's fine-tuning baseline: the profile's fine-tuning epochs (1 quick, 3 full) on the retain set."""
    return replace(finetune.CONFIGS[resolve(profile).name], num_epochs=resolve(profile).finetune_epochs)


@dataclass
class Yardstick:
    """Notebook 08, Q3: what a tuned method must beat on class 6, seed 0."""

    reference: Reference  # the retrained models of every capstone seed and their band
    baseline: Scores  # fine-tuning (``finetune_baseline``) on seed 0, scored against the seed-0 retrained model
    zoo_models: tuple[nn.Module, ...]  # the originals and retrained models: not an answer


@functools.cache
def capstone_yardstick(profile: Profile, device: str = "cpu") -> Yardstick:
    """Load the class-6 zoo models of notebook 08's seeds, evaluate them and run the fine-tuning baseline.

    Computed once per process (the notebook prints it, its check and the grader's process each reuse their own).
    """
    profile = resolve(profile)
    setups = zoo_setups("class", range(CAPSTONE_SEEDS[profile.name]), profile, (6,), device=device)
    reference = Reference.of([s.retrained for s in setups], setups[0].splits, profile, device)
    base = finetune.unlearn(setups[0].original, setups[0].splits, finetune_baseline(profile), device=device, seed=0)
    models = tuple(m for s in setups for m in (s.original, s.retrained))
    return Yardstick(reference, reference.scores(base.model, device), models)


def capstone_specs(profile: str | Profile) -> list[zoo.TrainSpec]:
    """Every zoo model notebook 08 loads: per seed the original and the retrained models of both scenarios."""
    seeds = CAPSTONE_SEEDS[resolve(profile).name]
    return setup_specs("class", seeds, profile) + setup_specs("random", seeds, profile)[seeds:]


def pick_methods(names: Sequence[str] | None, scenario: str) -> dict[str, MethodSpec]:
    """Registry entries by name (``None``: every method that supports ``scenario``); unknown names are an error.

    A named method that does not support the scenario is kept: the run records its failure in its row.
    """
    from .methods import registry

    if not names:
        return {n: s for n, s in registry.METHODS.items() if scenario in s.scenarios}
    return {name: registry.get(name) for name in names}


def compare(
    scenario: str = "class",
    *,
    forget_classes: Sequence[int] = (6,),
    forget_fraction: float = 0.1,
    methods: Sequence[str] | None = None,
    seeds: int | Sequence[int] = 2,
    profile: str | Profile = "quick",
    configs: Mapping[str, object] | None = None,
    retrain_seconds: float | None = None,
    retrain_seconds_source: str = "given",
    ain: bool = True,
    model: str = "cnn_bn",
    device: str | torch.device = "auto",
    log: Callable[[str], None] | None = None,
) -> CompareResult:
    """Compare ``methods`` (default: all for the scenario) with retraining over ``seeds`` (a count or the seeds).

    ``retrain_seconds=None`` retrains seed 0's reference once in this run and times it, so every time ratio is
    measured under the same load; a number given instead is used as is (``retrain_seconds_source`` says where
    it came from).
    """
    profile = resolve(profile)
    seed_list = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    if not seed_list:
        raise ValueError("seeds must name at least one seed")
    chosen = pick_methods(methods, scenario)
    forget = f"class {', '.join(map(str, forget_classes))}" if scenario == "class" else f"random {forget_fraction:.0%}"
    say = log or (lambda text: None)
    say(f"loading the zoo models of seeds {seed_list} (trained and cached on first use)")
    setups = zoo_setups(scenario, seed_list, profile, forget_classes, forget_fraction, model, device)
    source = retrain_seconds_source
    if retrain_seconds is None:
        say("retraining the reference once to time it")
        spec = zoo_spec(model, profile, seed_list[0], scenario, forget_classes, forget_fraction)
        retrain_seconds, source = measure_retraining(spec, device), "measured in this run"
    return run_compare(
        setups,
        chosen,
        scenario=scenario,
        forget=forget,
        profile=profile,
        configs=configs,
        retrain_seconds=retrain_seconds,
        retrain_seconds_source=source,
        ain=ain,
        device=device,
    )


# ----------------------------------------------------------------------------------------------------------
# Reading the table


def _fmt(metric: str, value: float) -> str:
    return f"{100 * value:.2f} %" if metric in ACCURACIES or metric == "mia" else f"{value:.4f}"


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
        others = [m for m in ("mia", "js", "act_dist") if row.inside[m] is not None]
        out = [m for m in others if not row.inside[m]]
        if accs_in and out:
            what = ", ".join(f"{m} {_fmt(m, row.mean[m])}" for m in out)
            lines.append(f"**{row.method}**: the accuracies look like retraining, but not {what}.")
        elif not accs_in and others and not out:
            missed = [m for m in ACCURACIES if not row.inside[m]]
            what = ", ".join(f"{m} {_fmt(m, row.mean[m])}" for m in missed)
            lines.append(f"**{row.method}**: MIA and distances look like retraining, but not {what}.")
    return lines

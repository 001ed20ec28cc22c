"""``unlearnlab compare``: every unlearning method against retraining from scratch, over seeds (notebook 08).

For each training seed ``s`` the zoo gives the original model ``O_s`` and the model retrained without the forget
data ``R_s``. All seeds share one training subset and one forget set (``SPLIT_SEED``), so the spread of the
``R_s`` is the noise of retraining itself. Each method unlearns ``O_s`` with ``seed=s`` and its model ``M_s`` is
scored against ``R_s`` (:mod:`.scoring`); the cost is its seconds as a ratio of one retraining measured in the
same run, and the bytes it stores.

**Inputs beyond the contract.** A method that needs state recorded while the original model was trained names
it in its registry entry (``MethodSpec.extra_inputs``: the amnesiac method's ``"ledger"``); each seed's
:class:`SeedSetup` carries such state in ``stored`` and :func:`run_compare` passes it on. A seed whose setup
does not store it skips the method, with the reason under the table (not a failure): the zoo trains its models
without a ledger, so :func:`compare` skips the amnesiac method, and setups built from
:func:`unlearnlab.methods.ledger.train_with_ledger` runs carry one.

**Resuming.** Each finished (method, seed) pair (its scores, its error or why it was skipped) is saved as a
:class:`~unlearnlab.checkpoints.Checkpoint` named by the method and its config, the setup (profile, scenario,
seed, the splits' data, the original and retrained models' weights) and :data:`VERSION`. A run that was
interrupted and is started again loads the finished pairs and runs only the rest; the table is the one an
uninterrupted run gives (the methods are seeded per call, so a pair's result does not depend on the ones before
it). The result counts the pairs it resumed (``CompareResult.resumed``); ``UNLEARNLAB_RESUME=0`` runs them all.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, is_dataclass, replace
from pathlib import Path

import torch
from torch import nn

from .. import zoo
from ..cache import key, tensors_digest, weights_digest
from ..checkpoints import Checkpoint
from ..config import Profile, for_profile
from ..data import Splits, class_splits, random_splits
from ..methods import anamnesis, registry
from ..methods.base import UnlearningResult
from ..methods.registry import MethodSpec
from ..training import progress
from .scoring import BANDED, SPLIT_SEED, EvalSets, Scores, SeedScorer, noise_bands, retrained_pairs
from .table import CompareResult, mean_std, summarise

SCENARIOS: tuple[str, ...] = ("class", "random")
VERSION = 1  # the (method, seed) checkpoints' code version: raise it when scoring changes what a pair's result means


@dataclass
class SeedSetup:
    """What one seed needs: the original model, the retrained one and the splits (shared by all seeds)."""

    seed: int
    original: nn.Module
    retrained: nn.Module
    splits: Splits
    stored: Mapping[str, object] = field(default_factory=dict)  # recorded while training the original ("ledger")


def error_text(err: BaseException) -> str:
    """An error as one line: its type, its message and where it was raised."""
    where = traceback.extract_tb(err.__traceback__)[-1] if err.__traceback__ else None
    place = f" ({Path(where.filename).name}:{where.lineno})" if where else ""
    return f"{type(err).__name__}: {err}{place}"


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


def data_digest(splits: Splits) -> str:
    """A hash of the splits' images and labels (forget, retain, test and held-out sets), for a checkpoint's key."""
    sets = (splits.forget, splits.retain, splits.test, splits.test_forget)
    return tensors_digest(*(tensor for data in sets for tensor in (data.X, data.y)))


def config_fields(spec: MethodSpec, config: object) -> object:
    """The config a pair runs with, as a checkpoint key takes it: a profile's name resolved to the method's
    config where the method has one (so a changed ``CONFIGS`` entry names another checkpoint)."""
    configs = getattr(spec.module, "CONFIGS", None)
    if isinstance(config, str) and configs is not None and config in configs:
        config = configs[config]
    return asdict(config) if is_dataclass(config) else {"config": repr(config)}


def probe_config(ain: bool, scenario: str, profile: Profile) -> anamnesis.RelearnConfig | None:
    """The relearning probe's config when ``ain`` asks for it and the scenario has one (class forgetting)."""
    return for_profile(anamnesis.CONFIGS, profile) if ain and scenario == "class" else None


def pair_context(
    profile: Profile, scenario: str, ain_config: anamnesis.RelearnConfig | None, splits: Splits
) -> dict[str, str]:
    """What every pair of a run shares in its checkpoint's key: the profile, scenario, probe and the splits' data."""
    return {
        "profile": key(profile, VERSION),
        "scenario": scenario,
        "ain": key(ain_config, VERSION) if ain_config else "none",
        "data": data_digest(splits),
    }


def pair_checkpoint(spec: MethodSpec, config: object, setup: SeedSetup, context: Mapping[str, str]) -> Checkpoint:
    """The checkpoint of one (method, seed) pair: the method and its config, this seed's models and ``context``
    (profile, scenario, the splits' digest, the relearning probe's config)."""
    models = {"original": weights_digest(setup.original), "retrained": weights_digest(setup.retrained)}
    method = {"method": spec.name, "fields": config_fields(spec, config)}
    return Checkpoint.of("compare", method, VERSION, seed=str(setup.seed), **models, **context)


@dataclass
class PairResult:
    """One finished (method, seed) pair: its scores, or the error it raised, or why it was skipped."""

    scores: Scores | None = None
    error: str = ""
    skipped: str = ""
    resumed: bool = False  # loaded from its checkpoint, not run in this run (not saved)

    def state(self) -> dict[str, object]:
        """What its checkpoint saves (plain numbers and text)."""
        return {"scores": asdict(self.scores) if self.scores else None, "error": self.error, "skipped": self.skipped}

    @classmethod
    def from_state(cls, state: Mapping[str, object], resumed: bool = False) -> PairResult:
        """The pair a checkpoint saved (``resumed``: loaded from it now)."""
        scores = state["scores"]
        return cls(Scores(**scores) if scores else None, str(state["error"]), str(state["skipped"]), resumed)


def run_pair(
    spec: MethodSpec, setup: SeedSetup, config: object, scorer: SeedScorer, device: torch.device
) -> PairResult:
    """Run ``spec`` on ``setup`` and score it; a failure is recorded, not raised (one method must not lose the
    other rows), and a setup without the inputs the method needs skips it."""
    reason = missing_inputs(spec, setup)
    if reason:
        return PairResult(skipped=reason)
    try:
        result = unlearn_seed(spec, setup, config, device)
        return PairResult(scorer.scored(result.model, result.cost.seconds, result.cost.stored_bytes))
    except Exception as err:  # one method's failure must not lose the other rows
        return PairResult(error=error_text(err))


def resume_or_run(
    checkpoint: Checkpoint, spec: MethodSpec, setup: SeedSetup, config: object, scorer: SeedScorer, device: torch.device
) -> PairResult:
    """The pair ``checkpoint`` saved, or :func:`run_pair` run now and saved there."""
    saved = checkpoint.load()
    if saved is not None:
        return PairResult.from_state(saved, resumed=True)
    pair = run_pair(spec, setup, config, scorer, device)
    checkpoint.save(pair.state())
    return pair


def run_compare(
    setups: Sequence[SeedSetup],
    methods: Mapping[str, MethodSpec],
    *,
    scenario: str,
    forget: str,
    profile: Profile,
    configs: Mapping[str, object] | None = None,
    retrain_seconds: float,
    retrain_seconds_source: str = "measured in this run",
    ain: bool = True,
    device: torch.device,
    finished: Mapping[tuple[str, int], PairResult] | None = None,
) -> CompareResult:
    """Run every method on every seed's original model and score it against that seed's retrained model.

    ``configs`` overrides a method's config (default: the profile's name); ``ain`` runs the relearning probe
    (class forgetting only); ``finished`` holds pairs already run elsewhere, by (method, seed) (the tasks of
    :func:`unlearnlab.compare.cluster.run_on_cluster`), used as they are. A method that raises on a seed is
    recorded in its row (``errors``) and the run goes on; one whose inputs beyond the contract a seed's setup does
    not store (:func:`missing_inputs`) is skipped there, with the reason (``skipped``). Each finished pair is
    checkpointed (:func:`pair_checkpoint`) and loaded instead of run again when the same run starts again.
    """
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}: choose one of {', '.join(SCENARIOS)}")
    if not setups:
        raise ValueError("no seeds to run: give at least one SeedSetup")
    if retrain_seconds <= 0:
        raise ValueError(f"retrain_seconds must be positive (the time ratio divides by it), got {retrain_seconds}")
    start = time.perf_counter()
    ain_config = probe_config(ain, scenario, profile)
    configs, finished = configs or {}, finished or {}
    sets = {id(s.splits): EvalSets.from_splits(s.splits, ain_config is not None, profile) for s in setups}
    bar = progress(len(setups) * (len(methods) + 2), "compare", unit="model")
    scores: dict[str, dict[int, Scores]] = {name: {} for name in ("original", "retrained", *methods)}
    errors: dict[str, dict[int, str]] = {name: {} for name in scores}
    skipped: dict[str, dict[int, str]] = {name: {} for name in scores}
    retrained_out, resumed = [], 0
    contexts = {id(s.splits): pair_context(profile, scenario, ain_config, s.splits) for s in setups}
    for setup in setups:
        scorer = SeedScorer(setup.original, setup.retrained, setup.seed, sets[id(setup.splits)], ain_config, device)
        retrained_out.append(scorer.reference)
        scored = scorer.scored
        scores["retrained"][setup.seed] = scored(setup.retrained, retrain_seconds, 0, outputs=scorer.reference)
        bar.update()
        scores["original"][setup.seed] = scored(setup.original, 0.0, 0)
        bar.update()
        for name, spec in methods.items():
            bar.set_postfix_str(f"{name}, seed {setup.seed}; {resumed} resumed")
            config = configs.get(name, profile.name)
            checkpoint = pair_checkpoint(spec, config, setup, contexts[id(setup.splits)])
            pair = finished.get((name, setup.seed)) or resume_or_run(checkpoint, spec, setup, config, scorer, device)
            resumed += pair.resumed
            if pair.scores is not None:
                scores[name][setup.seed] = pair.scores
            elif pair.error:
                errors[name][setup.seed] = pair.error
            else:
                skipped[name][setup.seed] = pair.skipped
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
            retrained.mean[metric], retrained.std[metric] = mean_std([getattr(s, metric) for s in pair_js])
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
        resumed=resumed,
        pairs=len(setups) * len(methods),
    )


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
    device: torch.device | str = "cpu",
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
    profile: Profile,
    forget_classes: Sequence[int] = (6,),
    forget_fraction: float = 0.1,
    model: str = "cnn_bn",
) -> list[zoo.TrainSpec]:
    """The zoo specs :func:`zoo_setups` loads (originals, then retrained models), e.g. to train them ahead."""
    seed_list = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    originals = [zoo_spec(model, profile, s, None) for s in seed_list]
    return originals + [zoo_spec(model, profile, s, scenario, forget_classes, forget_fraction) for s in seed_list]


def measure_retraining(spec: zoo.TrainSpec, device: torch.device) -> float:
    """Seconds to retrain ``spec`` from scratch now (the model is thrown away: the zoo's copy is the reference)."""
    return zoo.train_from_scratch(spec, device)[1]


def pick_methods(names: Sequence[str] | None, scenario: str) -> dict[str, MethodSpec]:
    """Registry entries by name (``None``: every method that supports ``scenario``); unknown names are an error.

    A named method that does not support the scenario is kept: the run records its failure in its row.
    """
    if not names:
        return {n: s for n, s in registry.METHODS.items() if scenario in s.scenarios}
    return {name: registry.get(name) for name in names}

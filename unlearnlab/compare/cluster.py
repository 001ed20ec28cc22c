"""The zoo-backed comparison, :func:`compare`: its (method, seed) pairs and the zoo's models run in this process or
as tasks on a Dask cluster (:mod:`unlearnlab.engine`).

On a cluster, each model the zoo must train is one task, then each (method, seed) pair is one: a worker rebuilds
the seed's setup from the zoo (:class:`Plan`, cached per worker process), runs the pair and saves its checkpoint
(:func:`unlearnlab.compare.run.pair_checkpoint`), exactly as this process would. The finished pairs come back
here, and :func:`unlearnlab.compare.run.run_compare` builds the table from them, so the table does not depend on
where a pair ran, and a run interrupted on the cluster resumes in this process and the other way round.

The zoo's models and the checkpoints sit in the model cache; on a cluster of several hosts it must be a folder they
share (``UNLEARNLAB_CACHE``), whose file locks hold across the hosts (:func:`unlearnlab.cache.load_or_build`).
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch

from .. import zoo
from ..config import Profile, resolve
from ..engine import LOCAL, check_workers, cluster, run_tasks
from ..methods import registry
from ..training import pick_device, progress
from .run import (
    EvalSets,
    PairResult,
    SeedScorer,
    SeedSetup,
    measure_retraining,
    pair_checkpoint,
    pair_context,
    pick_methods,
    probe_config,
    resume_or_run,
    run_compare,
    setup_specs,
    zoo_setups,
    zoo_spec,
)
from .table import CompareResult


@dataclass(frozen=True)
class Plan:
    """What a worker needs to rebuild a scenario's seeds as :func:`compare` does: :func:`zoo_setups`' arguments
    and the relearning probe."""

    scenario: str
    profile: Profile
    forget_classes: tuple[int, ...]
    forget_fraction: float
    model: str
    ain: bool
    device: str


@dataclass(frozen=True)
class PairTask:
    """One (method, seed) pair of a :class:`Plan`, with the method's config (a dataclass or a profile's name)."""

    plan: Plan
    method: str
    seed: int
    config: object


@functools.lru_cache(maxsize=8)
def seed_on_worker(plan: Plan, seed: int) -> tuple[SeedSetup, SeedScorer, dict[str, str]]:
    """A seed's setup, scorer and checkpoint context, built once per worker process (its pairs share them)."""
    profile = plan.profile
    setup = zoo_setups(
        plan.scenario, [seed], profile, plan.forget_classes, plan.forget_fraction, plan.model, plan.device
    )[0]
    ain_config = probe_config(plan.ain, plan.scenario, profile)
    sets = EvalSets.from_splits(setup.splits, ain_config is not None, profile)
    scorer = SeedScorer(setup.original, setup.retrained, seed, sets, ain_config, torch.device(plan.device))
    return setup, scorer, pair_context(profile, plan.scenario, ain_config, setup.splits)


def run_pair_task(task: PairTask) -> PairResult:
    """One pair on a worker: loaded from its checkpoint, or run, scored and saved there."""
    setup, scorer, context = seed_on_worker(task.plan, task.seed)
    spec = registry.get(task.method)
    checkpoint = pair_checkpoint(spec, task.config, setup, context)
    return resume_or_run(checkpoint, spec, setup, task.config, scorer, torch.device(task.plan.device))


def train_zoo_model(spec: zoo.TrainSpec, device: str) -> str:
    """One zoo model trained and cached on a worker (or found in the cache); its name."""
    zoo.get_spec(spec, device)
    return spec.model


def run_on_cluster(
    client: object,
    plan: Plan,
    methods: Sequence[str],
    seeds: Sequence[int],
    configs: Mapping[str, object],
    say: Callable[[str], None],
) -> dict[tuple[str, int], PairResult]:
    """Train the plan's zoo models, then run every (method, seed) pair, each as a task on ``client``'s cluster;
    the finished pairs by (method, seed)."""
    specs = setup_specs(plan.scenario, seeds, plan.profile, plan.forget_classes, plan.forget_fraction, plan.model)
    say(f"training or loading {len(specs)} zoo models as tasks on the cluster")
    run_tasks(client, train_zoo_model, specs, plan.device)
    tasks = [PairTask(plan, m, s, configs.get(m, plan.profile.name)) for s in seeds for m in methods]
    say(f"running {len(tasks)} (method, seed) pairs as tasks on the cluster")
    bar = progress(len(tasks), "compare on the cluster", unit="pair")
    results = run_tasks(client, run_pair_task, tasks, on_result=lambda index, pair: bar.update())
    bar.close()
    return {(t.method, t.seed): pair for t, pair in zip(tasks, results, strict=True)}


def local_jobs(device: torch.device) -> int:
    """Worker processes for a local cluster: one single-threaded worker per core on a CPU; one on a GPU (a second
    process there would share the one device)."""
    return 1 if device.type == "cuda" else os.cpu_count() or 1


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
    scheduler: str | None = None,
    jobs: int | None = None,
    log: Callable[[str], None] | None = None,
) -> CompareResult:
    """Compare ``methods`` (default: all for the scenario) with retraining over ``seeds`` (a count or the seeds).

    ``retrain_seconds=None`` retrains seed 0's reference once in this run and times it (before any other work, on a
    machine no task shares yet), so every time ratio is measured under the same load; a number given instead is
    used as is (``retrain_seconds_source`` says where it came from). ``scheduler``: run the zoo's models and the
    pairs as tasks on a Dask cluster (``"local"``: ``jobs`` worker processes here, by default
    :func:`local_jobs`; an address: a running cluster); ``None`` runs them here, one after another.
    """
    profile, device = resolve(profile), pick_device(device)
    seed_list = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    if not seed_list:
        raise ValueError("seeds must name at least one seed")
    chosen = pick_methods(methods, scenario)
    forget = f"class {', '.join(map(str, forget_classes))}" if scenario == "class" else f"random {forget_fraction:.0%}"
    say = log or (lambda text: None)
    source = retrain_seconds_source
    if retrain_seconds is None:
        say("retraining the reference once to time it")
        spec = zoo_spec(model, profile, seed_list[0], scenario, forget_classes, forget_fraction)
        retrain_seconds, source = measure_retraining(spec, device), "measured in this run"
    finished: dict[tuple[str, int], PairResult] = {}
    workers, start = 1, time.perf_counter()
    if scheduler is not None:
        plan = Plan(scenario, profile, tuple(forget_classes), forget_fraction, model, ain, str(device))
        with cluster(scheduler, jobs or (local_jobs(device) if scheduler == LOCAL else None)) as client:
            workers = len(check_workers(client))
            finished = run_on_cluster(client, plan, list(chosen), seed_list, configs or {}, say)
    say(f"loading the zoo models of seeds {seed_list} (trained and cached on first use)")
    setups = zoo_setups(scenario, seed_list, profile, forget_classes, forget_fraction, model, device)
    result = run_compare(
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
        finished=finished,
    )
    result.workers, result.seconds = workers, time.perf_counter() - start  # the tasks' time included
    say(result.resumed_text())
    return result

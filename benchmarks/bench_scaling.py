"""How the course's tasks scale on Dask: submissions graded per hour, models trained per minute and the overhead
per task, with 1 and 2 local workers and through a scheduler started by hand on 127.0.0.1, measured in one run.

    .venv/bin/python benchmarks/bench_scaling.py [--exercise 06_mia_pruning] [--submissions 4] [--models 8]

Grading: ``--submissions`` copies of the exercise's solution (every question answered), graded by
:func:`unlearnlab.course.grade.grade_all` after the cache is warmed (so every configuration grades, none trains).
Models: ``--models`` MLPs of the forgetting-quality study (:mod:`unlearnlab.compare.forgetting`), each a task of
:func:`unlearnlab.compare.cluster.train_zoo_model`, in a fresh cache per configuration. Overhead: ``--tasks``
tasks that do nothing, as :func:`unlearnlab.engine.run_tasks` runs them. Writes
``benchmarks/results/scaling.json`` with the machine and its load averages.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from common import write_results

from unlearnlab.compare.cluster import train_zoo_model
from unlearnlab.compare.forgetting import STUDIES, study_profile
from unlearnlab.compare.run import zoo_spec
from unlearnlab.config import resolve
from unlearnlab.course import grade as G
from unlearnlab.course import notebooks as nbs
from unlearnlab.course import referee
from unlearnlab.data import cache_dir
from unlearnlab.engine import LOCAL, cluster, run_tasks

DASK = Path(sys.executable).with_name("dask")


def nothing(item: int) -> int:
    """A task that does nothing: what :func:`run_tasks` itself costs."""
    return item


@contextmanager
def by_hand(workers: int, env: dict[str, str]) -> Iterator[str]:
    """``dask scheduler`` and ``workers`` single-threaded ``dask worker`` processes on 127.0.0.1, with ``env``
    added to this process's environment; yields the scheduler's address once every worker is up."""
    from distributed import Client

    folder = Path(tempfile.mkdtemp(prefix="unlearnlab-bench-"))
    env = {**os.environ, **env}
    file = folder / "scheduler.json"
    log = open(folder / "log", "w")  # noqa: SIM115
    scheduler = [DASK, "scheduler", "--host", "127.0.0.1", "--scheduler-file", file]
    procs = [subprocess.Popen(scheduler, env=env, stdout=log, stderr=log)]
    while not (file.is_file() and file.stat().st_size):
        time.sleep(0.2)
    for k in range(workers):
        command = [DASK, "worker", "--scheduler-file", file, "--nthreads", "1", "--name", f"w{k}"]
        procs.append(subprocess.Popen(command, env=env, stdout=log, stderr=log))
    address = json.loads(file.read_text())["address"]
    try:
        with Client(address) as client:
            client.wait_for_workers(workers, timeout=120)
        yield address
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait()
        log.close()
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def environment(**env: str) -> Iterator[None]:
    """Set environment variables (a local cluster's workers inherit them), restored on exit."""
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextmanager
def scheduler_for(jobs: int, remote: bool, **env: str) -> Iterator[str]:
    """A scheduler string for :func:`unlearnlab.engine.cluster` and ``grade_all``: ``local`` (``jobs`` workers,
    started by the caller) or the address of ``jobs`` workers started by hand; ``env`` reaches the workers."""
    with environment(**env):
        if not remote:
            yield LOCAL
            return
        with by_hand(jobs, env) as address:
            yield address


def tasks_seconds(scheduler: str, jobs: int, fn: Callable, items: list, *args: object) -> float:
    """Seconds to run ``fn`` on every item as tasks, once every worker has run one task (start-up excluded)."""
    with cluster(scheduler, jobs) as client:
        run_tasks(client, nothing, list(range(jobs)))
        start = time.perf_counter()
        run_tasks(client, fn, items, *args)
        return time.perf_counter() - start


def measure(label: str, jobs: int, remote: bool, args: argparse.Namespace, work: Path) -> dict[str, object]:
    """One configuration's figures: overhead per task, models per minute (a fresh cache), submissions per hour."""
    row: dict[str, object] = {"engine": label, "workers": jobs}
    with scheduler_for(jobs, remote) as scheduler:
        row["overhead_ms_per_task"] = round(
            1000 * tasks_seconds(scheduler, jobs, nothing, list(range(args.tasks))) / args.tasks, 2
        )
    fresh = work / f"cache-{label.replace(' ', '_').replace(',', '')}"
    shutil.copytree(cache_dir() / "mnist-extracted", fresh / "mnist-extracted")
    study = STUDIES["quick"]
    base = study_profile(study, resolve("quick"))
    specs = [zoo_spec(study.model, base, seed, None) for seed in range(args.models)]
    with scheduler_for(jobs, remote, UNLEARNLAB_CACHE=str(fresh)) as scheduler:
        seconds = tasks_seconds(scheduler, jobs, train_zoo_model, specs, "cpu")
    row["models"], row["model_seconds"] = args.models, round(seconds, 1)
    row["models_per_minute"] = round(60 * args.models / seconds, 2)
    with scheduler_for(jobs, remote) as scheduler:
        start = time.perf_counter()
        graded = G.grade_all([work / "submissions"], nbs.course_root() / "exercises", jobs=jobs, scheduler=scheduler)
        seconds = time.perf_counter() - start
    row["submissions"], row["grading_seconds"] = args.submissions, round(seconds, 1)
    row["points"] = [r.total for r in graded]
    row["submissions_per_hour"] = round(3600 * args.submissions / seconds, 1)
    return row


def main(argv: list[str] | None = None) -> int:
    """Measure every configuration and write the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exercise", default="06_mia_pruning", help="the exercise whose solution is graded")
    parser.add_argument("--submissions", type=int, default=4)
    parser.add_argument("--models", type=int, default=8, help="study MLPs trained per configuration")
    parser.add_argument("--tasks", type=int, default=200, help="tasks that do nothing, for the overhead")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    command = "benchmarks/bench_scaling.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    print(f"warming the cache for {args.exercise}", flush=True)
    referee.warm_cache([args.exercise])
    work = Path(tempfile.mkdtemp(prefix="unlearnlab-scaling-"))
    (work / "submissions").mkdir()
    for k in range(args.submissions):
        solution = nbs.course_root() / "solutions" / f"{args.exercise}.ipynb"
        shutil.copy(solution, work / "submissions" / f"{args.exercise[:2]}_copy{k}.ipynb")
    configurations = [
        ("local, 1 worker", 1, False),
        (f"local, {args.workers} workers", args.workers, False),
        (f"scheduler on 127.0.0.1, {args.workers} workers", args.workers, True),
    ]
    out: dict[str, object] = {
        "command": command,
        "exercise": args.exercise,
        "cpu_count": os.cpu_count(),
        "torch_threads_per_worker": 1,
        "load_before": os.getloadavg(),
        "engines": [],
    }
    try:
        for label, jobs, remote in configurations:
            print(label, flush=True)
            out["engines"].append(measure(label, jobs, remote, args, work))
            print(json.dumps(out["engines"][-1]), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out["load_after"] = os.getloadavg()
    print(f"wrote {write_results('scaling', out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Where the course's independent tasks run: a Dask cluster (``dask.distributed``), on this machine or elsewhere.

``--scheduler local`` (the default) starts a ``LocalCluster`` of worker processes here, one thread each, as many
as ``--jobs``; an address (``tcp://host:8786``) joins a running cluster: one started by hand (``dask scheduler`` and
``dask worker``), by ``dask-jobqueue`` on Slurm/PBS/SGE, or by ``dask-kubernetes``. Dask reruns the tasks of a
worker that dies on another worker, and each task's result is kept once, by its index.

Before any task runs, :func:`check_workers` asks every worker what it has (:func:`worker_report`) and stops with an
error naming each worker and what it lacks: the data and cache folders (the same paths as here: a shared
filesystem) and, for grading, bubblewrap. A worker never grades student code without its sandbox.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import Callable, Iterator, Sequence
from importlib.metadata import version
from typing import Any, TypeVar

from .data import cache_dir, data_root

LOCAL = "local"
CONNECT_TIMEOUT = 10  # seconds to reach a scheduler
T = TypeVar("T")
R = TypeVar("R")


class EngineError(RuntimeError):
    """The cluster cannot run the course's tasks: no scheduler there, no workers, or a worker lacks something."""


def default_jobs() -> int:
    """Worker processes of a local cluster when ``--jobs`` is not given: half the cores, at least one."""
    return max(1, (os.cpu_count() or 2) // 2)


@contextlib.contextmanager
def cluster(scheduler: str = LOCAL, jobs: int | None = None) -> Iterator[Any]:
    """A ``distributed.Client`` on a local cluster of ``jobs`` single-threaded worker processes, or on the
    scheduler at ``scheduler``; closed (and a local cluster stopped) on exit."""
    from distributed import Client, LocalCluster

    if scheduler == LOCAL:
        local = LocalCluster(
            n_workers=jobs or default_jobs(),
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        )
        with local, Client(local) as client:
            yield client
        return
    try:
        client = Client(scheduler, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError) as err:
        raise EngineError(f"cannot reach the Dask scheduler at {scheduler}: {err}") from None
    with client:
        yield client


def worker_report(sandbox: Callable[[], bool] | None = None) -> dict[str, object]:
    """What this worker has for the course's tasks (run on each worker by :func:`check_workers`); ``sandbox``: the
    probe of the grading sandbox (``None``: not asked)."""
    return {
        "host": socket.gethostname(),
        "unlearnlab": version("unlearnlab"),
        "bwrap": sandbox() if sandbox else None,
        "data": str(data_root()),
        "data_found": data_root().is_dir(),
        "cache": str(cache_dir()),
        "cache_found": cache_dir().is_dir() and os.access(cache_dir(), os.R_OK | os.X_OK),
    }


def lacks(report: dict[str, object], expected: dict[str, object], sandbox: bool) -> list[str]:
    """What a worker's :func:`worker_report` lacks, against this machine's (``expected``), in words."""
    missing = []
    if sandbox and not report["bwrap"]:
        missing.append("bubblewrap (bwrap), the grading sandbox: install Debian's `bubblewrap` on it")
    if not report["data_found"]:
        missing.append(f"the data folder {report['data']} (set UNLEARNLAB_DATA to a folder it shares)")
    if not report["cache_found"]:
        missing.append(f"the model cache {report['cache']} (set UNLEARNLAB_CACHE to a folder it shares)")
    if report["unlearnlab"] != expected["unlearnlab"]:
        missing.append(f"unlearnlab {expected['unlearnlab']} (it has {report['unlearnlab']})")
    return missing


def check_workers(client: Any, sandbox: Callable[[], bool] | None = None) -> dict[str, dict[str, object]]:
    """Every worker's report; an :class:`EngineError` naming each worker and what it lacks, or when there is none.
    ``sandbox``: the tasks run student code, so every worker needs the sandbox this probe checks (bubblewrap);
    ``None``: they run the course's own code (``compare``)."""
    reports = client.run(worker_report, sandbox)
    if not reports:
        raise EngineError(f"the Dask scheduler at {client.scheduler.address} has no workers")
    expected = worker_report()
    problems = {w: lacks(r, expected, sandbox is not None) for w, r in reports.items()}
    if any(problems.values()):
        lines = [f"worker {w} ({reports[w]['host']}) lacks {'; '.join(p)}" for w, p in problems.items() if p]
        raise EngineError("the cluster cannot run these tasks:\n  " + "\n  ".join(lines))
    return reports


def run_tasks(
    client: Any,
    fn: Callable[..., R],
    items: Sequence[T],
    *args: object,
    on_result: Callable[[int, R], object] = lambda index, result: None,
) -> list[R]:
    """``fn(item, *args)`` for every item, one task each, anywhere on the cluster; ``on_result(index, result)`` as
    each finishes (in the order they finish); the results in the items' order. A task that raises raises here."""
    from distributed import as_completed

    futures = {client.submit(fn, item, *args, pure=False): k for k, item in enumerate(items)}
    results: dict[int, R] = {}
    for future in as_completed(futures):
        index = futures[future]
        results[index] = future.result()  # a rerun after a worker died still gives one result per index
        on_result(index, results[index])
    return [results[k] for k in range(len(items))]

"""``unlearnlab run``: execute notebooks with papermill and collect their recorded metrics into ``results.json``."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path

from nbformat import NotebookNode

from ..files import atomic_write
from ..results import METRICS_MIME
from ..training import pick_device
from . import notebooks as nbs

RECORDS = Path("benchmarks") / "results"  # under the course root: the runs the README and the exercises show

# ipykernel logs this at startup whenever it listens on TCP (its default for a local kernel): a line on the
# terminal for every notebook run, about a kernel that only this process talks to on localhost.
TCP_WARNING = "Kernel is running over TCP without encryption"


class KernelLogFilter(logging.Filter):
    """Drops ipykernel's plain-TCP warning from the kernel's log; every other kernel message still shows."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(TCP_WARNING)


def kernel_arguments() -> list[str]:
    """Kernel command-line options that install :class:`KernelLogFilter` on the kernel's stderr log handler."""
    config = {
        "filters": {"tcp_warning": {"()": f"{__name__}.KernelLogFilter"}},
        "handlers": {"console": {"filters": ["tcp_warning"]}},
    }
    return [f"--IPKernelApp.logging_config={json.dumps(config)}"]


@contextlib.contextmanager
def _progress_bars_off():
    """``TQDM_DISABLE=1`` for the kernels started inside, unless the caller set it (an empty value counts as unset)."""
    before = os.environ.get("TQDM_DISABLE")
    if before:
        yield
        return
    os.environ["TQDM_DISABLE"] = "1"  # progress bars would flood the executed notebooks
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("TQDM_DISABLE", None)
        else:
            os.environ["TQDM_DISABLE"] = before


@dataclass
class NotebookRun:
    """The outcome of one executed notebook."""

    notebook: str
    status: str  # "ok" or "failed"
    seconds: float
    metrics: dict[str, object] = field(default_factory=dict)
    error: str | None = None  # "cell N (id): ErrorName: message" when failed
    commit: str = "unknown"  # the course's commit, "+dirty" when the package or a notebook differed from it


def record_path(profile: str, root: Path | None = None) -> Path:
    """Where ``unlearnlab run --record`` keeps the course's runs of ``profile``: ``RECORDS/course_<profile>.json``."""
    return (root or nbs.course_root()) / RECORDS / f"course_{profile}.json"


def source_commit(root: Path | None = None) -> str:
    """The course's short commit, with ``+dirty`` when the package, the solutions or the lectures differ from it;
    ``unknown`` outside a git checkout."""
    root = root or nbs.course_root()

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True).stdout.strip()

    try:
        commit = git("rev-parse", "--short=7", "HEAD")
        dirty = git("status", "--porcelain", "--", "unlearnlab", "solutions", "notebooks")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def default_notebooks() -> list[Path]:
    """Every numbered solution, then every numbered lecture notebook."""
    root = nbs.course_root()
    return sorted((root / "solutions").glob("[0-9]*.ipynb")) + sorted((root / "notebooks").glob("[0-9]*.ipynb"))


def collected_metrics(nb: NotebookNode) -> dict[str, object]:
    """Every metric a notebook recorded with :func:`unlearnlab.record` (later records win)."""
    metrics: dict[str, object] = {}
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if METRICS_MIME in data:
                metrics.update(data[METRICS_MIME])
    return metrics


def _failure(source: Path, executed: Path, err: Exception) -> str:
    """Name the failing cell by its index and id in the source notebook (papermill flags it when executing)."""
    ename, evalue = getattr(err, "ename", type(err).__name__), getattr(err, "evalue", str(err))
    where = ""
    if executed.is_file():
        failed = [c.get("id") for c in nbs.read(executed).cells if c.metadata.get("papermill", {}).get("exception")]
        order = [c.get("id") for c in nbs.read(source).cells]
        if failed and failed[0] in order:
            where = f"cell {order.index(failed[0])} (id {failed[0]}): "
    return f"{where}{ename}: {str(evalue).splitlines()[0] if evalue else ''}"


def execute(
    path: Path, out_dir: Path, parameters: dict[str, object], timeout: int | None = None, commit: str = "unknown"
) -> NotebookRun:
    """Run one notebook with papermill into ``out_dir``; never raises for a failing notebook."""
    import papermill

    target = out_dir / path.name
    start = time.perf_counter()
    try:
        papermill.execute_notebook(
            str(path),
            str(target),
            parameters=parameters,
            kernel_name="python3",
            progress_bar=False,
            cwd=str(path.parent),
            execution_timeout=timeout,
            extra_arguments=kernel_arguments(),
        )
    except Exception as err:  # papermill raises its own error for a failing cell, others for kernel trouble
        return NotebookRun(
            path.stem,
            "failed",
            time.perf_counter() - start,
            collected_metrics(nbs.read(target)) if target.is_file() else {},
            _failure(path, target, err),
            commit,
        )
    return NotebookRun(path.stem, "ok", time.perf_counter() - start, collected_metrics(nbs.read(target)), None, commit)


def environment(device: str) -> dict[str, object]:
    """Device and versions, for the record."""
    import numpy
    import torch
    import torchvision

    chosen = pick_device(device)
    name = torch.cuda.get_device_name(chosen) if chosen.type == "cuda" else f"CPU ({os.cpu_count()} cores)"
    return {
        "device": name,
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "versions": {
            "unlearnlab": version("unlearnlab"),
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
            "numpy": numpy.__version__,
        },
    }


def run_all(
    paths: list[Path], out_dir: Path, profile: str, device: str, seed: int = 0, timeout: int | None = None, echo=print
) -> dict[str, object]:
    """Execute ``paths`` in order, writing executed notebooks, ``results.json`` and ``report.md`` to ``out_dir``."""
    from ..config import resolve
    from .report import write_report

    out_dir.mkdir(parents=True, exist_ok=True)
    resolved = resolve(profile).name
    parameters = {"PROFILE": resolved, "SEED": seed, "DEVICE": device}
    results: dict[str, object] = {
        "profile": resolved,
        "seed": seed,
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "commit": source_commit(),
        **environment(device),
        "notebooks": {},
    }
    for k, path in enumerate(paths, 1):
        echo(f"[{k}/{len(paths)}] {path.name} ...", end=" ", flush=True)
        with _progress_bars_off():
            outcome = execute(path, out_dir, parameters, timeout, results["commit"])
        echo(f"{outcome.status} ({outcome.seconds:.0f} s)" + (f": {outcome.error}" if outcome.error else ""))
        results["notebooks"][outcome.notebook] = asdict(outcome)
        _write_json(results, out_dir / "results.json")  # after each notebook: finished work is never lost
    results["total_seconds"] = round(sum(r["seconds"] for r in results["notebooks"].values()), 1)
    _write_json(results, out_dir / "results.json")
    write_report(results, out_dir)
    return results


def _write_json(data: dict, path: Path) -> None:
    text = json.dumps(data, indent=2, default=str) + "\n"
    atomic_write(path, lambda tmp: tmp.write_text(text))


def record_run(results: dict, path: Path) -> dict:
    """Merge a run's notebooks into the record at ``path`` (one profile's runs, notebook by notebook).

    A notebook run again replaces its entry; the others stay, each with its own commit, start and device, so a
    record can be built up over several sittings. Returns the merged record."""
    record = json.loads(path.read_text()) if path.is_file() else {"notebooks": {}}
    if record.get("profile", results["profile"]) != results["profile"]:
        raise ValueError(f"{path} records the {record['profile']} profile, not {results['profile']}")
    stamp = {"started": results["started"], "device": results["device"]}
    notebooks = {**record["notebooks"], **{name: {**run, **stamp} for name, run in results["notebooks"].items()}}
    record.update({k: v for k, v in results.items() if k not in ("notebooks", "total_seconds")})
    record["notebooks"] = dict(sorted(notebooks.items()))
    record["total_seconds"] = round(sum(r["seconds"] for r in notebooks.values()), 1)
    _write_json(record, path)
    return record

"""The "what to expect" cell of each notebook: how long its recorded runs took, and what they printed.

``unlearnlab build`` renders it from the course's records, ``benchmarks/results/course_<profile>.json`` (written by
``unlearnlab run --profile P --record``), and places it after the notebook's introduction. In a solution it states
the recorded wall time of each profile, on which device and at which commit; an exercise adds the headline figures
of the recorded quick run, so a self-learner can tell a sound run from a broken one. The build also writes the
times to the package (:data:`unlearnlab.config.RECORDED_RUNS`), where ``PROFILE = "auto"`` reads them.
"""

from __future__ import annotations

import json
from pathlib import Path

from nbformat import NotebookNode
from nbformat.v4 import new_markdown_cell

from ..config import PROFILES, RECORDED_RUNS, recorded_runs
from ..files import write_text
from .report import headline_rows
from .run import record_path

EXPECT_ID = "expect"
PROFILE = "quick"


def load_record(profile: str, root: Path | None = None) -> dict | None:
    """The course's recorded runs of ``profile``, or None when none is recorded."""
    path = record_path(profile, root)
    return json.loads(path.read_text()) if path.is_file() else None


def quick_record(root: Path | None = None) -> dict | None:
    """The recorded quick-profile run of the course, or None when none is recorded."""
    return load_record(PROFILE, root)


def recorded_times(records: dict[str, dict | None]) -> dict[str, dict[str, dict[str, object]]]:
    """``{notebook: {profile: {"seconds", "device", "gpu", "commit", "status"}}}`` from ``{profile: record}``."""
    times: dict[str, dict[str, dict[str, object]]] = {}
    for profile, record in records.items():
        for name, run in (record or {}).get("notebooks", {}).items():
            device = str(run.get("device") or record.get("device", "unknown"))
            times.setdefault(name, {})[profile] = {
                "seconds": round(float(run["seconds"])),
                "device": device,
                "gpu": not device.startswith("CPU"),
                "commit": run.get("commit", "unknown"),
                "status": run["status"],
            }
    return dict(sorted(times.items()))


def course_records(root: Path | None = None) -> dict[str, dict | None]:
    """Every profile's record of the course: ``{profile: record or None}``."""
    return {profile: load_record(profile, root) for profile in PROFILES}


def sync_recorded_runs(times: dict[str, dict[str, dict[str, object]]]) -> bool:
    """Write ``times`` to the package's :data:`~unlearnlab.config.RECORDED_RUNS`; True when it changed."""
    if recorded_runs() == times:
        return False
    write_text(RECORDED_RUNS, json.dumps(times, indent=1, sort_keys=True) + "\n")
    return True


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


def time_line(times: dict[str, dict[str, object]]) -> str | None:
    """One sentence: each profile's recorded wall time, device and commit, and what ``"auto"`` picks on a GPU."""
    parts = [
        f"{profile} profile {_minutes(float(t['seconds']))} on {t['device']} (commit `{t['commit']}`)"
        + ("" if t["status"] == "ok" else f", {t['status']}")
        for profile, t in times.items()
    ]
    if not parts:
        return None
    gpu = any(t["gpu"] for t in times.values())
    tail = "" if gpu else '; no run on a GPU is recorded yet, so `PROFILE = "auto"` runs the quick profile there too'
    return "**Time.** Recorded runs of this notebook's reference solution: " + "; ".join(parts) + tail + "."


def expect_markdown(name: str, times: dict[str, dict[str, object]], record: dict | None = None) -> str | None:
    """The cell's markdown for notebook ``name`` (its stem): its recorded times, and with the quick ``record``
    the headline figures of its passing quick run; None when nothing is recorded."""
    lines = [line] if (line := time_line(times)) else []
    run = (record or {}).get("notebooks", {}).get(name)
    if not run or run.get("status") != "ok":
        return "\n".join(lines) or None
    rows = [r for r in headline_rows(name, run["metrics"], PROFILE) if r.value != "not recorded"]
    lines += [
        "" if lines else None,
        "**What to expect.** The reference solution of this notebook, run in the quick profile at commit "
        f"`{run.get('commit', 'unknown')}` on {run.get('device', record.get('device', 'an unnamed device'))}, "
        f"took {_minutes(run['seconds'])} and printed the figures below "
        f"(`{record_path(PROFILE, Path('.')).as_posix()}`, written by `unlearnlab run --profile quick --record`). "
        "Your run will differ a little with your answers, your machine and `SEED`: the check cells' bars are what "
        "count, not these values.",
    ]
    lines = [line for line in lines if line is not None]
    if rows:
        lines += ["", "| figure | reference run | bar (quick) | retrained |", "|---|---|---|---|"]
        for row in rows:
            value = row.value + (f" {row.unit}" if row.unit else "")
            cells = [row.label, value, row.bar, row.retrained]
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def with_expectations(
    nb: NotebookNode, name: str, times: dict[str, dict[str, object]], record: dict | None = None
) -> NotebookNode:
    """``nb`` with its "what to expect" cell after the first markdown cell (the introduction): ``name``'s recorded
    ``times``, and the figures of its quick run in ``record`` (given for exercises); an existing cell of that id
    is replaced, and none is added when nothing is recorded."""
    nb.cells = [c for c in nb.cells if c.get("id") != EXPECT_ID]
    text = expect_markdown(name, times, record)
    if text is None:
        return nb
    cell = new_markdown_cell(text)
    cell.id = EXPECT_ID
    first = next((k for k, c in enumerate(nb.cells) if c.cell_type == "markdown"), -1)
    nb.cells.insert(first + 1, cell)
    return nb

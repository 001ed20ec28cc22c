"""The "what to expect" cell of each exercise: what the reference solution's recorded quick run printed.

``unlearnlab build`` renders it from ``benchmarks/results/course_quick.json`` (written by ``unlearnlab run
--profile quick --record``) and places it after the exercise's introduction, so a self-learner can tell a sound
run from a broken one. It states the run's commit, device and wall time; an exercise with no recorded run gets
no cell.
"""

from __future__ import annotations

import json
from pathlib import Path

from nbformat import NotebookNode
from nbformat.v4 import new_markdown_cell

from .report import headline_rows
from .run import record_path

EXPECT_ID = "expect"
PROFILE = "quick"


def quick_record(root: Path | None = None) -> dict | None:
    """The recorded quick-profile run of the course, or None when none is recorded."""
    path = record_path(PROFILE, root)
    return json.loads(path.read_text()) if path.is_file() else None


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


def expect_markdown(name: str, record: dict | None) -> str | None:
    """The cell's markdown for notebook ``name`` (its stem), or None when the record has no passing run of it."""
    run = (record or {}).get("notebooks", {}).get(name)
    if not run or run.get("status") != "ok":
        return None
    rows = [r for r in headline_rows(name, run["metrics"], PROFILE) if r.value != "not recorded"]
    lines = [
        "**What to expect.** The reference solution of this notebook, run in the quick profile at commit "
        f"`{run.get('commit', 'unknown')}` on {run.get('device', record.get('device', 'an unnamed device'))}, "
        f"took {_minutes(run['seconds'])} and printed the figures below "
        f"(`{record_path(PROFILE, Path('.')).as_posix()}`, written by `unlearnlab run --profile quick --record`). "
        "Your run will differ a little with your answers, your machine and `SEED`: the check cells' bars are what "
        "count, not these values.",
    ]
    if rows:
        lines += ["", "| figure | reference run | bar (quick) | retrained |", "|---|---|---|---|"]
        for row in rows:
            value = row.value + (f" {row.unit}" if row.unit else "")
            cells = [row.label, value, row.bar, row.retrained]
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def with_expectations(nb: NotebookNode, name: str, record: dict | None) -> NotebookNode:
    """``nb`` with its "what to expect" cell after the first markdown cell (the introduction), if ``record`` has
    a passing run of ``name``; an existing cell of that id is replaced."""
    nb.cells = [c for c in nb.cells if c.get("id") != EXPECT_ID]
    text = expect_markdown(name, record)
    if text is None:
        return nb
    cell = new_markdown_cell(text)
    cell.id = EXPECT_ID
    first = next((k for k, c in enumerate(nb.cells) if c.cell_type == "markdown"), -1)
    nb.cells.insert(first + 1, cell)
    return nb

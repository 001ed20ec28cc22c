"""The lecture notebooks of notebooks/ run headless in the quick profile, and show a figure for every widget."""

from __future__ import annotations

import pytest

from unlearnlab.course import notebooks as nbs
from unlearnlab.course.run import default_notebooks, execute, run_all

ROOT = nbs.course_root()
LECTURES = sorted((ROOT / "notebooks").glob("*.ipynb"))
IDS = [p.stem for p in LECTURES]
TIMEOUT = 600  # seconds per cell: a generous bound for a busy CI machine


def _widget_cells(nb) -> list[int]:
    """Indices of the cells that build an ipywidgets view."""
    return [k for k, c in enumerate(nb.cells) if c.cell_type == "code" and "interact(" in c.source]


def _has_png(cell) -> bool:
    return any("image/png" in out.get("data", {}) for out in cell.get("outputs", []))


def _default_state_cell(nb, k: int):
    """The code cell before widget cell ``k``: it draws the widget's default state as an ordinary output."""
    return next(c for c in reversed(nb.cells[:k]) if c.cell_type == "code")


def test_there_is_an_overview_and_one_explorer_per_part():
    parts = ("confusion", "distillation_temperature", "gkt_gate", "deepinversion_gallery", "mia_threshold")
    wanted = {"00_what_is_unlearning", "explore_pruning_sparsity"} | {f"explore_{p}" for p in parts}
    assert wanted <= set(IDS)
    assert ROOT / "notebooks" / "00_what_is_unlearning.ipynb" in default_notebooks()  # `unlearnlab run` runs it


@pytest.mark.parametrize("path", LECTURES, ids=IDS)
def test_widget_cells_are_ignored_by_nbval_and_follow_a_stored_figure(path):
    """A reader of the committed notebook on GitHub sees each widget's default state as a figure."""
    nb = nbs.read(path)
    for k in _widget_cells(nb):
        assert "nbval-ignore-output" in nb.cells[k].metadata.get("tags", []), f"{path.name} cell {k}"
        assert _has_png(_default_state_cell(nb, k)), f"{path.name}: no stored figure before widget cell {k}"


@pytest.mark.parametrize("path", [p for p in LECTURES if not p.name[0].isdigit()], ids=lambda p: p.stem)
def test_explorer_runs_headless(path, tmp_path):
    run = execute(path, tmp_path, {"PROFILE": "quick", "SEED": 0, "DEVICE": "cpu"}, timeout=TIMEOUT)
    assert run.status == "ok", run.error
    nb = nbs.read(tmp_path / path.name)
    assert _widget_cells(nb), f"{path.name} has no widget"
    for k in _widget_cells(nb):
        assert _has_png(_default_state_cell(nb, k)), f"{path.name}: widget cell {k}'s default state drew no figure"
        assert nb.cells[k].outputs, f"{path.name}: widget cell {k} rendered nothing"


def test_overview_runs_through_unlearnlab_run_into_the_report(tmp_path):
    path = ROOT / "notebooks" / "00_what_is_unlearning.ipynb"
    results = run_all([path], tmp_path, "quick", "cpu", 0, TIMEOUT, echo=lambda *_, **__: None)
    run = results["notebooks"]["00_what_is_unlearning"]
    assert run["status"] == "ok", run["error"]
    report = (tmp_path / "report.md").read_text()
    assert "## 00_what_is_unlearning" in report and "| 00_what_is_unlearning | ok |" in report
    cells = nbs.read(tmp_path / path.name).cells
    figures = sum("image/png" in out.get("data", {}) for c in cells for out in c.get("outputs", []))
    assert figures >= 6 and report.count("](figures/") == figures  # every figure reaches the report

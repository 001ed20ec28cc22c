"""``report.md`` and the README's results table: a run's headline metrics a reader can judge, with captioned figures.

Every row comes from the notebook's lesson (:mod:`unlearnlab.lessons`): the recorded value with its unit, the
seed's or paper's figure, the profile's bar with PASS/FAIL, and the retrained model's value. Metrics without a
headline entry are still listed, after the known ones.
"""

from __future__ import annotations

import ast
import base64
import json
from dataclasses import dataclass
from pathlib import Path

from nbformat import NotebookNode

from ..files import write_text
from ..lessons.base import Headline
from ..lessons.catalog import find
from . import notebooks as nbs
from .run import RECORDS

COURSE_RESULTS = RECORDS / "course_full.json"  # the run the README's table shows
README_BEGIN = "<!-- headline-results:begin (generated from benchmarks/results/course_full.json: make readme) -->"
README_END = "<!-- headline-results:end -->"


@dataclass(frozen=True)
class Figure:
    """A PNG a notebook drew, saved to disk, with the caption the report prints under it."""

    path: Path
    caption: str


def _heading(markdown: str) -> str | None:
    """The last markdown heading of a cell, without its ``#`` marks."""
    found = [line.lstrip("#").strip() for line in markdown.splitlines() if line.startswith("#")]
    return found[-1] if found else None


def plot_titles(source: str) -> list[str]:
    """Titles a code cell passes to plotting calls, in source order: ``title=`` or a text argument of ``plot_*``."""
    try:
        tree = ast.parse(source)
    except SyntaxError:  # cell magics and the like
        return []
    calls = sorted((n for n in ast.walk(tree) if isinstance(n, ast.Call)), key=lambda n: (n.lineno, n.col_offset))
    titles = []
    for call in calls:
        name = getattr(call.func, "attr", None) or getattr(call.func, "id", "")
        if not (name.startswith("plot_") or name in ("class_grid", "image_grid", "set_title", "suptitle", "title")):
            continue
        texts = [kw.value for kw in call.keywords if kw.arg == "title"] + call.args[1:]
        if name in ("set_title", "suptitle", "title"):
            texts = call.args[:1]
        texts = [t.value for t in texts if isinstance(t, ast.Constant) and isinstance(t.value, str)]
        if texts:
            titles.append(texts[0])
    return titles


def figure_captions(nb: NotebookNode) -> list[str]:
    """One caption per PNG output, in order: the plot's title where the code names it, and the section heading."""
    captions, section = [], ""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            section = _heading(cell.source) or section
            continue
        n = sum(bool(o.get("data", {}).get("image/png")) for o in cell.get("outputs", []))
        if not n:
            continue
        titles = plot_titles(cell.source)
        if len(titles) != n:  # one figure with several titled panels, or titles the code computes
            titles = ["; ".join(titles)] if n == 1 and titles else [""] * n
        for k, title in enumerate(titles, 1):
            where = section + (f", figure {k} of {n}" if n > 1 and not title else "")
            captions.append(f"{title} ({where})" if title and where else title or where or "figure")
    return captions


def extract_figures(executed: Path, figures_dir: Path) -> list[Figure]:
    """Save every PNG output of an executed notebook as ``<notebook>-<n>.png``, each with its caption."""
    if not executed.is_file():
        return []
    nb = nbs.read(executed)
    pngs = [
        o["data"]["image/png"] for c in nb.cells for o in c.get("outputs", []) if o.get("data", {}).get("image/png")
    ]
    saved = []
    for k, (png, caption) in enumerate(zip(pngs, figure_captions(nb)), 1):
        path = figures_dir / f"{executed.stem}-{k:02d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(png))
        saved.append(Figure(path, caption))
    return saved


def _format(value: object, digits: int = 2) -> str:
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


@dataclass(frozen=True)
class Row:
    """One headline metric of one run, every column as text."""

    label: str
    value: str  # "not recorded" when the notebook did not record it; "(not reached)" appended where flagged
    unit: str
    reference: str
    bar: str
    verdict: str  # PASS / FAIL for a check cell's bar, met / not met for a course target, "" without a bar
    retrained: str
    summary: bool  # also in the README's table

    def cells(self) -> list[str]:
        """The report's columns: metric, this run, unit, seed/paper, bar, pass/fail, retrained."""
        return [self.label, self.value, self.unit, self.reference, self.bar, self.verdict, self.retrained]


def headlines(notebook: str) -> tuple[Headline, ...]:
    """The headline metrics of a notebook, by its stem (``01_relabel_freeze``); none for a notebook no lesson grades."""
    lesson = find(notebook)
    return lesson.headlines if lesson else ()


def headline_rows(notebook: str, metrics: dict[str, object], profile: str) -> list[Row]:
    """The notebook's headline metrics as table rows, in the order its lesson gives them."""
    rows = []
    for entry in headlines(notebook):
        value = metrics.get(entry.key)
        bar = entry.bars.get(profile)
        verdict = ""
        if bar is not None and isinstance(value, int | float) and not isinstance(value, bool):
            passed = bar.passes(value)
            verdict = ("PASS" if passed else "FAIL") if bar.graded else ("met" if passed else "not met")
        shown = "not recorded" if value is None else _format(value, entry.digits)
        if entry.reached and metrics.get(entry.reached) is False:
            shown += " (not reached)"
        retrained = metrics.get(entry.retrained) if entry.retrained else None
        rows.append(
            Row(
                entry.label,
                shown,
                entry.unit,
                entry.reference,
                str(bar) if bar else "",
                verdict,
                "" if retrained is None else _format(retrained, entry.digits),
                entry.summary,
            )
        )
    return rows


def _known_keys(notebook: str) -> set[str]:
    return {k for e in headlines(notebook) for k in (e.key, e.retrained, e.reached) if k}


def metrics_table(notebook: str, metrics: dict[str, object], profile: str) -> list[str]:
    """Markdown lines: the headline table, then any other recorded metric as ``| name | value |``."""
    lines = []
    rows = headline_rows(notebook, metrics, profile)
    if rows:
        lines += [
            f"| metric | this run | unit | seed/paper | bar ({profile}) | pass/fail | retrained |",
            "|---|---|---|---|---|---|---|",
        ]
        lines += ["| " + " | ".join(_cell(c) for c in r.cells()) + " |" for r in rows]
        if any("(not reached)" in r.value for r in rows):
            lines += [
                "",
                "(not reached): relearning did not reach the target within the step budget, so the index "
                "is a lower bound.",
            ]
    other = {k: v for k, v in metrics.items() if k not in _known_keys(notebook)}
    if other:
        if rows:
            lines += ["", "Other recorded metrics:", ""]
        lines += ["| metric | value |", "|---|---|"]
        lines += [f"| {_cell(key)} | {_cell(_format(value))} |" for key, value in other.items()]
    return lines


LEGEND = (
    "Bars are the check cells' thresholds for this profile, in the metric's unit; `(target)` marks a course target "
    "that no check cell enforces (met / not met). PASS / FAIL judges the recorded value against its bar only: a "
    "notebook's check cells may test more (its status above). Seed and paper figures are theirs, quoted with their "
    "source. `retrained`: the same quantity for the model retrained from scratch without the forget data, the gold "
    "standard."
)


def write_report(results: dict, out_dir: Path) -> Path:
    """Write ``report.md`` from the ``results.json`` content, with captioned figures."""
    profile = results["profile"]
    lines = [
        f"# unlearnlab run — profile `{profile}`",
        "",
        f"Device: {results['device']} · Python {results['python']} · torch {results['versions']['torch']} · "
        f"started {results['started']} · total {results.get('total_seconds', 0):.0f} s",
        "",
        "| notebook | status | time (s) |",
        "|---|---|---|",
    ]
    runs = results["notebooks"]
    lines += [f"| {name} | {r['status']} | {r['seconds']:.0f} |" for name, r in runs.items()]
    lines += ["", LEGEND]
    for name, r in runs.items():
        lines += ["", f"## {name}", ""]
        if r["error"]:
            lines += [f"**Failed** at {r['error']}", ""]
        if r["metrics"]:
            lines += metrics_table(name, r["metrics"], profile)
        for k, fig in enumerate(extract_figures(out_dir / f"{name}.ipynb", out_dir / "figures"), 1):
            lines += ["", f"![{fig.caption}](figures/{fig.path.name})", "", f"*Figure {k}: {fig.caption}*"]
    path = out_dir / "report.md"
    write_text(path, "\n".join(lines) + "\n")
    return path


def readme_results(results: dict | None) -> str:
    """The README's headline-results section body: the summary metrics of every notebook of a full run."""
    if results is None:
        return (
            f"No full-profile run of the course is recorded yet (`{COURSE_RESULTS.as_posix()}`). "
            "The seeds' and papers' figures are in each notebook's introduction."
        )
    profile = results["profile"]
    runs = results["notebooks"]
    lines = [
        f"Profile `{profile}`, seed {results.get('seed', 0)}, on {results['device']}, started {results['started']} "
        f"(`{COURSE_RESULTS.as_posix()}`). Wall time: "
        + ", ".join(f"{name[:2]} {r['seconds'] / 60:.0f} min ({r['status']})" for name, r in runs.items())
        + ".",
        "",
        f"| notebook | metric | this run | seed/paper | bar ({profile}) | pass/fail | retrained |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in runs.items():
        for row in headline_rows(name, r["metrics"], profile):
            if row.summary:
                value = row.value + (f" {row.unit}" if row.unit and row.value != "not recorded" else "")
                cells = [name[:2], row.label, value, row.reference, row.bar, row.verdict, row.retrained]
                lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines)


def sync_readme(readme: Path | None = None, results_path: Path | None = None) -> bool:
    """Rewrite the README's headline-results section from ``course_full.json``; True when the README changed."""
    root = nbs.course_root()
    readme = readme or root / "README.md"
    results_path = results_path or root / COURSE_RESULTS
    results = json.loads(results_path.read_text()) if results_path.is_file() else None
    text = readme.read_text()
    start, end = text.index(README_BEGIN) + len(README_BEGIN), text.index(README_END)
    new = text[:start] + "\n" + readme_results(results) + "\n" + text[end:]
    if new != text:
        write_text(readme, new)
    return new != text

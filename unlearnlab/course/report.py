"""``report.md``: a readable table of a run's results, with the figures the notebooks drew."""

from __future__ import annotations

import base64
from pathlib import Path

from . import notebooks as nbs


def extract_figures(executed: Path, figures_dir: Path) -> list[Path]:
    """Save every PNG output of an executed notebook as ``<notebook>-<n>.png``."""
    if not executed.is_file():
        return []
    saved = []
    for cell in nbs.read(executed).cells:
        for output in cell.get("outputs", []):
            png = output.get("data", {}).get("image/png")
            if png:
                path = figures_dir / f"{executed.stem}-{len(saved) + 1:02d}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(base64.b64decode(png))
                saved.append(path)
    return saved


def _format(value: object) -> str:
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def write_report(results: dict, out_dir: Path) -> Path:
    """Write ``report.md`` from the ``results.json`` content, linking each notebook's figures."""
    lines = [
        f"# unlearnlab run — profile `{results['profile']}`",
        "",
        f"Device: {results['device']} · Python {results['python']} · torch {results['versions']['torch']} · "
        f"started {results['started']} · total {results.get('total_seconds', 0):.0f} s",
        "",
        "| notebook | status | time (s) |",
        "|---|---|---|",
    ]
    runs = results["notebooks"]
    lines += [f"| {name} | {r['status']} | {r['seconds']:.0f} |" for name, r in runs.items()]
    for name, r in runs.items():
        lines += ["", f"## {name}", ""]
        if r["error"]:
            lines += [f"**Failed** at {r['error']}", ""]
        if r["metrics"]:
            lines += ["| metric | value |", "|---|---|"]
            lines += [f"| {key} | {_format(value)} |" for key, value in r["metrics"].items()]
        figures = extract_figures(out_dir / f"{name}.ipynb", out_dir / "figures")
        lines += [""] + [f"![{p.stem}](figures/{p.name})" for p in figures]
    path = out_dir / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path

"""What every benchmark shares: where results go and how they are written."""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def write_results(stem: str, results: dict) -> Path:
    """Write ``results`` as ``benchmarks/results/<stem>.json`` and return the path."""
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{stem}.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    return out

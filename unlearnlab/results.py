"""How a notebook hands its headline metrics to ``unlearnlab run``: a display output with its own MIME type."""

from __future__ import annotations

import math
from numbers import Real

METRICS_MIME = "application/vnd.unlearnlab.metrics+json"


def record(**metrics: float | int | str | bool) -> dict[str, float | int | str | bool]:
    """Record this notebook's headline metrics (accuracies in percent); ``unlearnlab run`` collects them.

    Shows only the metric names, so the cell's text output stays the same from run to run.
    """
    clean: dict[str, float | int | str | bool] = {}
    for name, value in metrics.items():
        if isinstance(value, bool | str):
            clean[name] = value
        elif isinstance(value, Real):
            number = float(value)
            clean[name] = round(number, 4) if math.isfinite(number) else str(number)
        else:
            raise TypeError(f"metric {name!r} must be a number, text or bool, not {type(value).__name__}")
    from IPython.display import display

    display({METRICS_MIME: clean, "text/plain": "recorded: " + ", ".join(clean)}, raw=True)
    return clean

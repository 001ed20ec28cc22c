"""``unlearnlab compare``: every unlearning method against retraining from scratch, over seeds (notebook 08).

Split by job: :mod:`.scoring` (evaluation sets, scores, the noise band), :mod:`.run` (the (method, seed) loop and
the zoo-backed setups), :mod:`.cluster` (:func:`compare`: its pairs in this process or as tasks on a Dask cluster)
and :mod:`.table` (the result, its table, sentences, figure and files). The names below are the public interface
the CLI, notebook 08 and the benchmarks use.
"""

from .cluster import compare
from .run import SCENARIOS, SeedSetup, pick_methods, run_compare, setup_specs, zoo_setups
from .scoring import EVAL_SIZES, Reference, Scores
from .table import CompareResult, Row, plot_pareto, summary_lines, write

__all__ = [
    "EVAL_SIZES",
    "SCENARIOS",
    "CompareResult",
    "Reference",
    "Row",
    "Scores",
    "SeedSetup",
    "compare",
    "pick_methods",
    "plot_pareto",
    "run_compare",
    "setup_specs",
    "summary_lines",
    "write",
    "zoo_setups",
]

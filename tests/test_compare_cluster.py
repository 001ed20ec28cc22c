"""unlearnlab.compare on a Dask cluster: the (method, seed) pairs as tasks on worker processes give the table that
one process gives, pair for pair."""

from __future__ import annotations

import pytest

from unlearnlab import compare as C
from unlearnlab.cli import build_parser
from unlearnlab.compare import cluster as K
from unlearnlab.config import resolve
from unlearnlab.engine import EngineError

# two cheap methods on the quick zoo models of seeds 0 and 1 (the capstone's, warmed by the test session)
RUN = {"methods": ("relabel", "gradient_ascent"), "seeds": 2, "profile": "quick", "ain": False, "device": "cpu"}


def _scores_without_times(result: C.CompareResult) -> dict[str, list[dict]]:
    """Each row's scores per seed, every timing left out (a pair run elsewhere takes other seconds)."""
    rows = {}
    for row in result.rows:
        rows[row.method] = [{k: v for k, v in vars(s).items() if k != "seconds"} for s in row.per_seed]
    return rows


def test_pairs_run_as_tasks_on_a_local_cluster_give_this_process_table(monkeypatch):
    monkeypatch.setenv("UNLEARNLAB_RESUME", "0")  # both runs run every pair (the workers inherit the setting)
    here = C.compare("class", retrain_seconds=1.0, **RUN)
    there = C.compare("class", retrain_seconds=1.0, scheduler="local", jobs=2, **RUN)
    assert (here.workers, there.workers, there.pairs, there.resumed) == (1, 2, 4, 0)
    assert [r.method for r in there.rows] == ["original", "retrained", "relabel", "gradient_ascent"]
    assert all(r.seeds == [0, 1] for r in there.rows)
    assert _scores_without_times(there) == _scores_without_times(here)
    assert "ran as tasks on 2 worker processes" in there.markdown()
    assert there.seconds >= sum(s.seconds for r in there.rows[2:] for s in r.per_seed) / 2  # the tasks' time counts


def test_a_plan_rebuilds_a_seed_as_the_comparison_does():
    plan = K.Plan("class", resolve("quick"), (6,), 0.1, "cnn_bn", False, "cpu")
    setup, scorer, context = K.seed_on_worker(plan, 1)
    (here,) = C.zoo_setups("class", [1], plan.profile, (6,), device="cpu")
    assert setup.splits.forget.y.tolist() == here.splits.forget.y.tolist()
    assert scorer.seed == 1 and scorer.ain is None and context["ain"] == "none"
    assert K.seed_on_worker(plan, 1)[1] is scorer  # built once per worker process


def test_an_unreachable_scheduler_stops_compare_before_any_pair(monkeypatch):
    monkeypatch.setattr("unlearnlab.engine.CONNECT_TIMEOUT", 2)
    with pytest.raises(EngineError, match="cannot reach the Dask scheduler"):
        C.compare("class", retrain_seconds=1.0, scheduler="tcp://127.0.0.1:9", **RUN)


def test_cli_passes_the_scheduler_and_jobs():
    args = build_parser().parse_args(["compare", "--scheduler", "local", "--jobs", "3"])
    assert (args.scheduler, args.jobs) == ("local", 3)
    assert build_parser().parse_args(["compare"]).scheduler is None

"""``unlearnlab compare`` as a benchmark: its table, its wall-clock time and the machine's load while it ran.

    .venv/bin/python benchmarks/bench_compare.py --profile quick --seeds 2 [--scenario class random] [--methods ...]
    .venv/bin/python benchmarks/bench_compare.py --pair-cost --profile full --scenario class --methods finetune salun

Writes ``benchmarks/results/compare_<profile>.json`` (every scenario's full result, the command, seconds, load)
and ``compare_<profile>.md`` (the tables). Timings depend on what else the CPU runs: the load averages before
and after are recorded next to them.

``--pair-cost`` instead times what one (method, seed) pair of notebook 08's table costs: the method at the config
the lesson gives it (:func:`unlearnlab.lessons.capstone.table_configs`) on the profile's splits, then its scoring,
in wall-clock and in process CPU seconds (the CPU seconds of a one-thread run are what an idle core would take;
a shared CPU inflates the wall-clock ones). It unlearns seed 0's quick-profile model (the same architecture: the
cost hardly depends on the weights) and writes ``benchmarks/results/compare_pair_cost_<profile>.json``.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from common import write_results

from unlearnlab import compare as C
from unlearnlab.compare.run import splits_for
from unlearnlab.compare.scoring import EvalSets, SeedScorer
from unlearnlab.config import for_profile, resolve
from unlearnlab.lessons import capstone
from unlearnlab.methods import anamnesis
from unlearnlab.training import pick_device


def main(argv: list[str] | None = None) -> int:
    """Run the comparisons and write the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="quick", choices=["quick", "full"])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--scenario", nargs="+", default=list(C.SCENARIOS), choices=list(C.SCENARIOS))
    parser.add_argument("--methods", nargs="+", help="registry names (default: every method for the scenario)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--pair-cost", action="store_true", help="time single (method, seed) pairs instead")
    args = parser.parse_args(argv)
    command = "benchmarks/bench_compare.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    if args.pair_cost:
        return pair_cost(args, command)
    out = {"command": command, "machine": _machine(args.device), "scenarios": {}}
    tables = [f"# `unlearnlab compare`, {args.profile} profile, {args.seeds} seeds", "", f"Command: `{command}`", ""]
    for scenario in args.scenario:
        load_before, start = os.getloadavg(), time.perf_counter()
        result = C.compare(
            scenario, methods=args.methods, seeds=args.seeds, profile=args.profile, device=args.device, log=print
        )
        seconds = time.perf_counter() - start
        load = {"before": list(load_before), "after": list(os.getloadavg())}
        out["scenarios"][scenario] = {"wall_seconds": seconds, "load_average": load, "result": result.as_dict()}
        tables += [
            f"## {scenario} forgetting: {seconds / 60:.1f} min wall-clock (models cached; load average "
            f"{load_before[0]:.1f} before, {load['after'][0]:.1f} after, {os.cpu_count()} cores)",
            "",
            result.markdown(),
            "",
            *(f"- {line}" for line in C.summary_lines(result)),
            "",
        ]
        print(result.markdown(), flush=True)
        path = write_results(f"compare_{args.profile}", out)  # after every scenario: a long run keeps its part
        path.with_suffix(".md").write_text("\n".join(tables))
        print(f"wrote {path} and {path.with_suffix('.md')}", flush=True)
    return 0


def pair_cost(args: argparse.Namespace, command: str) -> int:
    """Time one (method, seed) pair per method and scenario: unlearning, then scoring (see the module's text)."""
    profile, device = resolve(args.profile), pick_device(args.device)
    configs = capstone.table_configs(profile)
    out = {"command": command, "machine": _machine(args.device), "load_before": list(os.getloadavg()), "pairs": []}
    for scenario in args.scenario:
        setup = C.zoo_setups(scenario, [0], resolve("quick"), (capstone.FORGET,), capstone.FORGET_FRACTION)[0]
        splits = splits_for(scenario, (capstone.FORGET,), capstone.FORGET_FRACTION, profile)
        ain = for_profile(anamnesis.CONFIGS, profile) if scenario == "class" else None
        with _clock() as setup_cost:
            scorer = SeedScorer(
                setup.original, setup.retrained, 0, EvalSets.from_splits(splits, ain is not None, profile), ain, device
            )
        out["pairs"].append({"scenario": scenario, "what": "the seed's scorer", **setup_cost})
        for name, spec in C.pick_methods(args.methods, scenario).items():
            if scenario not in spec.scenarios:
                continue
            with _clock() as unlearn_cost:
                result = spec.module.unlearn(
                    setup.original, splits, configs.get(name, profile.name), device=device, seed=0
                )
            with _clock() as score_cost:
                scorer.scored(result.model, result.cost.seconds, result.cost.stored_bytes)
            row = {"scenario": scenario, "method": name, "unlearn": unlearn_cost, "score": score_cost}
            out["pairs"].append(row)
            print(row, flush=True)
            write_results(f"compare_pair_cost_{profile.name}", out)  # after every pair: a long run keeps its part
    out["load_after"] = list(os.getloadavg())
    print(f"wrote {write_results(f'compare_pair_cost_{profile.name}', out)}")
    return 0


@contextmanager
def _clock() -> Iterator[dict[str, float]]:
    """Wall-clock and process CPU seconds of the block, filled in when it ends."""
    cost: dict[str, float] = {}
    wall, cpu = time.perf_counter(), time.process_time()
    yield cost
    cost["wall_s"], cost["cpu_s"] = round(time.perf_counter() - wall, 1), round(time.process_time() - cpu, 1)


def _machine(device: str) -> dict[str, object]:
    return {
        "device": device,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


if __name__ == "__main__":
    sys.exit(main())

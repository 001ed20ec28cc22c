"""``unlearnlab compare`` as a benchmark: its table, its wall-clock time and the machine's load while it ran.

    .venv/bin/python benchmarks/bench_compare.py --profile quick --seeds 2 [--scenario class random] [--methods ...]

Writes ``benchmarks/results/compare_<profile>.json`` (every scenario's full result, the command, seconds, load)
and ``compare_<profile>.md`` (the tables). Timings depend on what else the CPU runs: the load averages before
and after are recorded next to them.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import time

import torch
from common import write_results

from unlearnlab import compare as C


def main(argv: list[str] | None = None) -> int:
    """Run the comparisons and write the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="quick", choices=["quick", "full"])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--scenario", nargs="+", default=list(C.SCENARIOS), choices=list(C.SCENARIOS))
    parser.add_argument("--methods", nargs="+", help="registry names (default: every method for the scenario)")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    command = "benchmarks/bench_compare.py " + shlex.join(sys.argv[1:] if argv is None else argv)
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

"""Benchmark: Gated Knowledge Transfer (GKT) in notebook 04's setting, variant by variant, with a time profile.

Run: ``python benchmarks/bench_gkt.py --profile quick`` or ``--profile full`` (both sized for a 2-core CPU).
Writes ``benchmarks/results/gkt_<profile>.json``. One run, one machine, the notebook's own inputs: the cached
teacher and retrained model, DeepInversion probes of the forget class (the stopping rule's only signal, made by
the lesson's ``make_probes``, as in the notebook), and ``gkt.CONFIGS[profile]``. Each variant records retain and
forget accuracy on the real MNIST test set (final student and the model the stopping rule returned), where the
rule fired, wall-clock and CPU seconds, and the seconds spent per phase (generator step, drawing and labelling,
student steps, probes).

Variants: plain GKT (beta = 250), the entropy filter at 0.6 nats, beta = 0, the gate
opened to 0.5 (the forget class leaks in on purpose: does the rule catch it?), two ablations of the
course's changes (the paper's generator without the BN prior; the KL at temperature 1), and notebook 04's leak
study (``lessons.zero_shot.gkt_variants``: a long plan, cut where the forget class comes back, with and without
the attention term, at the other temperature, with the forget class masked out of the soft targets).
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import asdict, replace

from common import write_results

from unlearnlab import zoo
from unlearnlab.config import resolve
from unlearnlab.course.run import environment
from unlearnlab.data import Splits, class_splits, load_mnist
from unlearnlab.lessons.zero_shot import describe, gkt_variants, make_probes
from unlearnlab.methods import gkt as gkt_lib
from unlearnlab.metrics import unlearning_report
from unlearnlab.training import pick_device


def run_variant(teacher, splits: Splits, probes, config: gkt_lib.Config, device, seed: int) -> dict:
    """One GKT run: accuracies on the real test set, the rule's decision, time and where it went."""
    test, forget = splits.test, splits.forget_classes
    cpu, wall = time.process_time(), time.perf_counter()
    result = gkt_lib.unlearn(teacher, splits, config, device=device, seed=seed, probes=probes)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    final = unlearning_report(result.final_model, test, forget, device=device)
    chosen = (
        final if result.model is result.final_model else unlearning_report(result.model, test, forget, device=device)
    )
    checkpoints = result.checkpoints
    return {
        "retain_acc_pct": round(100 * final.retain_acc, 2),
        "forget_acc_pct": round(100 * final.forget_acc, 2),
        "rule_model_retain_acc_pct": round(100 * chosen.retain_acc, 2),
        "rule_model_forget_acc_pct": round(100 * chosen.forget_acc, 2),
        "stop_iteration": result.stop_iteration,  # None: the rule never fired
        "snapshot_iteration": result.snapshot_iteration,
        "num_iterations": config.num_iterations,
        "probe_rate_pct": {c.iteration: round(100 * c.probe_rate, 1) for c in checkpoints},
        "kept_fraction_pct": round(100 * result.kept_fraction, 1),
        "seconds": round(result.cost.seconds, 1),
        "wall_seconds": round(wall, 1),
        "cpu_seconds": round(cpu, 1),  # this process's CPU time: what an idle machine would take, one thread
        "seconds_per_phase": {k: round(v, 1) for k, v in result.phase_seconds.items()},
        "student_steps": len(result.history.step_loss),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="quick", choices=["quick", "full"])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--forget", type=int, nargs="+", default=[0], help="classes to forget (default: 0)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", nargs="+", help="run only these variants")
    args = parser.parse_args()
    os.environ.setdefault("UNLEARNLAB_RESUME", "0")  # a benchmark times the work: no saved run is resumed
    profile, device = resolve(args.profile), pick_device(args.device)
    forget = tuple(sorted(set(args.forget)))
    test = load_mnist(train=False)
    splits = class_splits(forget, train=test, test=test)  # GKT reads only the class ids; the test set evaluates
    teacher = zoo.pretrained("cnn_bn", profile, seed=args.seed, device=device).eval()
    gold = zoo.retrained(forget, "cnn_bn", profile, seed=args.seed, device=device).eval()
    config = gkt_lib.CONFIGS[profile.name]
    results: dict[str, object] = {
        "profile": profile.name,
        **environment(str(device)),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "forget_classes": list(forget),
        "config": asdict(config),
    }
    gold_report = unlearning_report(gold, test, forget, device=device)
    results["retrained"] = {
        "retain_acc_pct": round(100 * gold_report.retain_acc, 2),
        "forget_acc_pct": round(100 * gold_report.forget_acc, 2),
    }
    start = time.perf_counter()
    probes = make_probes(teacher, forget, profile, device=device, seed=args.seed).X
    results["probes"] = {"count": len(probes), "seconds": round(time.perf_counter() - start, 1)}
    variants = {
        "gkt": config,
        "gkt_entropy_0.6": replace(config, max_entropy=0.6),
        "gkt_beta0": replace(config, beta=0.0),
        "gkt_gate_0.5_leaky": replace(config, gate_threshold=0.5),
        "ablation_no_generator_prior": replace(config, bn_weight=0.0),
        "ablation_temperature_1": replace(config, temperature=1.0),
        # notebook 04's leak study: its five runs at its horizon (long; pick them with --only)
        **{f"leak: {describe(c)}": c for c in gkt_variants(profile).values()},
    }
    for name, variant in variants.items():
        if args.only and name not in args.only:
            continue
        results[name] = run_variant(teacher, splits, probes, variant, device, args.seed)
        print(f"{name}: {results[name]}", flush=True)
    out = write_results(f"gkt_{profile.name}", results)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

"""Benchmark: zero-shot unlearning with DeepInversion against retraining from scratch (notebook 05).

Run: ``python benchmarks/bench_zero_shot.py --profile quick`` (CPU) or ``--profile full`` (GPU).
Writes ``benchmarks/results/zero_shot_<profile>.json``. Everything is measured in one run, on one machine:
the zero-shot pipeline (DeepInversion images of the retained classes, then a fresh student) three ways, and
retraining from scratch without the forget class (the gold standard), timed the same way.

- ``zero_shot``: the package's way: every retained class in each batch, standardised BN statistics;
- ``zero_shot_one_class_per_batch``: the same images and steps, one class per batch;
- ``zero_shot_raw_bn``: the paper's raw BN statistics instead of standardised ones.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import torch
from common import write_results

from unlearnlab import zoo
from unlearnlab.config import resolve
from unlearnlab.course.run import environment
from unlearnlab.data import NUM_CLASSES, TensorData, concat, load_mnist
from unlearnlab.methods.deepinversion import synthesize
from unlearnlab.methods.zero_shot_student import CONFIGS, Config, train_student
from unlearnlab.metrics import unlearning_report
from unlearnlab.training import pick_device
from unlearnlab.zoo import TrainSpec, train_from_scratch


def zero_shot(
    teacher: torch.nn.Module,
    test: TensorData,
    forget: tuple[int, ...],
    config: Config,
    device: torch.device,
    seed: int,
    one_class_per_batch: bool = False,
) -> dict:
    """Synthesise the retained classes, distil a fresh student; its cost and accuracy on real test images."""
    retain = [c for c in range(NUM_CLASSES) if c not in forget]
    start = time.perf_counter()
    if one_class_per_batch:
        runs = [synthesize(teacher, [c], config.inversion, device=device, seed=seed) for c in retain]
    else:
        runs = [synthesize(teacher, retain, config.inversion, device=device, seed=seed)]
    synthetic = concat(*(run.data for run in runs))
    synthesis_seconds = time.perf_counter() - start
    student, history = train_student(teacher, synthetic, forget, config.student, device, seed)
    report = unlearning_report(student, test, forget, device=device)
    teacher_acc = sum(run.teacher_acc * len(run.data) for run in runs) / len(synthetic)
    return {
        "seconds": round(time.perf_counter() - start, 1),
        "synthesis_seconds": round(synthesis_seconds, 1),
        "student_seconds": round(history.seconds, 1),
        "images_per_class": config.inversion.images_per_class,
        "synthetic_images": len(synthetic),
        "images_per_second": round(len(synthetic) / synthesis_seconds, 1),
        "teacher_acc_on_synthetic_pct": round(100 * teacher_acc, 2),
        "retain_acc_pct": round(100 * report.retain_acc, 2),
        "forget_acc_pct": round(100 * report.forget_acc, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="quick", choices=["quick", "full"])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--forget", type=int, nargs="+", default=[0], help="classes to forget (default: 0)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    profile, device = resolve(args.profile), pick_device(args.device)
    forget = tuple(sorted(set(args.forget)))
    config = CONFIGS[profile.name]
    test = load_mnist(train=False)
    teacher = zoo.pretrained("cnn_bn", profile, seed=args.seed, device=device)
    synthesize(teacher, [1], replace(config.inversion, images_per_class=2, steps=2), device=device)  # warm-up
    results: dict[str, object] = {"profile": profile.name, **environment(str(device)), "forget_classes": list(forget)}

    raw = replace(config, inversion=replace(config.inversion, standardise_bn=False))
    variants = {
        "zero_shot": (config, False),
        "zero_shot_one_class_per_batch": (config, True),
        "zero_shot_raw_bn": (raw, False),
    }
    for name, (variant, one_class_per_batch) in variants.items():
        results[name] = zero_shot(teacher, test, forget, variant, device, args.seed, one_class_per_batch)
        print(f"{name}: {results[name]}", flush=True)

    spec = TrainSpec.from_profile("cnn_bn", profile, args.seed, exclude_classes=forget)
    gold, seconds = train_from_scratch(spec, device)
    report = unlearning_report(gold, test, forget, device=device)
    results["retrain_from_scratch"] = {
        "seconds": round(seconds, 1),
        "epochs": spec.num_epochs,
        "retain_acc_pct": round(100 * report.retain_acc, 2),
        "forget_acc_pct": round(100 * report.forget_acc, 2),
    }
    print("retrain_from_scratch:", results["retrain_from_scratch"], flush=True)
    results["zero_shot_over_retrain_time"] = round(results["zero_shot"]["seconds"] / seconds, 2)

    out = write_results(f"zero_shot_{profile.name}", results)
    print(f"zero-shot took {results['zero_shot_over_retrain_time']}x the time of retraining; wrote {out}")


if __name__ == "__main__":
    main()

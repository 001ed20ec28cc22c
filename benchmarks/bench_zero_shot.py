"""Benchmark: zero-shot unlearning with DeepInversion against retraining from scratch (notebook 05).

Run: ``python benchmarks/bench_zero_shot.py --profile quick`` (CPU) or ``--profile full`` (GPU).
Writes ``benchmarks/results/zero_shot_<profile>.json``. Everything is measured in one run, on one machine:

1. DeepInversion throughput: the package's batches (every retained class in one batch) against one class at a
   time, with the same number of images and steps each;
2. the end-to-end zero-shot pipeline (synthesis + student), its retain and forget accuracy on real test images;
3. the same pipeline with the paper's raw BN statistics instead of the course's standardised ones;
4. retraining from scratch without the forget class (the gold standard), timed the same way.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import torch

from unlearnlab import zoo
from unlearnlab.config import resolve
from unlearnlab.course.run import environment
from unlearnlab.data import NUM_CLASSES, class_splits, load_mnist
from unlearnlab.methods.deepinversion import InversionConfig, synthesize
from unlearnlab.methods.zero_shot_student import CONFIGS, ZeroShotConfig, deepinversion_unlearn
from unlearnlab.metrics import unlearning_report
from unlearnlab.training import pick_device
from unlearnlab.zoo import TrainSpec, train_from_scratch

RESULTS = Path(__file__).resolve().parent / "results"


def throughput(teacher: torch.nn.Module, classes: list[int], config: InversionConfig, device: torch.device) -> dict:
    """Images per second, all classes in one batch against one class per batch (same images, same steps)."""
    synthesize(teacher, classes[:1], replace(config, steps=2), device=device)  # warm-up (kernels, allocator)
    batched = synthesize(teacher, classes, config, device=device)
    start = time.perf_counter()
    for c in classes:
        synthesize(teacher, [c], config, device=device)
    one_by_one = len(classes) * config.images_per_class / (time.perf_counter() - start)
    return {
        "images": len(batched.data),
        "steps": config.steps,
        "all_classes_per_batch_images_per_second": round(batched.images_per_second, 1),
        "one_class_per_batch_images_per_second": round(one_by_one, 1),
        "speedup": round(batched.images_per_second / one_by_one, 2),
    }


def zero_shot(teacher: torch.nn.Module, splits, config: ZeroShotConfig, device: torch.device, seed: int) -> dict:
    """Run the zero-shot pipeline once; its cost and its accuracy on real test images."""
    result = deepinversion_unlearn(teacher, splits, config, device=device, seed=seed)
    synthesis = result.extras["synthesis"]
    report = unlearning_report(result.model, splits.test, splits.forget_classes, device=device)
    return {
        "seconds": round(result.cost.seconds, 1),
        "synthesis_seconds": round(synthesis.seconds, 1),
        "student_seconds": round(result.history.seconds, 1),
        "images_per_class": config.inversion.images_per_class,
        "synthetic_images": len(synthesis.data),
        "images_per_second": round(synthesis.images_per_second, 1),
        "teacher_acc_on_synthetic_pct": round(100 * synthesis.teacher_acc, 2),
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
    forget = tuple(args.forget)
    retain = [c for c in range(NUM_CLASSES) if c not in forget]
    config = CONFIGS[profile.name]
    splits = class_splits(forget, load_mnist(train=True), load_mnist(train=False), profile.train_subset, args.seed)
    teacher = zoo.pretrained("cnn_bn", profile, seed=args.seed, device=device)
    results: dict[str, object] = {"profile": profile.name, **environment(str(device)), "forget_classes": list(forget)}

    probe = replace(config.inversion, images_per_class=config.inversion.batch_per_class, steps=20)
    results["deepinversion_throughput"] = throughput(teacher, retain, probe, device)
    print("throughput:", results["deepinversion_throughput"], flush=True)

    results["zero_shot"] = zero_shot(teacher, splits, config, device, args.seed)
    print("zero-shot (standardised BN statistics):", results["zero_shot"], flush=True)
    raw = replace(config, inversion=replace(config.inversion, standardise_bn=False))
    results["zero_shot_raw_bn"] = zero_shot(teacher, splits, raw, device, args.seed)
    print("zero-shot (the paper's raw BN statistics):", results["zero_shot_raw_bn"], flush=True)

    spec = TrainSpec.from_profile("cnn_bn", profile, args.seed, exclude_classes=forget)
    gold, seconds = train_from_scratch(spec, device)
    report = unlearning_report(gold, splits.test, forget, device=device)
    results["retrain_from_scratch"] = {
        "seconds": round(seconds, 1),
        "train_images": len(splits.retain),
        "epochs": spec.num_epochs,
        "retain_acc_pct": round(100 * report.retain_acc, 2),
        "forget_acc_pct": round(100 * report.forget_acc, 2),
    }
    print("retrain from scratch:", results["retrain_from_scratch"], flush=True)
    results["zero_shot_over_retrain_time"] = round(results["zero_shot"]["seconds"] / seconds, 2)

    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"zero_shot_{profile.name}.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"zero-shot took {results['zero_shot_over_retrain_time']}x the time of retraining; wrote {out}")


if __name__ == "__main__":
    main()

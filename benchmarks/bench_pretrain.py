"""Benchmark: pretraining the course CNN per profile (time, test accuracy), the batch loader's speed, the
evaluation batch size (images per second of inference at several batch sizes, against ``data.EVAL_BATCH``) and
the weight layout (training and inference speed of channels-last weights, ``build_model``'s, against contiguous).

Run: ``python benchmarks/bench_pretrain.py --profile quick`` (CPU) or ``--profile full`` (GPU).
Writes ``benchmarks/results/pretrain_<profile>.json``. Everything in one run, on one machine, side by side.
"""

from __future__ import annotations

import argparse
import time

import torch
from common import write_results
from torch.utils.data import DataLoader, TensorDataset

from unlearnlab.config import resolve
from unlearnlab.course.run import environment
from unlearnlab.data import EVAL_BATCH, BatchLoader, load_mnist, make_loader
from unlearnlab.metrics import evaluate
from unlearnlab.models import build_model
from unlearnlab.training import fit, pick_device, predict
from unlearnlab.zoo import TrainSpec, train_from_scratch


def best_seconds(work, repeats: int = 3) -> float:
    """Best time of ``repeats`` calls of ``work()``, after one warm-up call."""
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times[1:])


def loader_seconds(loader) -> float:
    """Best time of a pass through every batch of ``loader``."""
    return best_seconds(lambda: [None for _ in loader])


def eval_images_per_second(model_name: str, test, device, batch_sizes=(32, 64, 128, 256, 512, 1000)) -> dict:
    """Inference speed of ``model_name`` on ``test`` (images per second, best of 3 passes) per batch size."""
    model = build_model(model_name).to(device)
    speeds = {}
    for batch_size in batch_sizes:
        loader = make_loader(test, batch_size)
        speeds[str(batch_size)] = round(len(test) / best_seconds(lambda loader=loader: predict(model, loader, device)))
    return speeds


def layout_images_per_second(model_name: str, train, test, device, batch_size: int) -> dict:
    """Training (one epoch of ``train``) and inference (``test``) images per second, best of 3, per weight layout."""
    speeds = {}
    for layout in (torch.contiguous_format, torch.channels_last):
        model = build_model(model_name).to(memory_format=layout)
        loader = make_loader(train, batch_size, shuffle=True)
        train_s = best_seconds(lambda model=model, loader=loader: fit(model, loader, num_epochs=1, device=device))
        eval_s = best_seconds(lambda model=model: predict(model, make_loader(test), device))
        speeds[str(layout).removeprefix("torch.")] = {
            "train": round(len(train) / train_s),
            "eval": round(len(test) / eval_s),
        }
    return speeds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--profile", default="quick", choices=["quick", "full"])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--models", nargs="*", default=["cnn_bn", "cnn"], help="models to pretrain (none: skip)")
    args = parser.parse_args()
    profile, device = resolve(args.profile), pick_device(args.device)
    train, test = load_mnist(train=True), load_mnist(train=False)

    batch_loader = loader_seconds(BatchLoader(train, profile.batch_size, shuffle=True))
    data_loader = loader_seconds(DataLoader(TensorDataset(train.X, train.y), profile.batch_size, shuffle=True))
    results = {
        "profile": profile.name,
        **environment(str(device)),
        "models": {},
        "eval_images_per_second": {"eval_batch": EVAL_BATCH, **eval_images_per_second("cnn_bn", test, device)},
        "layout_images_per_second": layout_images_per_second(
            "cnn_bn", train.subset(slice(0, 5_120)), test, device, profile.batch_size
        ),
        "loader_epoch_seconds": {
            "BatchLoader": round(batch_loader, 3),
            "DataLoader": round(data_loader, 3),
            "speedup": round(data_loader / batch_loader, 1),
        },
    }
    for name in args.models:
        spec = TrainSpec.from_profile(name, profile)
        model, seconds = train_from_scratch(spec, device)
        accuracy = evaluate(model, make_loader(test), device).accuracy
        results["models"][name] = {
            "train_seconds": round(seconds, 1),
            "test_acc_pct": round(100 * accuracy, 2),
            "train_images": spec.train_subset or len(train),
            "epochs": spec.num_epochs,
        }
        print(f"{name}: {100 * accuracy:.2f} % test accuracy, trained in {seconds:.0f} s on {results['device']}")
    out = write_results(f"pretrain_{profile.name}", results)
    print(f"loader epoch: BatchLoader {batch_loader:.2f} s, DataLoader {data_loader:.2f} s; wrote {out}")


if __name__ == "__main__":
    main()

"""Benchmark: where does membership inference see the forget set? Original model against retrained (notebook 06).

Run: ``python benchmarks/bench_mia.py`` (quick, one CPU thread per run). Writes ``benchmarks/results/mia_quick.json``.

For each setting and seed: a random 10 % of a stratified training subset is the forget set. The original model
is trained on the whole subset, the retrained one (the gold standard) on the rest only, with the same recipe
and seed. Members = the forget set, non-members = the test images (held-out images of the same classes). Each
model gets the starting kit's ``simple_mia`` score, the loss-threshold AUC and TPR at 1 % FPR, SalUn's
MIA-efficacy and its accuracies. The question: in which setting is the original model's score clearly above
the retrained models' band (Avadhani, *Machine Unlearning*: 0.578 against about 0.50 on CIFAR-10)?

- ``mnist_quick``: MNIST with the course's quick recipe (2 epochs, one-cycle Adam at 3e-3), a 10,000-image subset;
- ``fashion_quick``: Fashion-MNIST with the course's quick recipe;
- ``mnist_memorise``: MNIST, a memorising recipe: 4,000 images, 20 epochs, same optimiser, no regularisation;
- ``fashion_memorise``: Fashion-MNIST with the same memorising recipe;
- ``cifar10_resnet18`` (only when named: it downloads CIFAR-10 and wants a GPU): Avadhani's setting, ResNet-18
  (:func:`unlearnlab.models.resnet18`) on all 50,000 CIFAR-10 images, 15 epochs of one-cycle Adam at 1e-3, e.g.
  ``python benchmarks/bench_mia.py --settings cifar10_resnet18 --device cuda --out mia_cifar10``. Unmeasured
  here (this project has had no GPU): Avadhani reports 98.0 % train / 84 % test and MIA 0.578 for the
  challenge's ResNet-18.

``python benchmarks/bench_mia.py --methods [--profile quick]`` (writes ``mia_methods_<profile>.json``) takes the
chosen setting from lesson 06 (``unlearnlab.lessons.mia_pruning.MEMORISING``: the original model and the
retrained models of the profile's seeds, cached by the zoo) and runs every method of notebook 06 under the
profile's config on the same forget set: each one's ``simple_mia``, threshold AUC, MIA-efficacy,
retain/forget/test accuracy and time against the retrained models' mean training time, one JSON; and the
sparsity sweep of prune-then-fine-tune.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
from common import write_results

from unlearnlab import mia, zoo
from unlearnlab.config import QUICK, resolve
from unlearnlab.course.run import environment
from unlearnlab.data import Splits, TensorData, concat, load_dataset, make_loader, random_splits
from unlearnlab.lessons import mia_pruning as lesson
from unlearnlab.methods import finetune, gradient_ascent, l1_sparse, pruning, random_labels
from unlearnlab.metrics import evaluate
from unlearnlab.models import build_model
from unlearnlab.training import fit, pick_device, seed_everything


@dataclass(frozen=True)
class Setting:
    """One base-model recipe and its data."""

    dataset: str  # "mnist", "fashion_mnist" or "cifar10"
    train_subset: int  # stratified training images (original = all of them, retrained = all but the forget set)
    num_epochs: int
    model: str = "cnn"  # the course CNN without BatchNorm: no regulariser at all
    forget_fraction: float = 0.1  # random forgetting: this share of the training subset
    lr: float = QUICK.lr  # peak Adam learning rate, one-cycle schedule (as the zoo's base models)
    batch_size: int = QUICK.batch_size


SETTINGS = {
    "mnist_quick": Setting("mnist", train_subset=10_000, num_epochs=QUICK.num_epochs),
    "fashion_quick": Setting("fashion_mnist", train_subset=10_000, num_epochs=QUICK.num_epochs),
    "mnist_memorise": Setting("mnist", train_subset=4_000, num_epochs=20),
    "fashion_memorise": Setting("fashion_mnist", train_subset=4_000, num_epochs=20),
    # Avadhani's own setting (internet and a GPU): ResNet-18 on all of CIFAR-10; not in the default list
    "cifar10_resnet18": Setting("cifar10", train_subset=50_000, num_epochs=15, model="resnet18", lr=1e-3),
}
OFFLINE_SETTINGS = [name for name, s in SETTINGS.items() if s.dataset != "cifar10"]  # the files CI has


def train(setting: Setting, data: TensorData, seed: int, device: torch.device) -> tuple[torch.nn.Module, float]:
    """A fresh model trained on ``data`` with the setting's recipe; returns it and the training seconds."""
    seed_everything(seed)
    model = build_model(setting.model)
    loader = make_loader(data, setting.batch_size, shuffle=True, seed=seed)
    history = fit(model, loader, num_epochs=setting.num_epochs, lr=setting.lr, device=device, lr_schedule="onecycle")
    return model, history.seconds


def attack(model: torch.nn.Module, splits: Splits, device: torch.device, seed: int) -> dict:
    """Every attack and accuracy of one model: forget set = members, test set = non-members."""
    start = time.perf_counter()
    member = mia.per_sample_losses(model, splits.forget, device)
    nonmember = mia.per_sample_losses(model, splits.test, device)
    roc = mia.threshold_attack(member, nonmember, max_fpr=0.01)
    efficacy = mia.mia_efficacy(model, splits.retain, splits.test, splits.forget, device=device, seed=seed)
    accuracy = {
        name: round(100 * evaluate(model, make_loader(data), device).accuracy, 2)
        for name, data in (("retain", splits.retain), ("forget", splits.forget), ("test", splits.test))
    }
    return {
        "simple_mia": round(mia.simple_mia(member, nonmember, seed=seed), 4),
        "threshold_auc": round(roc.auc, 4),
        "tpr_at_1pct_fpr": round(roc.tpr_at_low_fpr, 4),
        "mia_efficacy": round(efficacy, 4),
        "mean_loss": {"forget": round(float(member.mean()), 4), "test": round(float(nonmember.mean()), 4)},
        "acc_pct": accuracy,
        "attack_seconds": round(time.perf_counter() - start, 1),
    }


def summary(runs: list[dict], key: str) -> dict:
    """Per-seed values of ``key`` with their mean and (sample) standard deviation."""
    values = [run[key] for run in runs]
    std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    return {"per_seed": values, "mean": round(float(np.mean(values)), 4), "std": round(std, 4)}


METHODS = {  # notebook 06's methods, in the order of its table
    "finetune": finetune,
    "gradient_ascent": gradient_ascent,
    "random_labels": random_labels,
    "l1_sparse": l1_sparse,
    "prune": pruning,
}
SWEEP = (0.5, 0.8, 0.9, 0.95, 0.98)  # sparsities of the prune-then-fine-tune sweep


def method_rows(profile: str, device: torch.device, seed: int) -> dict:
    """The original, the retrained band and every method on the memorising recipe's forget set (zoo models)."""
    splits = lesson.memorising_splits()
    specs = lesson.memorising_specs(resolve(profile))
    original = zoo.get_spec(specs[0], device)
    retrained = [zoo.get_spec(spec, device) for spec in specs[1:]]
    retrain_seconds = float(np.mean([entry.seconds for entry in retrained]))
    rows = {"original": {"train_seconds": round(original.seconds, 1), **attack(original.model, splits, device, 0)}}
    for spec, entry in zip(specs[1:], retrained):
        rows[f"retrained_seed{spec.seed}"] = {
            "train_seconds": round(entry.seconds, 1),
            **attack(entry.model, splits, device, 0),
        }
    for name, module in METHODS.items():
        result = module.unlearn(original.model, splits, profile, device=device, seed=seed)
        rows[name] = {
            "config": asdict(module.CONFIGS[profile]),
            "seconds": round(result.cost.seconds, 2),
            "time_ratio": round(result.cost.seconds / retrain_seconds, 4),
            **attack(result.model, splits, device, 0),
        }
        print(f"{name}: {rows[name]}", flush=True)
    sweep = {}
    for sparsity in SWEEP:
        one_shot = pruning.global_magnitude_prune(original.model, sparsity)
        config = pruning.Config(sparsity=sparsity, num_epochs=pruning.CONFIGS[profile].num_epochs)
        tuned = pruning.unlearn(original.model, splits, config, device=device, seed=seed)
        sweep[str(sparsity)] = {
            name: asdict(mia.membership_report(net, splits.forget, splits.retain, splits.test, device=device))
            for name, net in (("one_shot", one_shot), ("fine_tuned", tuned.model))
        }
        print(f"sparsity {sparsity}: {sweep[str(sparsity)]}", flush=True)
    band = [rows[k]["simple_mia"] for k in rows if k.startswith("retrained")]
    return {
        "recipe": asdict(lesson.MEMORISING),
        "forget_size": len(splits.forget),
        "retrained_seeds": [spec.seed for spec in specs[1:]],
        "retrain_seconds_mean": round(retrain_seconds, 1),
        "retrained_simple_mia": {"min": min(band), "max": max(band), "mean": round(float(np.mean(band)), 4)},
        "rows": rows,
        "sparsity_sweep": sweep,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--settings", nargs="+", default=OFFLINE_SETTINGS, choices=list(SETTINGS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the quick profile's budget: 1)")
    parser.add_argument("--out", default="mia_quick", help="results file stem under benchmarks/results/")
    parser.add_argument("--methods", action="store_true", help="compare notebook 06's methods on the zoo models")
    parser.add_argument("--profile", default="quick", choices=["quick", "full"], help="with --methods")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    if args.methods:
        start = time.perf_counter()
        results = {"profile": args.profile, **environment(str(device)), "torch_threads": args.threads}
        results |= method_rows(args.profile, device, args.seeds[0])
        results["seconds"] = round(time.perf_counter() - start, 1)
        print(f"wrote {write_results(f'mia_methods_{args.profile}', results)}")
        return
    results = {
        "profile": "quick",
        **environment(str(device)),
        "torch_threads": args.threads,
        "members": "forget set (random 10 % of the training subset)",
        "non_members": "the 10,000 test images (balanced to the forget set's size by a seeded subsample)",
        "settings": {},
    }
    for name in args.settings:
        setting = SETTINGS[name]
        train_set = load_dataset(setting.dataset, train=True)
        test_set = load_dataset(setting.dataset, train=False)
        runs: dict[str, list[dict]] = {"original": [], "retrained": []}
        start = time.perf_counter()
        for seed in args.seeds:
            splits = random_splits(setting.forget_fraction, train_set, test_set, setting.train_subset, seed=seed)
            for role, data in (("original", concat(splits.retain, splits.forget)), ("retrained", splits.retain)):
                model, seconds = train(setting, data, seed, device)
                runs[role].append(
                    {"seed": seed, "train_seconds": round(seconds, 1), **attack(model, splits, device, seed)}
                )
                row = runs[role][-1]
                print(
                    f"{name} seed {seed} {role:9s}: MIA {row['simple_mia']:.3f}, AUC {row['threshold_auc']:.3f}, "
                    f"TPR@1%FPR {row['tpr_at_1pct_fpr']:.3f}, efficacy {row['mia_efficacy']:.3f}, "
                    f"acc retain/forget/test {row['acc_pct']['retain']}/{row['acc_pct']['forget']}/"
                    f"{row['acc_pct']['test']} %, trained in {seconds:.0f} s",
                    flush=True,
                )
        results["settings"][name] = {
            "recipe": asdict(setting),
            "forget_size": len(splits.forget),
            "seconds": round(time.perf_counter() - start, 1),
            "runs": runs,
            "summary": {
                role: {
                    key: summary(role_runs, key)
                    for key in ("simple_mia", "threshold_auc", "tpr_at_1pct_fpr", "mia_efficacy", "train_seconds")
                }
                | {
                    f"{split}_acc_pct": summary([r["acc_pct"] for r in role_runs], split)
                    for split in ("retain", "forget", "test")
                }
                for role, role_runs in runs.items()
            },
        }
        out = write_results(args.out, results)  # after every setting, so a long run keeps what it measured
        mean = {role: results["settings"][name]["summary"][role]["simple_mia"] for role in runs}
        print(
            f"{name}: simple_mia original {mean['original']['mean']:.3f} +- {mean['original']['std']:.3f}, "
            f"retrained {mean['retrained']['mean']:.3f} +- {mean['retrained']['std']:.3f}; wrote {out}",
            flush=True,
        )


if __name__ == "__main__":
    main()

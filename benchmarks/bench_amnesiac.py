"""Benchmark: amnesiac and partial amnesiac unlearning (notebook 07), storage against accuracy.

Run: ``python benchmarks/bench_amnesiac.py --profile quick`` (CPU) or ``--profile full`` (GPU).
Writes ``benchmarks/results/amnesiac_<profile>.json``. The notebook's ledger runs (``lessons.amnesiac.ledger_setups``:
the course CNN, LeNet-5 and the MLP with plain SGD, the CNN with Adam; all other classes plus a few hundred 6s,
which are the forget set, dealt into 10 % of the batches), cached like the notebook's. For each architecture:
the original and the model retrained without the forget images (same initial weights, same batches), the full
undo with and without a one-epoch repair, and the partial undo (no repair) at each kept fraction k of every
layer, and of the output layer alone. Each row: bytes stored, accuracy on the forget set, on the test images
of class 6 and of the other classes, simple_mia (forget set against held-out training 6s), seconds. For the
CNN with SGD and Adam, the full undo's distance to the retrained model relative to the original's.

Two more parts (``--parts``): ``q3``, which choices of layers and k pass every condition of Q3 (the storage budget,
the accuracies, the MIA score's and the threshold AUC's bands), each with its measured values; ``graves``, Graves
et al.'s MNIST setting made cheap (the course CNN, 100 threes shuffled among every other training image, Adam at
1e-3, one epoch): where their 95.2 % right after the full undo comes from.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import asdict

import torch
from common import write_results

from unlearnlab.config import Profile, resolve
from unlearnlab.course.run import environment
from unlearnlab.lessons import amnesiac as lesson
from unlearnlab.methods import amnesiac
from unlearnlab.methods.ledger import LedgerSetup, ledger_run
from unlearnlab.training import pick_device

FRACTIONS = {
    "quick": (1.0, 0.3, 0.1, 0.03, 0.01, 0.003, 0.001, 0.0003),
    "full": (1.0, 0.3, 0.1, 0.03, 0.01, 0.003, 0.001, 0.0003, 0.0001),
}
OUTPUT_LAYER = {"cnn": ("fc3",), "lenet5": ("fc3",), "mlp": ("net.5",)}
Q3_CHOICES = (  # (layers, kept fractions) tried against Q3's conditions; None: every layer
    (None, (1.0, 0.01, 0.003, 0.001, 0.0003, 0.0001)),
    (("fc3",), (1.0, 0.3, 0.1, 0.03, 0.01, 0.003, 0.001)),
    (("fc2", "fc3"), (0.01, 0.003, 0.001)),
    (("conv1", "conv2"), (0.01,)),
)
GRAVES = LedgerSetup(  # Graves et al. (2021), MNIST: 100 threes among all the other images, Adam
    forget_class=3,
    forget_size=100,
    others=None,
    affected_share=None,
    optimizer="adam",
    lr=1e-3,
    num_epochs=1,
    held_out=100,
    test_subset=None,
)


def bench(profile: Profile, device: torch.device) -> dict:
    """Every measurement of the sweep, as plain data."""
    results: dict = {}
    for name, setup in lesson.ledger_setups(profile).items():
        start = time.perf_counter()
        run = ledger_run(setup, device)
        load_seconds = time.perf_counter() - start
        rows = [
            lesson.measure(run, run.model, "original", seconds=run.seconds, device=device),
            lesson.measure(run, run.retrained, "retrained", seconds=run.retrain_seconds, device=device),
        ]
        repaired = amnesiac.unlearn(
            run.model, run.data.splits, amnesiac.Config(repair_epochs=1, fraction=1.0), ledger=run.ledger, device=device
        )
        rows.append(
            lesson.measure(
                run, repaired.model, "full + 1 repair epoch", repaired.cost.stored_bytes, repaired.cost.seconds, device
            )
        )
        rows += lesson.sweep(run, FRACTIONS[profile.name], device=device)
        for row in lesson.sweep(run, (1.0, 0.1, 0.01), layers=OUTPUT_LAYER[setup.model], device=device):
            row.name = f"output layer, {row.name}"
            rows.append(row)
        full = amnesiac.unlearn(run.model, run.data.splits, amnesiac.Config(fraction=1.0), ledger=run.ledger)
        results[name] = {
            "setup": asdict(setup),
            "recorded_steps": len(run.ledger.steps),
            "total_steps": run.ledger.total_steps,
            "ledger_bytes": run.ledger.nbytes,
            "bytes_per_step": run.ledger.bytes_per_step(),
            "cache_load_seconds": load_seconds,
            "undo_distance_ratio": lesson.relative_distance(full.model, run.retrained, run.model),
            "rows": [asdict(r) for r in rows],
        }
        print(name, flush=True)
        print(lesson.outcome_table(rows), flush=True)
    return results


def q3_grid(profile: Profile, device: torch.device) -> list[dict]:
    """Each of :data:`Q3_CHOICES` undone on the lesson's CNN run and checked against every Q3 condition."""
    run = ledger_run(lesson.ledger_setups(profile)["cnn"], device)
    rows = []
    for layers, fractions in Q3_CHOICES:
        for fraction in fractions:
            config = amnesiac.Config(fraction=fraction, layers=layers)
            model = amnesiac.unlearn(run.model, run.data.splits, config, ledger=run.ledger, device=device).model
            conditions = [lesson.budget_condition(run, config, profile), *lesson.run_conditions(model, run, profile)]
            failed = [f"{c.text.split(' (')[0]}: {c.detail}" for c in conditions if not c.ok]
            rows.append({"layers": layers, "fraction": fraction, "passes": not failed, "failed": failed})
            print(
                f"{'+'.join(layers or ('every layer',)):12s} k = {fraction:<7g} {'PASS' if not failed else 'fail'}: "
                + "; ".join(failed),
                flush=True,
            )
    return rows


def graves(device: torch.device) -> dict:
    """Graves et al.'s setting (:data:`GRAVES`): the original, the retrained model, the full undo with and without a
    repair epoch over every retain image, and the output layer's top 1 % undone."""
    run = ledger_run(GRAVES, device)
    rows = list(lesson.reference_outcomes(run, device))
    for name, config in (
        ("full undo, no repair", amnesiac.Config(fraction=1.0)),
        ("full undo + 1 repair epoch", amnesiac.Config(fraction=1.0, repair_epochs=1)),
        ("fc3 top 1 %, no repair", amnesiac.Config(fraction=0.01, layers=("fc3",))),
    ):
        rows.append(lesson.undo_outcome(run, config, name, device=device))
    print(lesson.describe_run(run), lesson.outcome_table(rows), sep="\n", flush=True)
    return {
        "setup": asdict(GRAVES),
        "recorded_steps": len(run.ledger.steps),
        "total_steps": run.ledger.total_steps,
        "rows": [asdict(r) for r in rows],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="quick", choices=["quick", "full"])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--parts", nargs="+", default=["sweep", "q3", "graves"], choices=["sweep", "q3", "graves"])
    parser.add_argument("--name", default="", help="results file suffix (a partial run should not overwrite all)")
    args = parser.parse_args()
    profile, device = resolve(args.profile), pick_device(args.device)
    start = time.perf_counter()
    parts = {
        "runs": lambda: bench(profile, device),
        "q3": lambda: q3_grid(profile, device),
        "graves": lambda: graves(device),
    }
    results = {key: build() for key, build in parts.items() if ("sweep" if key == "runs" else key) in args.parts}
    out = write_results(
        f"amnesiac_{profile.name}{args.name}",
        {
            "profile": profile.name,
            "device": str(device),
            "torch_threads": torch.get_num_threads(),
            "cpu_count": os.cpu_count(),
            "environment": environment(str(device)),
            "seconds": time.perf_counter() - start,
            **results,
        },
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

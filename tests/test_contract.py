"""The method contract, kept by every registered method: one call, input untouched, typed result, positive cost,
a model handed back in one state; and every registered method run through ``unlearnlab compare``'s loop."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from unlearnlab import compare
from unlearnlab.config import QUICK
from unlearnlab.data import Splits, TensorData, class_splits, per_class_subset, random_splits
from unlearnlab.methods import gkt as gkt_lib
from unlearnlab.methods import ledger, noise, registry, unsir
from unlearnlab.methods import zero_shot_student as zs
from unlearnlab.methods.base import UnlearningResult
from unlearnlab.methods.deepinversion import InversionConfig
from unlearnlab.methods.ledger import Ledger
from unlearnlab.models import build_model

FORGET = (6,)

# tiny configs for the methods whose quick profile is too long for a unit test; the others run "quick" as is
TINY = {
    "emmn": replace(noise.CONFIGS["quick"], noise_per_class=2, noise_steps=2),
    "unsir": replace(unsir.CONFIGS["quick"], noise_per_class=2, noise_steps=2, real_retain_per_class=2),
    "gkt": replace(
        gkt_lib.CONFIGS["quick"], num_iterations=2, batch_size=8, student_steps=1, check_every=1, min_iterations=1
    ),
    "deepinversion": zs.Config(
        InversionConfig(images_per_class=2, batch_per_class=2, steps=2), zs.StudentConfig(num_epochs=1)
    ),
}


@pytest.fixture(scope="module", autouse=True)
def own_cache(tmp_path_factory):
    """A cache of this module's own: the checkpoints of runs on untrained models (GKT, DeepInversion, compare's
    pairs) and the tiny ledger runs stay out of the shared cache."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("UNLEARNLAB_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture(scope="module")
def tiny(mnist_train) -> dict[str, Splits]:
    """Six training and six test images per class: class forgetting of 6, and random forgetting of 10 %."""
    train = per_class_subset(mnist_train, 6, seed=0)
    test = per_class_subset(mnist_train.subset(slice(10_000, 20_000)), 6, seed=0)
    return {
        "class": class_splits(FORGET, train=train, test=test),
        "random": random_splits(0.1, train=train, test=test, seed=0),
    }


def extra_inputs(spec: registry.MethodSpec, model: torch.nn.Module) -> dict[str, object]:
    """What a method needs beyond the contract: a one-step ledger for the amnesiac method."""
    extras: dict[str, object] = {}
    if "ledger" in spec.extra_inputs:
        update = {name: torch.full_like(p, 1e-3) for name, p in model.named_parameters()}
        extras["ledger"] = Ledger(steps=[0], updates=[update], total_steps=1)
    return extras


CASES = [(name, scenario) for name, spec in registry.METHODS.items() for scenario in spec.scenarios]


@pytest.mark.parametrize(("name", "scenario"), CASES, ids=[f"{n}-{s}" for n, s in CASES])
def test_every_method_keeps_the_contract(name: str, scenario: str, tiny: dict[str, Splits]) -> None:
    spec = registry.get(name)
    torch.manual_seed(0)
    model = build_model("cnn_bn").eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    grads_before = [p.requires_grad for p in model.parameters()]
    rng_before = torch.get_rng_state()

    result = spec.module.unlearn(
        model, tiny[scenario], TINY.get(name, "quick"), device="cpu", seed=0, **extra_inputs(spec, model)
    )

    after = model.state_dict()
    assert after.keys() == before.keys()
    assert all(torch.equal(after[k], v) for k, v in before.items()), "the input model's weights changed"
    assert [p.requires_grad for p in model.parameters()] == grads_before and not model.training
    assert torch.equal(torch.get_rng_state(), rng_before), "the method reseeded or drew from the global RNG"
    assert isinstance(result, UnlearningResult) and isinstance(result.model, torch.nn.Module)
    assert result.model is not model
    # the state the contract hands back, whatever the method froze on the way (relabel trains fc3 alone)
    assert all(p.requires_grad for p in result.model.parameters()) and not result.model.training
    assert result.cost.seconds > 0 and result.cost.stored_bytes >= 0
    assert isinstance(spec.module.Config(), spec.module.Config)
    assert set(spec.module.CONFIGS) >= {"quick", "full"}
    if not spec.needs_forget_data:  # the same result when the forget images are blanked out
        splits = tiny[scenario]
        blank = replace(splits, forget=TensorData(torch.zeros_like(splits.forget.X), splits.forget.y))
        again = spec.module.unlearn(
            model, blank, TINY.get(name, "quick"), device="cpu", seed=0, **extra_inputs(spec, model)
        )
        for key, value in result.model.state_dict().items():
            assert torch.equal(again.model.state_dict()[key], value), f"{name} read the forget images ({key})"


def test_registry_names_and_errors() -> None:
    assert registry.get("scrub").module.__name__ == "unlearnlab.methods.scrub"
    assert {"finetune", "gradient_ascent", "neggrad_plus", "random_labels", "salun", "scrub"} <= set(registry.METHODS)
    zero_shot = {n for n, spec in registry.METHODS.items() if spec.family == "zero-shot"}
    assert zero_shot == {"emmn", "gkt", "deepinversion"}
    assert not any(registry.METHODS[n].needs_forget_data for n in zero_shot)
    assert "gkt" in registry.names("class") and "gkt" not in registry.names("random")
    with pytest.raises(KeyError, match="registered ones are relabel, penalty"):
        registry.get("retrain")
    with pytest.raises(ValueError, match="unknown scenario"):
        registry.names("subclass")


@pytest.fixture(scope="module")
def ledger_setups() -> list[compare.SeedSetup]:
    """Two seeds of a tiny ledger-trained BatchNorm CNN (300 retained images, 60 of class 6), each with its ledger:
    what every registered method needs, the zero-shot ones a BatchNorm teacher and the amnesiac one the ledger."""
    setup = ledger.LedgerSetup(
        model="cnn_bn",
        forget_size=60,
        others=300,
        affected_share=0.5,
        optimizer="adam",
        lr=3e-3,
        batch_size=32,
        num_epochs=3,
        held_out=60,
        test_subset=200,
    )  # the original model knows class 6 (95 % of its test images), the retrained one does not: AIN is measured
    data = ledger.ledger_data(setup)  # shared by both seeds, as compare's seeds share their splits
    runs = {seed: ledger.train_with_ledger(replace(setup, seed=seed), "cpu", data) for seed in (0, 1)}
    return [
        compare.SeedSetup(seed, run.model, run.retrained, data.splits, stored={"ledger": run.ledger})
        for seed, run in runs.items()
    ]


def test_every_registered_method_runs_through_compare(ledger_setups: list[compare.SeedSetup]) -> None:
    methods = compare.pick_methods(None, "class")
    assert list(methods) == list(registry.METHODS)
    result = compare.run_compare(
        ledger_setups,
        methods,
        scenario="class",
        forget="class 6",
        configs=TINY,
        retrain_seconds=1.0,
        profile=QUICK,
        device=torch.device("cpu"),
    )
    assert [row.method for row in result.rows] == ["original", "retrained", *registry.METHODS]
    assert {row.method: row.errors | row.skipped for row in result.rows if row.errors or row.skipped} == {}
    assert all(row.seeds == [0, 1] for row in result.rows)
    assert result.row("amnesiac").mean["stored_bytes"] > 0  # it undid the stored ledger
    assert all(row.mean["ain"] is not None for row in result.rows[2:])  # the relearning probe ran on every model

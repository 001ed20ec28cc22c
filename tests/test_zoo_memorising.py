"""Notebook 06's zoo models: the memorising recipe's original and retrained models, cached like the MNIST ones."""

import torch

from unlearnlab import zoo
from unlearnlab.config import QUICK
from unlearnlab.data import concat, load_dataset, make_loader, stratified_subset
from unlearnlab.models import build_model
from unlearnlab.training import fit, seed_everything

TINY_RECIPE = zoo.MemorisingRecipe(model="mlp", train_subset=60, num_epochs=2, batch_size=16)


def test_the_mnist_models_keep_their_cache_keys():
    # the hashes of version 1's specs, from before the Fashion-MNIST fields were added: cached files stay valid
    assert zoo.TrainSpec.from_profile("cnn_bn", QUICK).key() == "cc6d7cb63d741821"
    assert zoo.TrainSpec.from_profile("cnn_bn", QUICK, exclude_classes=(6,)).key() == "a8cadef81258ea1b"
    keys = {zoo.memorising_spec(r, s).key() for r in (False, True) for s in (0, 1)}
    assert len(keys) == 4 and zoo.TrainSpec.from_profile("cnn_bn", QUICK).key() not in keys


def test_specs_per_profile_are_the_original_then_the_retrained_seeds():
    specs = zoo.memorising_specs("quick")
    assert [(s.exclude_random, s.seed) for s in specs] == [(0.0, 0), (0.1, 0), (0.1, 1), (0.1, 2)]
    assert len(zoo.memorising_specs("full")) == 1 + len(zoo.RETRAINED_SEEDS["full"]) >= 4
    assert {(s.dataset, s.split_seed, s.model) for s in specs} == {("fashion_mnist", 0, "cnn")}


def _by_hand(data, seed):
    seed_everything(seed)
    model = build_model("mlp")
    loader = make_loader(data, TINY_RECIPE.batch_size, shuffle=True, seed=seed)
    fit(model, loader, num_epochs=2, lr=TINY_RECIPE.lr, device="cpu", lr_schedule="onecycle")
    return model


def test_retrained_and_original_models_are_trained_on_the_splits_data(tmp_path, monkeypatch):
    monkeypatch.setenv("UNLEARNLAB_CACHE", str(tmp_path))
    splits = zoo.memorising_splits(TINY_RECIPE)
    assert len(splits.forget) == 6 and len(splits.retain) == 54 and len(splits.test) == 10_000
    retrained = zoo.get_spec(zoo.memorising_spec(True, 1, TINY_RECIPE), "cpu")
    reference = _by_hand(splits.retain, seed=1)  # the same data in the same order as the split's retain set
    assert all(
        torch.equal(a, b) for a, b in zip(retrained.model.state_dict().values(), reference.state_dict().values())
    )
    original = zoo.get_spec(zoo.memorising_spec(False, 0, TINY_RECIPE), "cpu").model
    subset = stratified_subset(load_dataset("fashion_mnist"), 60, seed=0)  # forget + retain, in subset order
    assert sorted(subset.y.tolist()) == sorted(concat(splits.retain, splits.forget).y.tolist())
    reference = _by_hand(subset, seed=0)
    assert all(torch.equal(a, b) for a, b in zip(original.state_dict().values(), reference.state_dict().values()))
    again = zoo.get_spec(zoo.memorising_spec(False, 0, TINY_RECIPE), "cpu")  # loaded from the cache
    assert again.path.is_file() and all(
        torch.equal(a, b) for a, b in zip(original.state_dict().values(), again.model.state_dict().values())
    )

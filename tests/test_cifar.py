"""The CIFAR-10 / ResNet-18 option (seed 003's setting), on small batch files the test writes in CIFAR-10's format:
reading, normalising, the offline error, and one membership-inference round trip through the course's code."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from unlearnlab import data as D
from unlearnlab import mia
from unlearnlab.data import DatasetNotFoundError, load_dataset, make_loader, random_splits
from unlearnlab.models import build_model
from unlearnlab.training import fit


def _write_fake_cifar(root: Path, per_batch: int = 20) -> dict[str, np.ndarray]:
    """Six batch files in torchvision's layout, random pixels, labels cycling through the ten classes."""
    folder = root / D.CIFAR_FOLDER
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    written = {}
    for name in D.CIFAR_BATCHES[True] + D.CIFAR_BATCHES[False]:
        data = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
        labels = [k % 10 for k in range(per_batch)]
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": data, b"labels": labels, b"batch_label": name.encode()}, f)
        written[name] = data
    return written


@pytest.fixture()
def fake_cifar(tmp_path, monkeypatch) -> dict[str, np.ndarray]:
    monkeypatch.setenv("UNLEARNLAB_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("UNLEARNLAB_CACHE", str(tmp_path / "cache"))
    return _write_fake_cifar(tmp_path / "data")


def test_reads_every_batch_in_order_and_normalises_each_channel(fake_cifar):
    train, test = load_dataset("cifar10", train=True), load_dataset("cifar10", train=False, download=False)
    assert train.X.shape == (100, 3, 32, 32) and test.X.shape == (20, 3, 32, 32)
    assert train.y.tolist() == [k % 10 for k in range(20)] * 5 and train.y.dtype == torch.long
    first = fake_cifar["data_batch_1"][0].reshape(3, 32, 32)  # channel-major rows, as CIFAR-10 stores them
    for c in range(3):
        expected = (first[c] / 255.0 - D.CIFAR_MEAN[c]) / D.CIFAR_STD[c]
        assert np.allclose(train.X[0, c].numpy(), expected, atol=1e-6)


def test_missing_or_broken_files_give_a_clear_error(tmp_path, monkeypatch, fake_cifar):
    monkeypatch.setenv("UNLEARNLAB_DATA", str(tmp_path / "elsewhere"))
    with pytest.raises(
        DatasetNotFoundError, match="(?s)CIFAR-10 not found: the files are not there.*elsewhere.cifar-10-batches-py"
    ):
        D.load_cifar10(download=False)
    monkeypatch.setenv("UNLEARNLAB_DATA", str(tmp_path / "data"))
    (tmp_path / "data" / D.CIFAR_FOLDER / "test_batch").write_bytes(b"not a pickle")
    with pytest.raises(DatasetNotFoundError, match="test_batch is not a CIFAR-10 batch file"):
        D.load_cifar10(train=False, download=False)


def test_resnet18_for_32_pixel_images_trains_and_feeds_the_attack(fake_cifar):
    model = build_model("resnet18")
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1)
    assert sum(p.numel() for p in model.parameters()) == 11_173_962  # ResNet-18's count with a 3x3 stem
    splits = random_splits(0.1, dataset="cifar10")  # the recipe's split, read through $UNLEARNLAB_DATA
    assert (len(splits.forget), len(splits.retain), len(splits.test)) == (10, 90, 20)
    before = [p.detach().clone() for p in model.parameters()]
    history = fit(model, make_loader(splits.retain, 30, shuffle=True, seed=0), num_epochs=1, device="cpu")
    assert len(history.step_loss) == 3 and any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    member = mia.per_sample_losses(model, splits.forget, "cpu")  # the attack's feature, on colour images
    with torch.no_grad():
        by_hand = F.cross_entropy(model.eval()(splits.forget.X).double(), splits.forget.y, reduction="none")
    assert np.allclose(member, by_hand.numpy(), rtol=1e-4, atol=1e-6)
    nonmember = mia.per_sample_losses(model, splits.test, "cpu")
    assert mia.simple_mia(member, nonmember) == mia.simple_mia(member, nonmember, seed=0)  # the default seed

import gzip
import shutil
from pathlib import Path

import pytest
import torch

from unlearnlab import data as D


def test_real_mnist_sizes_and_classes(mnist_train, mnist_test):
    assert len(mnist_train) == 60_000 and len(mnist_test) == 10_000
    assert mnist_train.X.shape == (60_000, 1, 28, 28) and mnist_train.X.dtype == torch.float32
    assert sorted(set(mnist_test.y.tolist())) == list(range(10))
    assert abs(float(mnist_train.X.mean())) < 0.01 and abs(float(mnist_train.X.std()) - 1) < 0.01  # normalised


def test_verify_files_all_ok():
    assert set(D.verify_files().values()) == {"ok"}


def test_relabel_is_a_view_that_leaves_the_original_untouched(mnist_test):
    before = mnist_test.y.clone()
    relabelled = D.relabel(mnist_test, {6: 3})
    assert torch.equal(mnist_test.y, before)
    assert (relabelled.y == 6).sum() == 0
    assert (relabelled.y == 3).sum() == (before == 3).sum() + (before == 6).sum()
    assert relabelled.X.data_ptr() == mnist_test.X.data_ptr()  # images shared, not copied


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda d: D.relabel(d, {6: 6}), "onto itself"),
        (lambda d: D.relabel(d, {6: 12}), "outside the model's classes"),
        (lambda d: D.split_by_class(d, [10]), "outside the model's classes"),
        (lambda d: D.split_by_class(d, [-1]), "outside the model's classes"),
        (lambda d: D.split_by_class(d, []), "empty"),
        (lambda d: D.split_by_class(d.subset(d.y != 6), [6]), "forget set is empty"),
        (lambda d: D.split_random(d, 0.0), "empty forget set"),
        (lambda d: D.stratified_subset(d, 0), "size must be"),
    ],
)
def test_bad_inputs_get_clear_errors(mnist_test, call, message):
    with pytest.raises(ValueError, match=message):
        call(mnist_test)


def test_split_by_class_partitions(mnist_test):
    forget, retain = D.split_by_class(mnist_test, [6])
    assert len(forget) + len(retain) == len(mnist_test)
    assert set(forget.y.tolist()) == {6} and 6 not in set(retain.y.tolist())


def test_split_random_is_seeded(mnist_test):
    a, _ = D.split_random(mnist_test, 0.1, seed=1)
    b, _ = D.split_random(mnist_test, 0.1, seed=1)
    c, _ = D.split_random(mnist_test, 0.1, seed=2)
    assert len(a) == 1000 and torch.equal(a.y, b.y) and torch.equal(a.X, b.X)
    assert not torch.equal(a.X, c.X)


def test_stratified_subset_keeps_proportions(mnist_train):
    sub = D.stratified_subset(mnist_train, 6000, seed=0)
    full = torch.tensor(mnist_train.class_counts(), dtype=torch.float) / len(mnist_train)
    part = torch.tensor(sub.class_counts(), dtype=torch.float) / len(sub)
    assert abs(len(sub) - 6000) <= 10 and torch.allclose(full, part, atol=2e-3)


def test_class_splits_bundle(mnist_train, mnist_test):
    splits = D.class_splits([6], mnist_train, mnist_test, train_subset=3000)
    assert splits.forget_classes == (6,)
    assert set(splits.test_forget.y.tolist()) == {6}
    assert len(splits.forget) + len(splits.retain) == pytest.approx(3000, abs=10)


def test_batch_loader_covers_every_item_once_and_is_seeded(mnist_test):
    data = mnist_test.subset(slice(0, 1000))
    loader = D.make_loader(data, batch_size=300, shuffle=True, seed=3)
    assert len(loader) == 4
    ys = torch.cat([y for _, y in loader])
    assert sorted(ys.tolist()) == sorted(data.y.tolist())
    again = torch.cat([y for _, y in D.make_loader(data, batch_size=300, shuffle=True, seed=3)])
    assert torch.equal(ys, again)


def _gz_root(tmp_path: Path, source: Path) -> Path:
    raw = tmp_path / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in D.MNIST_FILES:
        src = source / name
        with open(src, "rb") as fin, gzip.open(raw / f"{name}.gz", "wb", compresslevel=1) as fout:
            shutil.copyfileobj(fin, fout)
    return tmp_path / "data"


def test_gz_only_root_is_extracted_into_the_cache_not_the_data_folder(tmp_path, monkeypatch):
    extracted = D.extracted_raw_dir()
    root = _gz_root(tmp_path, extracted)
    monkeypatch.setenv("UNLEARNLAB_CACHE", str(tmp_path / "cache"))
    raw = D.extracted_raw_dir(root)
    assert raw == tmp_path / "cache" / "mnist-extracted" / "MNIST" / "raw"
    assert sorted(p.name for p in (root / "MNIST" / "raw").iterdir()) == sorted(f"{n}.gz" for n in D.MNIST_FILES)
    assert len(D.load_mnist(train=False, root=root, download=False)) == 10_000


def test_missing_files_offline_name_the_files_the_folder_and_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("UNLEARNLAB_CACHE", str(tmp_path / "cache"))
    with pytest.raises(D.MNISTNotFoundError) as info:
        D.load_mnist(root=tmp_path / "nowhere", download=False)
    text = str(info.value)
    assert all(name in text for name in D.MNIST_FILES)
    assert str(tmp_path / "nowhere" / "MNIST" / "raw") in text and "UNLEARNLAB_DATA" in text


def test_failed_download_is_a_clear_error(tmp_path, monkeypatch):
    import torchvision.datasets

    def offline(*args, **kwargs):
        raise RuntimeError("no network")

    monkeypatch.setattr(torchvision.datasets, "MNIST", offline)
    monkeypatch.setenv("UNLEARNLAB_CACHE", str(tmp_path / "cache"))
    with pytest.raises(D.MNISTNotFoundError, match="download failed.*no network"):
        D.load_mnist(root=tmp_path / "empty", download=True)


def test_corrupt_files_are_reported(tmp_path, monkeypatch):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in D.MNIST_FILES:
        (raw / name).write_bytes(b"\x00\x00\x08\x03garbage")
    monkeypatch.setenv("UNLEARNLAB_CACHE", str(tmp_path / "cache"))
    with pytest.raises(D.MNISTNotFoundError, match="corrupt"):
        D.load_mnist(root=tmp_path, download=False)
    assert all(state != "ok" for state in D.verify_files(tmp_path).values())
    (raw / "t10k-labels-idx1-ubyte.gz").write_bytes(b"not gzip")
    (raw / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(D.MNISTNotFoundError, match="not a valid gzip"):
        D.extracted_raw_dir(tmp_path)


def test_per_class_subset_is_balanced_and_nested(small_train):
    subset = D.per_class_subset(small_train, 3)
    assert subset.class_counts() == [3] * 10
    ids = D.TensorData(torch.arange(len(small_train)).float().view(-1, 1, 1, 1), small_train.y)  # X = item index
    three, five = D.per_class_subset(ids, 3), D.per_class_subset(ids, 5)
    assert set(three.X.flatten().tolist()) < set(five.X.flatten().tolist())  # same seed: a growing subset
    with pytest.raises(ValueError, match="positive"):
        D.per_class_subset(small_train, 0)

import gzip
import hashlib
import shutil
from pathlib import Path

import pytest
import torch

from unlearnlab import data as D
from unlearnlab.cli import main


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
    for name in D.RAW_FILES:
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
    assert sorted(p.name for p in (root / "MNIST" / "raw").iterdir()) == sorted(f"{n}.gz" for n in D.RAW_FILES)
    assert len(D.load_mnist(train=False, root=root, download=False)) == 10_000


def test_missing_files_offline_name_the_files_the_folder_and_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("UNLEARNLAB_CACHE", str(tmp_path / "cache"))
    with pytest.raises(D.DatasetNotFoundError) as info:
        D.load_mnist(root=tmp_path / "nowhere", download=False)
    text = str(info.value)
    assert all(name in text for name in D.RAW_FILES)
    assert str(tmp_path / "nowhere" / "MNIST" / "raw") in text and "UNLEARNLAB_DATA" in text


def test_failed_download_is_a_clear_error(tmp_path, monkeypatch):
    import torchvision.datasets

    def offline(*args, **kwargs):
        raise RuntimeError("no network")

    monkeypatch.setattr(torchvision.datasets, "MNIST", offline)
    monkeypatch.setenv("UNLEARNLAB_CACHE", str(tmp_path / "cache"))
    with pytest.raises(D.DatasetNotFoundError, match="download failed.*no network"):
        D.load_mnist(root=tmp_path / "empty", download=True)
    assert not (tmp_path / "empty").exists()  # the failed download created nothing under the root


def test_corrupt_files_are_reported(tmp_path, monkeypatch):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in D.RAW_FILES:
        (raw / name).write_bytes(b"\x00\x00\x08\x03garbage")
    monkeypatch.setenv("UNLEARNLAB_CACHE", str(tmp_path / "cache"))
    with pytest.raises(D.DatasetNotFoundError, match="corrupt"):
        D.load_mnist(root=tmp_path, download=False)
    assert all(state != "ok" for state in D.verify_files(tmp_path).values())
    (raw / "t10k-labels-idx1-ubyte.gz").write_bytes(b"not gzip")
    (raw / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(D.DatasetNotFoundError, match="not a valid gzip"):
        D.extracted_raw_dir(tmp_path)


def test_per_class_subset_is_balanced_and_nested(small_train):
    subset = D.per_class_subset(small_train, 3)
    assert subset.class_counts() == [3] * 10
    ids = D.TensorData(torch.arange(len(small_train)).float().view(-1, 1, 1, 1), small_train.y)  # X = item index
    three, five = D.per_class_subset(ids, 3), D.per_class_subset(ids, 5)
    assert set(three.X.flatten().tolist()) < set(five.X.flatten().tolist())  # same seed: a growing subset
    with pytest.raises(ValueError, match="positive"):
        D.per_class_subset(small_train, 0)


FASHION_MD5 = {  # md5 of the extracted files, from ../shared/data/README.md
    "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
    "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
    "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
    "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
}


def test_fashion_mnist_loads_like_mnist_from_the_same_root():
    raw = D.extracted_raw_dir(dataset="fashion_mnist")
    assert raw is not None and raw.parent.name == "FashionMNIST"
    assert raw != D.extracted_raw_dir(dataset="mnist")
    labels = {name: hashlib.md5((raw / name).read_bytes()).hexdigest() for name in FASHION_MD5 if "labels" in name}
    assert labels == {name: md5 for name, md5 in FASHION_MD5.items() if "labels" in name}
    assert set(D.verify_files(dataset="fashion_mnist").values()) == {"ok"}
    test = D.load_dataset("fashion_mnist", train=False, download=False)
    assert test.X.shape == (10_000, 1, 28, 28) and test.X.dtype == torch.float32
    assert test.class_counts() == [1000] * 10
    assert test.y[:10].tolist() == [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]  # the published test set's first labels
    mnist_test = D.load_mnist(train=False, download=False)
    assert not torch.equal(test.y, mnist_test.y)
    assert D.DATASETS["fashion_mnist"].classes[9] == "Ankle boot"


def test_unknown_dataset_name_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown data set 'cifar'.*'mnist', 'fashion_mnist'"):
        D.load_dataset("cifar")


def test_fashion_gz_root_is_extracted_into_its_own_cache_folder(tmp_path, monkeypatch):
    extracted = D.extracted_raw_dir(dataset="fashion_mnist")
    raw = tmp_path / "data" / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for name in D.RAW_FILES:  # the two small label files as .gz, the images extracted
        if "labels" in name:
            with open(extracted / name, "rb") as fin, gzip.open(raw / f"{name}.gz", "wb", compresslevel=1) as fout:
                shutil.copyfileobj(fin, fout)
        else:
            (raw / name).symlink_to(extracted / name)
    monkeypatch.setenv("UNLEARNLAB_CACHE", str(tmp_path / "cache"))
    before = sorted(p.name for p in raw.iterdir())
    got = D.extracted_raw_dir(tmp_path / "data", dataset="fashion_mnist")
    assert got == tmp_path / "cache" / "fashionmnist-extracted" / "FashionMNIST" / "raw"
    assert sorted(p.name for p in raw.iterdir()) == before
    assert D.load_dataset("fashion_mnist", train=False, root=tmp_path / "data", download=False).y[0] == 9


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.parametrize("dataset", ["mnist", "fashion_mnist"])
def test_a_download_goes_to_the_cache_and_never_into_the_data_folder(tmp_path, monkeypatch, dataset):
    import torchvision.datasets

    info = D.DATASETS[dataset]
    real_class = getattr(torchvision.datasets, info.folder)
    source = D.extracted_raw_dir(dataset=dataset)
    calls = []

    def fake(root, train=True, download=False, **kwargs):  # torchvision's behaviour: mkdir raw, then fetch
        calls.append((root, download))
        if download:
            raw = Path(root) / info.folder / "raw"
            raw.mkdir(parents=True, exist_ok=True)
            for name in D.RAW_FILES:
                if not (raw / name).exists():
                    (raw / name).symlink_to(source / name)
        return real_class(root, train=train, download=False, **kwargs)

    monkeypatch.setattr(torchvision.datasets, info.folder, fake)
    monkeypatch.setenv("UNLEARNLAB_CACHE", str(tmp_path / "cache"))
    empty = tmp_path / "shared-data"
    empty.mkdir()
    monkeypatch.setenv("UNLEARNLAB_DATA", str(empty))
    data = D.load_dataset(dataset, train=False)
    assert len(data) == 10_000 and _tree(empty) == []
    assert {root for root, download in calls if download} == {str(tmp_path / "cache" / "data")}
    # the next call, offline, finds the earlier download in the cache
    assert torch.equal(D.load_dataset(dataset, train=False, download=False).y, data.y)
    assert _tree(empty) == []


def test_data_command_on_an_empty_data_folder_writes_nothing_there(tmp_path, monkeypatch, capsys):
    import torchvision.datasets

    def offline_as(folder):
        def offline(root, train=True, download=False, **kwargs):  # torchvision makes <root>/<folder>/raw first
            if download:
                (Path(root) / folder / "raw").mkdir(parents=True, exist_ok=True)
            raise RuntimeError("no network")

        return offline

    for folder in ("MNIST", "FashionMNIST"):
        monkeypatch.setattr(torchvision.datasets, folder, offline_as(folder))
    empty = tmp_path / "shared-data"
    empty.mkdir()
    monkeypatch.setenv("UNLEARNLAB_DATA", str(empty))
    monkeypatch.setenv("UNLEARNLAB_CACHE", str(tmp_path / "cache"))
    assert main(["data"]) == 1
    assert main(["data", "--offline"]) == 1
    assert _tree(empty) == []
    err = capsys.readouterr().err
    assert "MNIST not found: download failed (no network)" in err
    assert "Fashion-MNIST not found: the files are not there" in err
    assert str(empty / "FashionMNIST" / "raw") in err


def test_data_command_reports_both_data_sets(capsys):
    assert main(["data", "--offline"]) == 0
    out = capsys.readouterr().out
    assert "MNIST: files read from" in out and "Fashion-MNIST: files read from" in out
    assert "per class [6000, 6000, 6000, 6000, 6000, 6000, 6000, 6000, 6000, 6000]" in out
    assert "per class [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]" in out


def test_random_splits_forget_a_seeded_fraction_and_keep_the_whole_test_set(mnist_train, mnist_test):
    splits = D.random_splits(0.1, mnist_train, mnist_test, train_subset=2000, seed=4)
    assert len(splits.forget) == 200 and len(splits.retain) == pytest.approx(1800, abs=10)
    assert splits.forget_classes == () and splits.test_forget is mnist_test and splits.test_retain is mnist_test
    again = D.random_splits(0.1, mnist_train, mnist_test, train_subset=2000, seed=4)
    assert torch.equal(splits.forget.X, again.forget.X)

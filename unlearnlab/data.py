"""MNIST and Fashion-MNIST (and CIFAR-10, an option) as tensors, forget/retain splits, relabel views, fast loaders.

The data policy (DESIGN.md section 3): the root is an argument, else ``$UNLEARNLAB_DATA``, else the package
cache. Files already in ``<root>/MNIST/raw`` (``FashionMNIST/raw`` for Fashion-MNIST) are used without network;
a ``.gz`` without its extracted twin is extracted into the package cache, never next to the original (that
folder may be read-only or shared). Nothing is ever written under the root: a download goes to the package
cache (``download_root()``), which is also searched when the root lacks the files.
"""

from __future__ import annotations

import gzip
import math
import os
import pickle
import shutil
import struct
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from .files import atomic_write

NUM_CLASSES = 10
# images per evaluation batch: the course CNN's fastest on one CPU core, two to three times the images per second
# of batches of 1,000, whose activations spill out of the cache (benchmarks/bench_pretrain.py measures it)
EVAL_BATCH = 128
# MNIST's training-set pixel statistics, after scaling to [0, 1]. Fashion-MNIST is normalised with the same
# constants (its own are 0.2860 / 0.3530), so one `denormalize` and one valid pixel range serve both data sets;
# the difference is an affine map of the input that the first layer absorbs.
MEAN, STD = 0.1307, 0.3081

# file stem -> (IDX magic number, number of items); MNIST and Fashion-MNIST share names, formats and sizes
RAW_FILES: dict[str, tuple[int, int]] = {
    "train-images-idx3-ubyte": (2051, 60_000),
    "train-labels-idx1-ubyte": (2049, 60_000),
    "t10k-images-idx3-ubyte": (2051, 10_000),
    "t10k-labels-idx1-ubyte": (2049, 10_000),
}


@dataclass(frozen=True)
class DatasetInfo:
    """One of the course's data sets: its torchvision class (also its folder under the root) and class names."""

    name: str  # the key in DATASETS, e.g. "fashion_mnist"
    folder: str  # torchvision's class name and the folder under the root: <root>/<folder>/raw
    title: str  # how messages name it
    classes: tuple[str, ...]  # class names, by label


DATASETS: dict[str, DatasetInfo] = {
    "mnist": DatasetInfo("mnist", "MNIST", "MNIST", tuple(str(d) for d in range(10))),
    "fashion_mnist": DatasetInfo(
        "fashion_mnist",
        "FashionMNIST",
        "Fashion-MNIST",
        ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
    ),
}


class DatasetNotFoundError(FileNotFoundError):
    """The data set is neither on disk nor downloadable."""


def dataset_info(dataset: str) -> DatasetInfo:
    """The :class:`DatasetInfo` named ``dataset`` (``"mnist"`` or ``"fashion_mnist"``)."""
    if dataset not in DATASETS:
        raise ValueError(f"unknown data set {dataset!r}: choose one of {', '.join(map(repr, DATASETS))}")
    return DATASETS[dataset]


def cache_dir() -> Path:
    """The package's cache folder: ``$UNLEARNLAB_CACHE`` or ``~/.cache/unlearnlab``."""
    return Path(os.environ.get("UNLEARNLAB_CACHE") or Path.home() / ".cache" / "unlearnlab")


def download_root() -> Path:
    """Where downloads go: the cache's ``data`` folder (also the root when nothing else is named)."""
    return cache_dir() / "data"


def data_root(root: str | os.PathLike | None = None) -> Path:
    """Where the data sets are looked for: ``root``, else ``$UNLEARNLAB_DATA``, else :func:`download_root`."""
    if root is not None:
        return Path(root)
    env = os.environ.get("UNLEARNLAB_DATA")
    return Path(env) if env else download_root()


def _not_found_message(raw: Path, reason: str, title: str = "MNIST") -> str:
    files = ", ".join(f"{name}(.gz)" for name in RAW_FILES)
    return (
        f"{title} not found: {reason}.\nExpected the four files {files} in {raw}.\n"
        f"Put them there (torchvision's {raw.parent.name}/raw layout, .gz or extracted) and set UNLEARNLAB_DATA to "
        f"the folder that contains {raw.parent.name}/, or connect to the internet so torchvision can download "
        f"them (into {download_root()}, never into the data folder)."
    )


def _atomic_gunzip(src: Path, dst: Path) -> None:
    """Extract ``src`` to ``dst`` through a temporary file, so a crash never leaves half a file."""

    def gunzip(tmp: Path) -> None:
        with gzip.open(src, "rb") as fin, open(tmp, "wb") as fout:
            shutil.copyfileobj(fin, fout)

    try:
        atomic_write(dst, gunzip)
    except (OSError, EOFError, gzip.BadGzipFile) as err:
        raise DatasetNotFoundError(f"{src} is not a valid gzip file ({err}); replace it with the original.") from err


def _raw_usable(raw: Path) -> bool:
    """Whether ``raw`` holds each of the four files, extracted or as ``.gz`` (reads only, creates nothing)."""
    return all((raw / name).is_file() or (raw / f"{name}.gz").is_file() for name in RAW_FILES)


def extracted_raw_dir(root: str | os.PathLike | None = None, dataset: str = "mnist") -> Path | None:
    """A ``<folder>/raw`` folder holding all four extracted files, extracting ``.gz`` files into the cache if needed.

    The root is searched first, then the download cache. Returns ``None`` when neither has the files.
    """
    info = dataset_info(dataset)
    candidates = [data_root(root) / info.folder / "raw", download_root() / info.folder / "raw"]
    raw = next((c for c in candidates if _raw_usable(c)), None)
    if raw is None:
        return None
    if all((raw / name).is_file() for name in RAW_FILES):
        return raw
    target = cache_dir() / f"{info.folder.lower()}-extracted" / info.folder / "raw"
    target.mkdir(parents=True, exist_ok=True)
    for name in RAW_FILES:
        if (target / name).is_file() and (target / name).stat().st_size > 0:
            continue
        if (raw / name).is_file():
            shutil.copyfile(raw / name, target / name)
        else:
            _atomic_gunzip(raw / f"{name}.gz", target / name)
    return target


def read_idx(path: Path) -> torch.Tensor:
    """Read one IDX file (MNIST's format) into a uint8 tensor, checking its header against its size."""
    data = path.read_bytes()
    if len(data) < 8:
        raise ValueError(f"{path} is truncated ({len(data)} bytes); replace it with the original file.")
    (magic,) = struct.unpack(">I", data[:4])
    ndim = magic & 0xFF  # the last header byte is the number of dimensions
    header = 4 + 4 * ndim
    dims = struct.unpack(f">{ndim}I", data[4:header]) if magic in (2049, 2051) and len(data) >= header else ()
    expected = header + math.prod(dims)
    if not dims or len(data) != expected:
        raise ValueError(
            f"{path} is corrupt (magic {magic}, {len(data)} bytes, expected {expected}); "
            "replace it with the original file."
        )
    return torch.frombuffer(bytearray(data[header:]), dtype=torch.uint8).reshape(dims)


def verify_raw_dir(raw: Path) -> dict[str, str]:
    """Check every file in ``raw``: header, size, item count and labels; returns ``{file: "ok" | problem}``."""
    status = {}
    for name, (magic, count) in RAW_FILES.items():
        try:
            tensor = read_idx(raw / name)
        except (OSError, ValueError) as err:
            status[name] = str(err)
            continue
        ok_count = tensor.shape[0] == count
        ok_labels = magic != 2049 or int(tensor.max()) < NUM_CLASSES
        status[name] = "ok" if ok_count and ok_labels else f"unexpected content (shape {tuple(tensor.shape)})"
    return status


def verify_files(root: str | os.PathLike | None = None, dataset: str = "mnist") -> dict[str, str]:
    """Check every file of ``dataset`` found from ``root``; returns ``{file: "ok" | problem}``."""
    raw = extracted_raw_dir(root, dataset)
    return {name: "missing" for name in RAW_FILES} if raw is None else verify_raw_dir(raw)


def _download(info: DatasetInfo) -> None:
    """Download ``info``'s data set with torchvision into :func:`download_root`; a clear error when offline.

    torchvision creates ``<download_root>/<folder>/raw`` before it fetches anything, which is why the download
    never targets the user's data folder.
    """
    import torchvision.datasets

    where = download_root()
    try:
        dataset_class = getattr(torchvision.datasets, info.folder)
        dataset_class(str(where), train=True, download=True)
        dataset_class(str(where), train=False, download=True)
    except Exception as err:  # torchvision raises RuntimeError/URLError/OSError depending on the failure
        raw = where / info.folder / "raw"
        raise DatasetNotFoundError(_not_found_message(raw, f"download failed ({err})", info.title)) from err


@dataclass
class TensorData(Dataset):
    """Images ``X`` (N, 1, 28, 28), float, normalised and labels ``y`` (N,), long, held in memory."""

    X: torch.Tensor  # (N, 1, 28, 28)
    y: torch.Tensor  # (N,)

    def __post_init__(self) -> None:
        if len(self.X) != len(self.y):
            raise ValueError(f"X has {len(self.X)} items but y has {len(self.y)}")

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.X[i], self.y[i]

    def subset(self, index: torch.Tensor) -> TensorData:
        """The items at ``index`` (a boolean mask or integer indices)."""
        return TensorData(self.X[index], self.y[index])

    def class_counts(self) -> list[int]:
        """Number of items per class, classes 0-9."""
        return torch.bincount(self.y, minlength=NUM_CLASSES).tolist()


def concat(*parts: TensorData) -> TensorData:
    """One dataset made of several, in order."""
    return TensorData(torch.cat([p.X for p in parts]), torch.cat([p.y for p in parts]))


def normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 28, 28) -> float (N, 1, 28, 28) with MNIST's mean and std (for Fashion-MNIST too)."""
    return ((images.float() / 255.0 - MEAN) / STD).unsqueeze(1)


def denormalize(X: torch.Tensor) -> torch.Tensor:
    """Undo :func:`normalize` for display: values back in [0, 1]."""
    return (X * STD + MEAN).clamp(0, 1)


def load_dataset(
    dataset: str = "mnist", train: bool = True, root: str | os.PathLike | None = None, download: bool = True
) -> TensorData:
    """Load the training (60,000) or test (10,000) set of ``"mnist"`` or ``"fashion_mnist"`` as normalised tensors.

    Read from the root (or the download cache) when the files are there; otherwise torchvision downloads them
    into the cache when ``download`` is true, and a :class:`DatasetNotFoundError` says what to do when it can't.
    ``"cifar10"`` (50,000 + 10,000 colour images) is read by :func:`load_cifar10`.
    """
    if dataset == "cifar10":
        return load_cifar10(train, root, download)
    info = dataset_info(dataset)
    raw = extracted_raw_dir(root, dataset)
    if raw is None:
        expected = data_root(root) / info.folder / "raw"
        if not download:
            raise DatasetNotFoundError(_not_found_message(expected, "the files are not there", info.title))
        _download(info)
        raw = extracted_raw_dir(root, dataset)
        if raw is None:
            raise DatasetNotFoundError(_not_found_message(expected, "download left no files", info.title))
    import torchvision.datasets

    try:
        loaded = getattr(torchvision.datasets, info.folder)(str(raw.parent.parent), train=train, download=False)
    except Exception as err:  # torchvision raises assertion/runtime errors on bad files
        problems = {name: state for name, state in verify_raw_dir(raw).items() if state != "ok"}
        detail = "; ".join(f"{name}: {state}" for name, state in problems.items()) or str(err)
        raise DatasetNotFoundError(f"{info.title} files in {raw} are corrupt ({detail})") from err
    return TensorData(normalize(loaded.data), loaded.targets.long())


def load_mnist(train: bool = True, root: str | os.PathLike | None = None, download: bool = True) -> TensorData:
    """Load the MNIST training (60,000) or test (10,000) set: ``load_dataset("mnist", ...)``."""
    return load_dataset("mnist", train=train, root=root, download=download)


def check_classes(classes: Iterable[int], num_classes: int = NUM_CLASSES) -> tuple[int, ...]:
    """Validate class ids; returns them as a sorted tuple."""
    classes = tuple(sorted({int(c) for c in classes}))
    bad = [c for c in classes if not 0 <= c < num_classes]
    if bad:
        raise ValueError(f"class {bad[0]} is outside the model's classes 0-{num_classes - 1}")
    return classes


def class_mask(y: torch.Tensor, classes: Iterable[int]) -> torch.Tensor:
    """Boolean mask of the items whose label is in ``classes``."""
    return torch.isin(y, torch.tensor(check_classes(classes), dtype=y.dtype))


def split_by_class(data: TensorData, forget_classes: Iterable[int]) -> tuple[TensorData, TensorData]:
    """``(forget, retain)``: items of ``forget_classes`` and all the others."""
    forget_classes = check_classes(forget_classes)
    if not forget_classes:
        raise ValueError("forget_classes is empty: name at least one class to forget")
    mask = class_mask(data.y, forget_classes)
    if not mask.any():
        raise ValueError(f"the forget set is empty: no item has a label in {forget_classes}")
    return data.subset(mask), data.subset(~mask)


def split_random(data: TensorData, forget_fraction: float, seed: int = 0) -> tuple[TensorData, TensorData]:
    """``(forget, retain)``: a random ``forget_fraction`` of the items and the rest, reproducible by ``seed``."""
    n_forget = round(forget_fraction * len(data))
    if not 0 < n_forget <= len(data):
        raise ValueError(f"forget_fraction={forget_fraction} gives an empty forget set of {len(data)} items")
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))
    return data.subset(order[:n_forget]), data.subset(order[n_forget:])


def relabel(data: TensorData, mapping: Mapping[int, int]) -> TensorData:
    """A view with labels changed by ``mapping`` (e.g. ``{6: 3}``); images are shared, the original is untouched."""
    for old, new in mapping.items():
        check_classes((old, new))
        if old == new:
            raise ValueError(f"relabelling {old} onto itself changes nothing: map it to another class")
    y = data.y.clone()
    for old, new in mapping.items():
        y[data.y == old] = new
    return TensorData(data.X, y)


def stratified_subset(data: TensorData, size: int, seed: int = 0) -> TensorData:
    """About ``size`` items with the class proportions of ``data`` (at least one per present class)."""
    if not 0 < size <= len(data):
        raise ValueError(f"size must be in 1..{len(data)}, got {size}")
    rng = torch.Generator().manual_seed(seed)
    picks = []
    for c in torch.unique(data.y):
        idx = torch.nonzero(data.y == c).squeeze(1)
        take = max(1, round(size * len(idx) / len(data)))
        picks.append(idx[torch.randperm(len(idx), generator=rng)[:take]])
    return data.subset(torch.sort(torch.cat(picks)).values)


def per_class_subset(data: TensorData, per_class: int, seed: int = 0) -> TensorData:
    """``per_class`` random items of each class present in ``data`` (fewer where a class has fewer)."""
    if per_class < 1:
        raise ValueError(f"per_class must be positive, got {per_class}")
    rng = torch.Generator().manual_seed(seed)
    picks = []
    for c in torch.unique(data.y):
        idx = torch.nonzero(data.y == c).squeeze(1)
        picks.append(idx[torch.randperm(len(idx), generator=rng)[:per_class]])
    return data.subset(torch.sort(torch.cat(picks)).values)


@dataclass
class Splits:
    """The named bundle every method receives: forget and retain training data, and test data."""

    forget: TensorData
    retain: TensorData
    test: TensorData
    test_forget: TensorData
    test_retain: TensorData
    forget_classes: tuple[int, ...]


def class_splits(
    forget_classes: Iterable[int],
    train: TensorData | None = None,
    test: TensorData | None = None,
    train_subset: int | None = None,
    seed: int = 0,
    dataset: str = "mnist",
) -> Splits:
    """Forget/retain splits by class of the training and test sets (``train_subset``: stratified size)."""
    train = train if train is not None else load_dataset(dataset, train=True)
    test = test if test is not None else load_dataset(dataset, train=False)
    if train_subset is not None and train_subset < len(train):
        train = stratified_subset(train, train_subset, seed=seed)
    forget, retain = split_by_class(train, forget_classes)
    test_forget, test_retain = split_by_class(test, forget_classes)
    return Splits(forget, retain, test, test_forget, test_retain, check_classes(forget_classes))


def random_splits(
    forget_fraction: float,
    train: TensorData | None = None,
    test: TensorData | None = None,
    train_subset: int | None = None,
    seed: int = 0,
    dataset: str = "mnist",
) -> Splits:
    """Random forgetting: a random ``forget_fraction`` of the (stratified ``train_subset`` of the) training set.

    The forget set spans every class, so the held-out images of its classes are the whole test set:
    ``test_forget`` and ``test_retain`` are both ``test``, and ``forget_classes`` is empty.
    """
    train = train if train is not None else load_dataset(dataset, train=True)
    test = test if test is not None else load_dataset(dataset, train=False)
    if train_subset is not None and train_subset < len(train):
        train = stratified_subset(train, train_subset, seed=seed)
    forget, retain = split_random(train, forget_fraction, seed=seed)
    return Splits(forget, retain, test, test, test, ())


def relabelled_training_set(splits: Splits, mapping: Mapping[int, int]) -> TensorData:
    """Retain and forget training data together, the forget classes relabelled (e.g. ``{6: 3}``)."""
    return concat(splits.retain, relabel(splits.forget, mapping))


class BatchLoader:
    """Minibatches of a :class:`TensorData` by slicing, much faster than a ``DataLoader`` over single items.

    Shuffling uses its own seeded generator, so a loader gives the same order for the same seed.
    """

    def __init__(self, data: TensorData, batch_size: int = 256, shuffle: bool = False, seed: int | None = 0) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.dataset = data
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.rng = torch.Generator()
        if seed is not None:
            self.rng.manual_seed(seed)

    def __len__(self) -> int:
        return (len(self.dataset) + self.batch_size - 1) // self.batch_size

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.dataset)
        order = torch.randperm(n, generator=self.rng) if self.shuffle else None
        for start in range(0, n, self.batch_size):
            if order is None:
                sl = slice(start, start + self.batch_size)
                yield self.dataset.X[sl], self.dataset.y[sl]
            else:
                idx = order[start : start + self.batch_size]
                yield self.dataset.X[idx], self.dataset.y[idx]


def make_loader(
    data: TensorData, batch_size: int = EVAL_BATCH, shuffle: bool = False, seed: int | None = 0
) -> BatchLoader:
    """A :class:`BatchLoader`; ``shuffle=True`` for training, ``False`` (and the default batch size) for evaluation."""
    return BatchLoader(data, batch_size=batch_size, shuffle=shuffle, seed=seed)


# ----------------------------------------------------------------------------------------------------------
# CIFAR-10: the setting of Avadhani's pruning and MIA report (ResNet-18, :func:`unlearnlab.models.build_model`
# ``"resnet18"``), an option for readers with internet and a GPU. Read like MNIST: from
# ``<root>/cifar-10-batches-py`` (torchvision's layout), else through a torchvision download into the cache. The
# NeurIPS 2023 unlearning challenge's ResNet-18 reaches 98.0 % train / 84 % test accuracy there, ``simple_mia``
# 0.578 on its forget set.

CIFAR_FOLDER = "cifar-10-batches-py"  # torchvision's CIFAR10 base folder
CIFAR_BATCHES = {True: tuple(f"data_batch_{i}" for i in range(1, 6)), False: ("test_batch",)}
CIFAR_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
# the starting kit's (and Avadhani's) normalisation, per channel
CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)


def cifar_batches_folder(root: str | os.PathLike | None = None) -> Path | None:
    """The first ``cifar-10-batches-py`` folder holding all six batch files: under the root, then the cache."""
    for candidate in (data_root(root) / CIFAR_FOLDER, download_root() / CIFAR_FOLDER):
        if all((candidate / name).is_file() for names in CIFAR_BATCHES.values() for name in names):
            return candidate
    return None


def read_cifar_batches(folder: str | os.PathLike, train: bool = True) -> TensorData:
    """CIFAR-10's python batches (pickled dicts: ``b"data"`` uint8 (N, 3072), ``b"labels"``), normalised.

    Returns X float (N, 3, 32, 32) and y long (N,). The files are pickles: read only the originals.
    """
    images, labels = [], []
    for name in CIFAR_BATCHES[train]:
        path = Path(folder) / name
        try:
            with open(path, "rb") as f:
                batch = pickle.load(f, encoding="bytes")
            data = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
            targets = np.asarray(batch[b"labels"], dtype=np.int64)
        except (OSError, pickle.UnpicklingError, EOFError, KeyError, ValueError) as err:
            raise DatasetNotFoundError(f"{path} is not a CIFAR-10 batch file ({err}); replace it") from err
        if len(data) != len(targets):
            raise DatasetNotFoundError(f"{path} holds {len(data)} images but {len(targets)} labels")
        images.append(torch.from_numpy(data))
        labels.append(torch.from_numpy(targets))
    return TensorData(normalize_cifar(torch.cat(images)), torch.cat(labels))


def normalize_cifar(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 3, 32, 32) -> float, each channel scaled to [0, 1], then standardised (:data:`CIFAR_MEAN`, ``STD``)."""
    mean, std = torch.tensor(CIFAR_MEAN).view(1, 3, 1, 1), torch.tensor(CIFAR_STD).view(1, 3, 1, 1)
    return (images.float() / 255.0 - mean) / std


def load_cifar10(train: bool = True, root: str | os.PathLike | None = None, download: bool = True) -> TensorData:
    """The CIFAR-10 training (50,000) or test (10,000) set, from disk or downloaded into the cache."""
    folder = cifar_batches_folder(root)
    if folder is None and download:
        import torchvision.datasets

        try:
            torchvision.datasets.CIFAR10(str(download_root()), train=train, download=True)
        except Exception as err:  # no network: say what to do instead
            raise DatasetNotFoundError(_cifar_not_found(root, f"the download failed ({err})")) from err
        folder = cifar_batches_folder(root)
    if folder is None:
        raise DatasetNotFoundError(_cifar_not_found(root, "the files are not there"))
    return read_cifar_batches(folder, train)


def _cifar_not_found(root: str | os.PathLike | None, reason: str) -> str:
    names = ", ".join(CIFAR_BATCHES[True] + CIFAR_BATCHES[False])
    return (
        f"CIFAR-10 not found: {reason}.\nExpected {names} in {data_root(root) / CIFAR_FOLDER} (torchvision's layout). "
        f"Put them there and set UNLEARNLAB_DATA to the folder that contains {CIFAR_FOLDER}/, or connect to the "
        f"internet so torchvision can download them (into {download_root()})."
    )

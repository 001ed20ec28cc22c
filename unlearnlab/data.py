"""MNIST as in-memory tensors, forget/retain splits, relabel views and fast batch loaders.

The data policy (DESIGN.md section 3): the root is an argument, else ``$UNLEARNLAB_DATA``, else the package
cache. Files already in ``MNIST/raw`` are used without network; a ``.gz`` without its extracted twin is
extracted into the package cache, never next to the original (that folder may be read-only or shared).
"""

from __future__ import annotations

import gzip
import math
import os
import shutil
import struct
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import Dataset

NUM_CLASSES = 10
MEAN, STD = 0.1307, 0.3081  # MNIST training-set pixel statistics, after scaling to [0, 1]

# file stem -> (IDX magic number, number of items) of the real MNIST files
MNIST_FILES: dict[str, tuple[int, int]] = {
    "train-images-idx3-ubyte": (2051, 60_000),
    "train-labels-idx1-ubyte": (2049, 60_000),
    "t10k-images-idx3-ubyte": (2051, 10_000),
    "t10k-labels-idx1-ubyte": (2049, 10_000),
}


class MNISTNotFoundError(FileNotFoundError):
    """MNIST is neither on disk nor downloadable."""


def cache_dir() -> Path:
    """The package's cache folder: ``$UNLEARNLAB_CACHE`` or ``~/.cache/unlearnlab``."""
    return Path(os.environ.get("UNLEARNLAB_CACHE") or Path.home() / ".cache" / "unlearnlab")


def data_root(root: str | os.PathLike | None = None) -> Path:
    """Where MNIST is looked for: ``root``, else ``$UNLEARNLAB_DATA``, else the cache folder."""
    if root is not None:
        return Path(root)
    env = os.environ.get("UNLEARNLAB_DATA")
    return Path(env) if env else cache_dir() / "data"


def _not_found_message(raw: Path, reason: str) -> str:
    files = ", ".join(f"{name}(.gz)" for name in MNIST_FILES)
    return (
        f"MNIST not found: {reason}.\nExpected the four files {files} in {raw}.\n"
        "Put them there (torchvision's MNIST/raw layout, .gz or extracted) and set UNLEARNLAB_DATA to the "
        "folder that contains MNIST/, or connect to the internet so torchvision can download them."
    )


def _atomic_gunzip(src: Path, dst: Path) -> None:
    """Extract ``src`` to ``dst`` through a temporary file, so a crash never leaves half a file."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    try:
        with gzip.open(src, "rb") as fin, open(tmp, "wb") as fout:
            shutil.copyfileobj(fin, fout)
        os.replace(tmp, dst)
    except (OSError, EOFError, gzip.BadGzipFile) as err:
        tmp.unlink(missing_ok=True)
        raise MNISTNotFoundError(f"{src} is not a valid gzip file ({err}); replace it with the original.") from err


def extracted_raw_dir(root: str | os.PathLike | None = None) -> Path | None:
    """A ``MNIST/raw`` folder holding all four extracted files, extracting ``.gz`` files into the cache if needed.

    Returns ``None`` when the files are not under the root.
    """
    raw = data_root(root) / "MNIST" / "raw"
    if all((raw / name).is_file() for name in MNIST_FILES):
        return raw
    if not all((raw / name).is_file() or (raw / f"{name}.gz").is_file() for name in MNIST_FILES):
        return None
    target = cache_dir() / "mnist-extracted" / "MNIST" / "raw"
    target.mkdir(parents=True, exist_ok=True)
    for name in MNIST_FILES:
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


def verify_files(root: str | os.PathLike | None = None) -> dict[str, str]:
    """Check every MNIST file's header, size and item count; returns ``{file: "ok" | problem}``."""
    raw = extracted_raw_dir(root)
    if raw is None:
        return {name: "missing" for name in MNIST_FILES}
    status = {}
    for name, (magic, count) in MNIST_FILES.items():
        try:
            tensor = read_idx(raw / name)
        except (OSError, ValueError) as err:
            status[name] = str(err)
            continue
        ok_count = tensor.shape[0] == count
        ok_labels = magic != 2049 or int(tensor.max()) < NUM_CLASSES
        status[name] = "ok" if ok_count and ok_labels else f"unexpected content (shape {tuple(tensor.shape)})"
    return status


def _download(root: Path) -> Path:
    """Download MNIST with torchvision into ``root``; raises :class:`MNISTNotFoundError` when offline."""
    from torchvision.datasets import MNIST

    try:
        MNIST(str(root), train=True, download=True)
        MNIST(str(root), train=False, download=True)
    except Exception as err:  # torchvision raises RuntimeError/URLError/OSError depending on the failure
        raise MNISTNotFoundError(_not_found_message(root / "MNIST" / "raw", f"download failed ({err})")) from err
    return root / "MNIST" / "raw"


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
    """uint8 (N, 28, 28) -> float (N, 1, 28, 28) with MNIST's mean and std."""
    return ((images.float() / 255.0 - MEAN) / STD).unsqueeze(1)


def denormalize(X: torch.Tensor) -> torch.Tensor:
    """Undo :func:`normalize` for display: values back in [0, 1]."""
    return (X * STD + MEAN).clamp(0, 1)


def load_mnist(train: bool = True, root: str | os.PathLike | None = None, download: bool = True) -> TensorData:
    """Load the MNIST training (60,000) or test (10,000) set as normalised tensors."""
    raw = extracted_raw_dir(root)
    if raw is None:
        where = data_root(root)
        if not download:
            raise MNISTNotFoundError(_not_found_message(where / "MNIST" / "raw", "the files are not there"))
        _download(where)
        raw = extracted_raw_dir(where)
        if raw is None:
            raise MNISTNotFoundError(_not_found_message(where / "MNIST" / "raw", "download left no files"))
    from torchvision.datasets import MNIST

    try:
        dataset = MNIST(str(raw.parent.parent), train=train, download=False)
    except Exception as err:  # torchvision raises assertion/runtime errors on bad files
        problems = {name: state for name, state in verify_files(raw.parent.parent).items() if state != "ok"}
        detail = "; ".join(f"{name}: {state}" for name, state in problems.items()) or str(err)
        raise MNISTNotFoundError(f"MNIST files in {raw} are corrupt ({detail})") from err
    images, labels = dataset.data, dataset.targets
    return TensorData(normalize(images), labels.long())


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
    gen = torch.Generator().manual_seed(seed)
    picks = []
    for c in torch.unique(data.y):
        idx = torch.nonzero(data.y == c).squeeze(1)
        take = max(1, round(size * len(idx) / len(data)))
        picks.append(idx[torch.randperm(len(idx), generator=gen)[:take]])
    return data.subset(torch.sort(torch.cat(picks)).values)


def per_class_subset(data: TensorData, per_class: int, seed: int = 0) -> TensorData:
    """``per_class`` random items of each class present in ``data`` (fewer where a class has fewer)."""
    if per_class < 1:
        raise ValueError(f"per_class must be positive, got {per_class}")
    gen = torch.Generator().manual_seed(seed)
    picks = []
    for c in torch.unique(data.y):
        idx = torch.nonzero(data.y == c).squeeze(1)
        picks.append(idx[torch.randperm(len(idx), generator=gen)[:per_class]])
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
) -> Splits:
    """Forget/retain splits by class of the MNIST training and test sets (``train_subset``: stratified size)."""
    train = train if train is not None else load_mnist(train=True)
    test = test if test is not None else load_mnist(train=False)
    if train_subset is not None and train_subset < len(train):
        train = stratified_subset(train, train_subset, seed=seed)
    forget, retain = split_by_class(train, forget_classes)
    test_forget, test_retain = split_by_class(test, forget_classes)
    return Splits(forget, retain, test, test_forget, test_retain, check_classes(forget_classes))


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
        self.generator = torch.Generator()
        if seed is not None:
            self.generator.manual_seed(seed)

    def __len__(self) -> int:
        return (len(self.dataset) + self.batch_size - 1) // self.batch_size

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.dataset)
        order = torch.randperm(n, generator=self.generator) if self.shuffle else None
        for start in range(0, n, self.batch_size):
            if order is None:
                sl = slice(start, start + self.batch_size)
                yield self.dataset.X[sl], self.dataset.y[sl]
            else:
                idx = order[start : start + self.batch_size]
                yield self.dataset.X[idx], self.dataset.y[idx]


def make_loader(data: TensorData, batch_size: int = 256, shuffle: bool = False, seed: int | None = 0) -> BatchLoader:
    """A :class:`BatchLoader`; ``shuffle=True`` for training, ``False`` for evaluation."""
    return BatchLoader(data, batch_size=batch_size, shuffle=shuffle, seed=seed)

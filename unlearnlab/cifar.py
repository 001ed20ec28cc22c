"""CIFAR-10 with ResNet-18: seed 003's own setting, an option for readers with internet and a GPU.

The course runs offline on MNIST and Fashion-MNIST; seed 003 measured membership inference on CIFAR-10 with the
NeurIPS 2023 unlearning challenge's ResNet-18 (98.0 % train / 84 % test accuracy, ``simple_mia`` 0.578 on its
forget set). This module reads CIFAR-10 the way the rest of :mod:`unlearnlab.data` reads MNIST: from
``<root>/cifar-10-batches-py`` (torchvision's layout, the root being ``$UNLEARNLAB_DATA`` or the cache), and
through a torchvision download into the cache when the files are missing. ``load_dataset("cifar10")`` and
``build_model("resnet18")`` use it, so the zoo, ``unlearnlab.mia`` and ``benchmarks/bench_mia.py --settings
cifar10_resnet18`` work on it unchanged.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .data import DatasetNotFoundError, TensorData, data_root, download_root

FOLDER = "cifar-10-batches-py"  # torchvision's CIFAR10 base folder
BATCHES = {True: tuple(f"data_batch_{i}" for i in range(1, 6)), False: ("test_batch",)}
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
# the starting kit's (and seed 003's) normalisation, per channel
MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)


def batches_folder(root: str | os.PathLike | None = None) -> Path | None:
    """The first ``cifar-10-batches-py`` folder holding all six batch files: under the root, then the cache."""
    for candidate in (data_root(root) / FOLDER, download_root() / FOLDER):
        if all((candidate / name).is_file() for names in BATCHES.values() for name in names):
            return candidate
    return None


def read_batches(folder: str | os.PathLike, train: bool = True) -> TensorData:
    """CIFAR-10's python batches (pickled dicts: ``b"data"`` uint8 (N, 3072), ``b"labels"``), normalised.

    Returns X float (N, 3, 32, 32) and y long (N,). The files are pickles: read only the originals.
    """
    images, labels = [], []
    for name in BATCHES[train]:
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
    return TensorData(normalize(torch.cat(images)), torch.cat(labels))


def normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 3, 32, 32) -> float, each channel scaled to [0, 1] then standardised with :data:`MEAN`, :data:`STD`."""
    mean, std = torch.tensor(MEAN).view(1, 3, 1, 1), torch.tensor(STD).view(1, 3, 1, 1)
    return (images.float() / 255.0 - mean) / std


def load_cifar10(train: bool = True, root: str | os.PathLike | None = None, download: bool = True) -> TensorData:
    """The CIFAR-10 training (50,000) or test (10,000) set, from disk or downloaded into the cache."""
    folder = batches_folder(root)
    if folder is None and download:
        import torchvision.datasets

        try:
            torchvision.datasets.CIFAR10(str(download_root()), train=train, download=True)
        except Exception as err:  # no network: say what to do instead
            raise DatasetNotFoundError(_not_found(root, f"the download failed ({err})")) from err
        folder = batches_folder(root)
    if folder is None:
        raise DatasetNotFoundError(_not_found(root, "the files are not there"))
    return read_batches(folder, train)


def _not_found(root: str | os.PathLike | None, reason: str) -> str:
    names = ", ".join(BATCHES[True] + BATCHES[False])
    return (
        f"CIFAR-10 not found: {reason}.\nExpected {names} in {data_root(root) / FOLDER} (torchvision's layout). "
        f"Put them there and set UNLEARNLAB_DATA to the folder that contains {FOLDER}/, or connect to the internet "
        f"so torchvision can download them (into {download_root()})."
    )


def resnet18(num_classes: int = len(CLASSES)) -> nn.Module:
    """ResNet-18 for 32x32 images, as the unlearning challenge's and SalUn's code build it: torchvision's
    ResNet-18 with a 3x3, stride-1 first convolution and no max-pooling (a 224-pixel stem would shrink CIFAR's
    images to 1x1 before the last stage)."""
    from torchvision.models import resnet18 as torchvision_resnet18

    net = torchvision_resnet18(num_classes=num_classes)
    net.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
    net.maxpool = nn.Identity()
    return net

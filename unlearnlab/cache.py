"""The package's one disk cache, for what is computed once and read many times: the zoo's models, the amnesiac
ledger runs, the DeepInversion galleries.

An entry is a torch file under the cache folder (:func:`unlearnlab.data.cache_dir`), named by a :func:`key`: a
short hash of the configuration that decides its content and a code-version tag, so a changed configuration or
recipe names another file. :func:`load_or_build` reads an entry without a lock or a write (a read-only cache, as
in the grading sandbox, serves what it holds); a missing one is built by one process at a time, under a lock file
beside the entry, and written atomically. An unreadable entry is reported with a warning and built again.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Callable
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch
from filelock import FileLock
from torch import nn

from .data import cache_dir
from .files import save_torch

T = TypeVar("T")


class ReadOnlyCacheError(PermissionError):
    """A cache entry is missing (or unreadable) and its folder cannot be written, so it cannot be built."""


def key(config: Any, version: int) -> str:
    """A short stable hash of ``config`` (a dataclass or a JSON-able mapping) and the code's ``version`` tag."""
    fields = asdict(config) if is_dataclass(config) else dict(config)
    blob = json.dumps({**fields, "version": version}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def weights_digest(model: nn.Module) -> str:
    """A hash of ``model``'s parameters and buffers, for the key of an entry computed from that model."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().numpy().tobytes())
    return digest.hexdigest()


def tensors_digest(*tensors: torch.Tensor) -> str:
    """A hash of the tensors' values, in order, for the key of an entry computed from them (e.g. images)."""
    digest = hashlib.sha256()
    for tensor in tensors:
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def entry_path(folder: str, name: str) -> Path:
    """Where the entry ``name`` of the cache's ``folder`` lives: ``<cache_dir()>/<folder>/<name>.pt``."""
    return cache_dir() / folder / f"{name}.pt"


def load_or_build(
    path: Path,
    build: Callable[[], T],
    to_payload: Callable[[T], object],
    from_payload: Callable[[Any], T],
) -> T:
    """The entry at ``path`` read back through ``from_payload``, or else ``build()`` saved as ``to_payload`` gives it.

    A readable entry needs no lock and no write. Otherwise the lock file ``<path>.lock`` (it holds across processes,
    and across hosts sharing the folder) is held while the entry is read again (another process may have built it
    meanwhile) or built and written through :func:`unlearnlab.files.save_torch`. An entry that cannot be read is
    reported with a warning naming the file, then rebuilt. When the folder cannot be written,
    :class:`ReadOnlyCacheError` names the entry and the folder.
    """
    if path.is_file():
        try:
            return _read(path, from_payload)  # no lock, no write: a read-only cache serves what it holds
        except Exception as err:
            state = f"unreadable ({err})"
    else:
        state = "missing"
    _check_writable(path, state)
    with FileLock(f"{path}.lock"):  # processes asking at once wait for a single build
        if path.is_file():
            try:
                return _read(path, from_payload)
            except Exception as err:  # a corrupt or outdated file means: build again and overwrite
                warnings.warn(f"ignoring unusable cache file {path} ({err}); building it again", stacklevel=2)
        value = build()
        save_torch(to_payload(value), path)
        return value


def _read(path: Path, from_payload: Callable[[Any], T]) -> T:
    """The entry at ``path``: its payload (tensors on the CPU, no pickled code) through ``from_payload``."""
    return from_payload(torch.load(path, map_location="cpu", weights_only=True))


def _check_writable(path: Path, state: str) -> None:
    """Raise :class:`ReadOnlyCacheError` unless ``path``'s folder exists (or can be made) and can be written."""
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        problem = None if os.access(folder, os.W_OK | os.X_OK) else "no write permission"
    except OSError as err:
        problem = str(err)
    if problem is not None:
        raise ReadOnlyCacheError(
            f"the cache entry {path.name} is {state} and the cache folder {folder} is read-only ({problem}): "
            "build it once where the cache can be written (UNLEARNLAB_CACHE names the cache folder)"
        )

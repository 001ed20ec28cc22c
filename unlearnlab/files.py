"""The package's one way of writing a file: atomically, so a reader never sees half of it."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import torch


def atomic_write(path: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` on a temporary file next to ``path``, then rename it over ``path`` in one step.

    A crash or an error inside ``write`` leaves ``path`` as it was (and no temporary file behind); concurrent
    writers each use their own temporary file (named with the process id), and the last rename wins. Creates
    the parent folder. Returns ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def save_torch(payload: object, path: str | os.PathLike) -> Path:
    """``torch.save(payload)`` to ``path`` through :func:`atomic_write`: a reader never loads half a file."""
    return atomic_write(path, lambda tmp: torch.save(payload, tmp))


def write_text(path: str | os.PathLike, text: str) -> Path:
    """``text`` to ``path`` (UTF-8) through :func:`atomic_write`."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))

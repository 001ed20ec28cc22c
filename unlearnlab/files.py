"""The package's one way of writing a file: atomically, so a reader never sees half of it."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


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

"""Long work that resumes: a run saves its state to the cache every so often, and a rerun continues from there.

A :class:`Checkpoint` is a cache entry (:mod:`unlearnlab.cache`) named by the run's configuration, its inputs
(e.g. the teacher's :func:`~unlearnlab.cache.weights_digest`) and a code-version tag, so another configuration or
other code names another file and never resumes from this one. The file also carries that identity, so a file
that was copied or renamed is recognised as foreign. Each save keeps the previous one beside it (``.prev.pt``):
a damaged latest file is reported with a warning and the run resumes from the one before, or starts afresh.

What is saved is the caller's: everything the rest of the run depends on (weights, optimiser states, the random
generators' states, the step reached), as tensors, numbers, strings, lists and dicts (``weights_only`` loading).
A run resumed from a checkpoint then gives the same result as an uninterrupted one with the same seed.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .cache import entry_path, key
from .files import save_torch

FOLDER = "checkpoints"


def resume_enabled() -> bool:
    """Whether runs resume from their checkpoints: yes unless ``UNLEARNLAB_RESUME=0`` (a run from scratch)."""
    return os.environ.get("UNLEARNLAB_RESUME", "1") != "0"


@dataclass(frozen=True)
class Checkpoint:
    """The checkpoint of one run: ``kind`` names the work (``"gkt"``), ``identity`` everything its result depends on."""

    kind: str
    identity: str  # cache.key(...) of the configuration, the inputs' digests and the code version

    @classmethod
    def of(cls, kind: str, config: Any, version: int, **inputs: str) -> Checkpoint:
        """The checkpoint for ``config`` (a dataclass or mapping) and ``inputs`` (digests, seeds as text)."""
        return cls(kind, key({"config": key(config, version), **inputs}, version))

    @property
    def path(self) -> Path:
        """The latest saved state: ``<cache>/checkpoints/<kind>/<identity>.pt``."""
        return entry_path(f"{FOLDER}/{self.kind}", self.identity)

    @property
    def previous(self) -> Path:
        """The state saved before the latest one."""
        return self.path.with_suffix(".prev.pt")

    def save(self, state: dict[str, Any]) -> bool:
        """Write ``state`` atomically, keeping the last saved state as :attr:`previous`; False, with a warning, when
        the cache cannot be written (the grading sandbox's is read-only): the run goes on, it just cannot resume."""
        try:
            if self.path.is_file():
                os.replace(self.path, self.previous)
            save_torch({"kind": self.kind, "identity": self.identity, "state": state}, self.path)
        except OSError as err:
            warnings.warn(f"{self.kind} cannot save its checkpoint ({err}): this run will not resume", stacklevel=2)
            return False
        return True

    def load(self) -> dict[str, Any] | None:
        """The latest usable state (the previous one when the latest is damaged), or None: start from scratch.

        A file that cannot be read, or that belongs to other code or another configuration, is skipped with a
        warning that names it. With ``UNLEARNLAB_RESUME=0`` nothing is loaded."""
        if not resume_enabled():
            return None
        for path in (self.path, self.previous):
            if not path.is_file():
                continue
            try:
                payload = torch.load(path, map_location="cpu", weights_only=True)
            except Exception as err:  # a file cut short or overwritten: fall back to the one before
                warnings.warn(f"ignoring damaged checkpoint {path} ({err})", stacklevel=2)
                continue
            if payload.get("kind") != self.kind or payload.get("identity") != self.identity:
                warnings.warn(f"ignoring checkpoint {path}: it was saved by other code or configuration", stacklevel=2)
                continue
            return payload["state"]
        return None

    def clear(self) -> None:
        """Remove both saved states (a run that wants no trace once its result is stored elsewhere)."""
        for path in (self.path, self.previous):
            path.unlink(missing_ok=True)


def rng_state(*generators: torch.Generator) -> dict[str, Any]:
    """The states of torch's global generator and of ``generators``, for :func:`restore_rng`."""
    return {"torch": torch.get_rng_state(), "generators": [g.get_state() for g in generators]}


def restore_rng(state: dict[str, Any], *generators: torch.Generator) -> None:
    """Put torch's global generator and ``generators`` back in the states :func:`rng_state` saved."""
    torch.set_rng_state(state["torch"])
    for generator, saved in zip(generators, state["generators"], strict=True):
        generator.set_state(saved)

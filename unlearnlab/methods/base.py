"""The one contract every unlearning method follows.

A method is a function ``method(model, splits, config, device=...) -> UnlearningResult``: it takes the
original model (never modified in place), the named :class:`~unlearnlab.data.Splits` and its own config
dataclass, and returns the unlearned model with what it cost.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TypeVar

from torch import nn

from ..training import History

C = TypeVar("C")


@dataclass
class Cost:
    """What unlearning cost: wall-clock seconds and extra bytes stored for it (e.g. saved updates)."""

    seconds: float = 0.0
    stored_bytes: int = 0


@dataclass
class UnlearningResult:
    """The unlearned model, its cost, the training history and any method-specific extras."""

    model: nn.Module
    cost: Cost
    history: History | None = None
    extras: dict[str, object] = field(default_factory=dict)


@contextmanager
def timed(cost: Cost) -> Iterator[Cost]:
    """Add the seconds spent inside the ``with`` block to ``cost.seconds``."""
    start = time.perf_counter()
    try:
        yield cost
    finally:
        cost.seconds += time.perf_counter() - start


def clone(model: nn.Module) -> nn.Module:
    """A deep copy, so a method never changes the model it was given."""
    return copy.deepcopy(model)


def pick_config(configs: Mapping[str, C], config: C | str) -> C:
    """``config`` itself, or the method's config for that profile name (``"quick"``, ``"full"``)."""
    if not isinstance(config, str):
        return config
    if config not in configs:
        raise ValueError(f"no config named {config!r}: give a config object or one of {', '.join(map(repr, configs))}")
    return configs[config]

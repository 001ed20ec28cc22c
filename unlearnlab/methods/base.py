"""The one contract every unlearning method follows, and the helpers the methods share.

Each method is a module under :mod:`unlearnlab.methods` that exports

- ``Config``: a frozen dataclass of the method's settings (one comment per field);
- ``CONFIGS``: ``{"quick": Config(...), "full": Config(...)}``, the profiles;
- ``unlearn(model, splits, config="quick", *, device="cpu", seed=0) -> UnlearningResult`` (or a subclass
  with the method's own typed fields).

``unlearn`` never modifies ``model``; it reports its :class:`Cost`. The model it hands back is in eval mode with
every parameter trainable (``requires_grad=True``), whatever the method froze while it worked, so that what comes
next (a relearning probe, a further fine-tune) treats every method's model alike: :class:`UnlearningResult`
sets that state when it is built, the one place it is enforced. Randomness comes from ``seed`` alone: the method
draws from its own ``torch.Generator`` (named ``rng``, :func:`~unlearnlab.training.make_rng`) and, where torch
only offers the global RNG (weight initialisation), from a forked copy of it
(:func:`~unlearnlab.training.seeded`), so the caller's RNG state is left as it was.
:mod:`unlearnlab.methods.registry` names every method; the losses several methods share are in
:mod:`unlearnlab.methods.losses`.

The shared preamble of a method: :func:`pick_config` for the config, :func:`require` for the sets it needs,
``with timed() as cost:`` around the work, and :func:`train_copy` when the work is training a copy of the model
with its own step loss (and, optionally, gradient masks). The data helpers several methods share:
:func:`retain_loader`, :func:`relabel_mapping` and :func:`wrong_labels`.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import TypeVar

import torch
from torch import nn

from ..data import NUM_CLASSES, BatchLoader, Splits, make_loader
from ..training import Batches, History, StepLoss, cross_entropy_step, fit, seeded
from .saliency import apply_gradient_masks

C = TypeVar("C")


@dataclass
class Cost:
    """What unlearning cost: wall-clock seconds and extra bytes stored for it (e.g. saved updates)."""

    seconds: float = 0.0
    stored_bytes: int = 0


@dataclass
class UnlearningResult:
    """The unlearned model, its cost and the training history; methods subclass it to add typed fields.

    Building one hands the model back in the contract's state: eval mode, every parameter trainable.
    """

    model: nn.Module
    cost: Cost
    history: History | None = None

    def __post_init__(self) -> None:
        """Put the model in the contract's state: eval mode, every parameter trainable."""
        self.model.eval()
        for p in self.model.parameters():
            p.requires_grad_(True)


@contextmanager
def timed(cost: Cost | None = None) -> Iterator[Cost]:
    """Add the seconds spent inside the ``with`` block to ``cost.seconds`` (a new :class:`Cost` when not given)."""
    cost = cost if cost is not None else Cost()
    start = time.perf_counter()
    try:
        yield cost
    finally:
        cost.seconds += time.perf_counter() - start


def require(splits: Splits, method: str, *parts: str) -> None:
    """A clear error when a set the method needs is empty: ``parts`` name fields of ``splits`` ("forget", "retain")."""
    for part in parts:
        if len(getattr(splits, part)) == 0:
            raise ValueError(f"the {part} set is empty: {method} needs the {' and the '.join(parts)} set")


def train_copy(
    model: nn.Module,
    loader: Batches,
    *,
    num_epochs: int,
    lr: float,
    device: str | torch.device,
    desc: str,
    loss_fn: StepLoss = cross_entropy_step,
    masks: Mapping[str, torch.Tensor] | None = None,
) -> tuple[nn.Module, History]:
    """Train a copy of ``model`` with :func:`~unlearnlab.training.fit` (Adam); ``model`` itself is untouched.

    ``masks`` (parameter name -> bool tensor) let only the chosen entries move
    (:func:`~unlearnlab.methods.saliency.apply_gradient_masks`); afterwards the hooks are removed, and the
    method's :class:`UnlearningResult` makes every parameter trainable again. Returns the trained copy and its
    history.
    """
    trained = clone(model).to(device)
    handles = apply_gradient_masks(trained, masks) if masks is not None else []
    try:
        history = fit(trained, loader, num_epochs=num_epochs, lr=lr, loss_fn=loss_fn, device=device, desc=desc)
    finally:
        for handle in handles:
            handle.remove()
    return trained, history


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


def fresh_model(model: nn.Module, seed: int | None = None) -> nn.Module:
    """A copy of ``model`` with newly initialised weights, reset BatchNorm statistics, every parameter trainable.

    ``seed`` (not ``None``) draws the weights reproducibly without touching the caller's RNG; with ``None`` they
    come from the current global RNG (e.g. inside :func:`seeded`). ``model`` is left unchanged.
    """
    student = clone(model)
    with seeded(seed) if seed is not None else nullcontext():
        for module in student.modules():
            if module is not student and hasattr(module, "reset_parameters"):
                module.reset_parameters()
            if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.track_running_stats:
                module.reset_running_stats()
    for p in student.parameters():
        p.requires_grad_(True)
    return student


@contextmanager
def frozen(model: nn.Module) -> Iterator[nn.Module]:
    """Inside the block ``model`` is in eval mode with no parameter requiring grad; both are restored after.

    For optimising inputs against a fixed network (noise, DeepInversion images): BatchNorm uses its running
    statistics and the weights get no gradient.
    """
    was_training = model.training
    requires_grad = [p.requires_grad for p in model.parameters()]
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        yield model
    finally:
        for p, flag in zip(model.parameters(), requires_grad):
            p.requires_grad_(flag)
        model.train(was_training)


# ----------------------------------------------------------------------------------------------------------
# Data several methods share


def retain_loader(splits: Splits, batch_size: int, seed: int | None) -> BatchLoader:
    """A shuffled loader over the retain set, or a clear error when it is empty (the fine-tunes' data)."""
    if len(splits.retain) == 0:
        raise ValueError("the retain set is empty: fine-tuning needs the data to keep")
    return make_loader(splits.retain, batch_size, shuffle=True, seed=seed)


def relabel_mapping(forget_classes: Iterable[int], relabel_to: int) -> dict[int, int]:
    """``{c: relabel_to}`` for every forget class; class forgetting only (a random forget set has no class)."""
    forget_classes = tuple(forget_classes)
    if not forget_classes:
        raise ValueError("relabelling needs forget classes: it forgets a class, not a random subset")
    if relabel_to in forget_classes:
        raise ValueError(f"relabel_to={relabel_to} is itself a forget class {forget_classes}: pick a retained class")
    return dict.fromkeys(forget_classes, relabel_to)


def wrong_labels(y: torch.Tensor, rng: torch.Generator, num_classes: int = NUM_CLASSES) -> torch.Tensor:
    """A label for each item drawn uniformly from the ``num_classes - 1`` classes that are not ``y``'s own.

    Draws an offset in 1..C-1 and adds it modulo C, so the new label is never the true one (the random labels of
    :mod:`~unlearnlab.methods.random_labels` and SalUn).
    """
    if num_classes < 2:
        raise ValueError(f"a wrong label needs at least 2 classes, got {num_classes}")
    offset = torch.randint(1, num_classes, y.shape, generator=rng)
    return (y + offset) % num_classes

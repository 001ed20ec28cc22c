"""Seeding and random generators, device choice, the one shared training loop (:func:`fit`) and evaluation."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

Batches = Iterable[tuple[torch.Tensor, torch.Tensor]]
# a step loss maps (model, X, y) to a scalar loss; methods plug their own into fit()
StepLoss = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


def seed_everything(seed: int | None) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) whenever ``seed`` is not ``None`` (0 included).

    For notebooks and scripts, which own the process. Library code never calls it: a method draws from its own
    ``torch.Generator`` (:func:`make_rng`) and initialises weights inside :func:`seeded`.
    """
    if seed is None:
        return
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


def make_rng(seed: int | None) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with ``seed`` (``None``: seeded from the OS, not reproducible)."""
    rng = torch.Generator()
    if seed is None:
        rng.seed()
    else:
        rng.manual_seed(seed)
    return rng


@contextmanager
def seeded(seed: int | None) -> Iterator[None]:
    """Inside the block torch's global RNG starts from ``seed``; afterwards the caller's RNG state is restored.

    For what only the global RNG drives (``reset_parameters``, layer constructors); ``seed=None`` leaves the
    forked state as it was.
    """
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    with torch.random.fork_rng(devices=devices):
        if seed is not None:
            torch.manual_seed(seed)
        yield


def pick_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; an explicit choice is checked, not silently changed."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        chosen = torch.device(device)
    except RuntimeError as err:
        raise ValueError(f"unknown device {device!r}: use 'auto', 'cpu' or 'cuda'") from err
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but no CUDA GPU is available: use 'auto' or 'cpu'")
    return chosen


def progress(total: int, desc: str, unit: str = "step") -> tqdm:
    """A progress bar (a widget in Jupyter) for long work; ``TQDM_DISABLE=1`` turns it off, in notebooks too.

    tqdm's notebook bar ignores tqdm's own environment settings, so the switch is read here.
    """
    disable = os.environ.get("TQDM_DISABLE", "").lower() in ("1", "true", "yes")
    return tqdm(total=total, desc=desc, unit=unit, leave=False, disable=disable)


def cross_entropy_step(model: nn.Module, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Plain supervised step loss: cross-entropy of the model's logits against ``y``."""
    return F.cross_entropy(model(X), y)


@dataclass
class History:
    """What :func:`fit` measured: the loss of every step, per-epoch means, validation accuracy, time."""

    step_loss: list[float] = field(default_factory=list)
    epoch_loss: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    seconds: float = 0.0


def set_train_mode(model: nn.Module) -> None:
    """Train mode, except BatchNorm layers whose parameters are all frozen: they keep their statistics."""
    model.train()
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            params = list(module.parameters(recurse=False))
            if params and not any(p.requires_grad for p in params):
                module.eval()


def fit(
    model: nn.Module,
    loader: Batches,
    *,
    num_epochs: int = 1,
    lr: float = 1e-3,
    loss_fn: StepLoss = cross_entropy_step,
    optimizer: torch.optim.Optimizer | None = None,
    device: torch.device | str = "cpu",
    val_loader: Batches | None = None,
    lr_schedule: str = "constant",
    desc: str = "train",
    on_step: Callable[[int], None] | None = None,
) -> History:
    """Train ``model`` in place for ``num_epochs`` and return its :class:`History`.

    Only parameters with ``requires_grad`` are optimised (Adam with ``lr`` unless ``optimizer`` is given);
    ``loss_fn(model, X, y)`` defines the objective, so every unlearning method shares this loop.
    ``lr_schedule="onecycle"`` warms the learning rate up to ``lr`` and anneals it (fast convergence).
    ``on_step(step)``, when given, is called after every optimiser step with its index (0, 1, ... over all
    epochs), e.g. to record what the step changed (the amnesiac ledger, notebook 07).
    """
    if lr_schedule not in ("constant", "onecycle"):
        raise ValueError(f"unknown lr_schedule {lr_schedule!r}: use 'constant' or 'onecycle'")
    device = torch.device(device)
    model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters: unfreeze at least one layer")
    optimizer = optimizer or torch.optim.Adam(params, lr=lr)
    steps = num_epochs * len(loader)  # type: ignore[arg-type]
    scheduler = (
        torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps)
        if lr_schedule == "onecycle"
        else None
    )
    history = History()
    start = time.perf_counter()
    with progress(steps, desc) as bar:
        for _ in range(num_epochs):
            set_train_mode(model)
            losses = []
            for X, y in loader:
                X, y = X.to(device, non_blocking=True), y.to(device, non_blocking=True)
                loss = loss_fn(model, X, y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if scheduler is not None:
                    scheduler.step()
                if on_step is not None:
                    on_step(len(history.step_loss) + len(losses))
                losses.append(loss.item())
                bar.update(1)
                bar.set_postfix(loss=f"{losses[-1]:.4f}")
            history.step_loss += losses
            history.epoch_loss.append(float(np.mean(losses)))
            if val_loader is not None:
                logits, labels = predict(model, val_loader, device)
                history.val_acc.append(float((logits.argmax(1) == labels).float().mean()))
    model.eval()
    history.seconds = time.perf_counter() - start
    return history


@torch.no_grad()
def predict(model: nn.Module, loader: Batches, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Logits (N, C) and labels (N,) of a whole loader, on the CPU, with the model in eval mode."""
    device = torch.device(device)
    model.to(device).eval()
    logits, labels = [], []
    for X, y in loader:
        logits.append(model(X.to(device)).float().cpu())
        labels.append(y)
    return torch.cat(logits), torch.cat(labels)

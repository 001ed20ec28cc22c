"""Anamnesis index (AIN): how fast an unlearned model relearns what it was told to forget (notebook 04).

Chundawat et al., "Zero-shot machine unlearning" (2023). Fine-tune a copy of a model on a little real data
that contains the forget class and count the steps until its forget-class accuracy reaches ``alpha`` times
the original model's. AIN is that count for the unlearned model over the same count for the model retrained
from scratch: near 1, the forget class is as new to it as to the gold standard; well below 1, it remembers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..data import TensorData, make_loader
from ..training import set_train_mode
from .base import clone, pick_config


@dataclass(frozen=True)
class RelearnConfig:
    """How the relearning probe fine-tunes a copy of a model."""

    alpha: float = 0.95  # target: alpha x the original model's forget-class accuracy
    lr: float = 1e-2  # plain SGD learning rate: small, so that step counts separate the models
    momentum: float = 0.9  # SGD momentum
    batch_size: int = 32  # real images per relearning step
    max_steps: int = 200  # give up after this many steps (the count is then max_steps, a lower bound)


CONFIGS = {
    "quick": RelearnConfig(max_steps=40),
    "full": RelearnConfig(max_steps=300),
}


def index_from_curves(curve_unlearned: Sequence[float], curve_retrained: Sequence[float], target: float) -> float:
    """AIN from two relearning curves: the first step at which each reaches ``target``, unlearned over retrained.

    ``curve[i]`` is the forget-class accuracy after ``i`` relearning steps; both curves must reach ``target``.
    """
    firsts = []
    for name, curve in (("unlearned", curve_unlearned), ("retrained", curve_retrained)):
        first = next((steps for steps, value in enumerate(curve) if value >= target), None)
        if first is None:
            raise ValueError(f"the {name} curve never reaches {target}")
        firsts.append(first)
    return anamnesis_index(*firsts)


def anamnesis_index(steps_unlearned: int, steps_retrained: int) -> float:
    """AIN = relearn steps of the unlearned model / relearn steps of the retrained model."""
    if steps_unlearned < 0 or steps_retrained < 0:
        raise ValueError(f"step counts cannot be negative, got {steps_unlearned} and {steps_retrained}")
    if steps_retrained == 0:
        raise ValueError("the retrained model needed 0 steps: it already knows the forget class, so AIN is undefined")
    return steps_unlearned / steps_retrained


@dataclass
class RelearnResult:
    """The relearning curve of one model and the steps it took to reach the target."""

    steps: int  # steps to reach the target (max_steps when it never did: a lower bound)
    reached: bool  # False when the target was not reached within max_steps
    curve: list[float] = field(default_factory=list)  # forget-class accuracy after 0, 1, 2, ... steps
    target: float = 0.0  # the forget-class accuracy aimed at


@torch.no_grad()
def _accuracy(model: nn.Module, data: TensorData) -> float:
    """Accuracy of ``model`` on ``data`` in eval mode (one batch: the probe sets are small)."""
    model.eval()
    X, y = data.X.to(next(model.parameters()).device), data.y.to(next(model.parameters()).device)
    return float((model(X).argmax(1) == y).float().mean())


def relearn(
    model: nn.Module,
    relearn_data: TensorData,
    forget_eval: TensorData,
    target: float,
    config: RelearnConfig | str = "quick",
    *,
    device: torch.device | str = "cpu",
    seed: int | None = 0,
) -> RelearnResult:
    """Fine-tune a copy of ``model`` on ``relearn_data`` until its accuracy on ``forget_eval`` reaches ``target``."""
    config = pick_config(CONFIGS, config)
    if len(relearn_data) == 0 or len(forget_eval) == 0:
        raise ValueError("relearn_data and forget_eval must hold at least one image each")
    device = torch.device(device)
    model = clone(model).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum)
    loader = make_loader(relearn_data, config.batch_size, shuffle=True, seed=seed)
    curve = [_accuracy(model, forget_eval)]
    steps = 0
    while curve[-1] < target and steps < config.max_steps:
        for X, y in loader:
            set_train_mode(model)
            loss = F.cross_entropy(model(X.to(device)), y.to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            steps += 1
            curve.append(_accuracy(model, forget_eval))  # measured after every step
            if curve[-1] >= target or steps >= config.max_steps:
                break
    reached = curve[-1] >= target
    return RelearnResult(steps, reached, curve, target)


@dataclass
class AnamnesisRow:
    """The anamnesis index of one model, with its relearning run."""

    ain: float  # relearn steps of this model / relearn steps of the retrained model
    relearn: RelearnResult  # its curve; ``relearn.reached`` is False when ``ain`` is only a lower bound


def anamnesis(
    models: Mapping[str, nn.Module],
    retrained: nn.Module,
    original_forget_acc: float,
    relearn_data: TensorData,
    forget_eval: TensorData,
    config: RelearnConfig | str = "quick",
    *,
    device: torch.device | str = "cpu",
    seed: int | None = 0,
) -> tuple[dict[str, AnamnesisRow], RelearnResult]:
    """AIN of each of ``models`` against ``retrained`` (same data, same seed), and the retrained model's run.

    The target is ``config.alpha`` times ``original_forget_acc`` (the original model's accuracy on
    ``forget_eval``).
    """
    config = pick_config(CONFIGS, config)
    target = config.alpha * original_forget_acc
    gold = relearn(retrained, relearn_data, forget_eval, target, config, device=device, seed=seed)
    rows = {}
    for name, model in models.items():
        ours = relearn(model, relearn_data, forget_eval, target, config, device=device, seed=seed)
        rows[name] = AnamnesisRow(anamnesis_index(ours.steps, gold.steps), ours)
    return rows, gold

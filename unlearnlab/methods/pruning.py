"""Pruning for unlearning (seed 003; notebook 06): "prune first, then unlearn", and the l1-sparse fine-tune.

Jia et al. (2023), "Model Sparsity Can Simplify Machine Unlearning": a sparse model forgets more easily.

- Global L1 magnitude pruning: over the weights of every Conv and Linear layer *together*, the ``sparsity``
  share with the smallest |w| is set to 0 (``torch.nn.utils.prune.global_unstructured``); biases are kept.
  Global, not per layer, and Linear layers included: the course CNN keeps 93.6 % of its weights in ``fc1``
  (401,408 of 428,960), so pruning only convolutions (as the Unlearn-Sparse code does) would touch 4.4 %.
- Prune, then fine-tune on the retain set with the mask held fixed, so the model stays exactly as sparse.
- l1-sparse fine-tune: on the retain set, L = CE(f(X), y) + gamma_t * ||theta||_1 with
  gamma_t = alpha * (1 - t / T) decaying linearly over the T steps (the paper decays it per epoch).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import prune

from ..data import Splits, make_loader
from ..training import StepLoss, fit
from .base import Cost, UnlearningResult, clone, pick_config, timed

PRUNABLE = (nn.Conv2d, nn.Linear)  # the layer types whose weights are ranked and pruned


def prunable_weights(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(name, module)`` of every Conv2d and Linear layer, in model order."""
    layers = [(name, module) for name, module in model.named_modules() if isinstance(module, PRUNABLE)]
    if not layers:
        raise ValueError("the model has no Conv2d or Linear layer to prune")
    return layers


def weight_share(model: nn.Module) -> dict[str, float]:
    """Each prunable layer's share of all prunable weights (the course CNN: ``fc1`` 0.936)."""
    counts = {name: module.weight.numel() for name, module in prunable_weights(model)}
    total = sum(counts.values())
    return {name: n / total for name, n in counts.items()}


def sparsity(model: nn.Module) -> float:
    """The share of Conv and Linear weights that are exactly zero."""
    weights = [module.weight for _, module in prunable_weights(model)]
    return sum(int((w == 0).sum()) for w in weights) / sum(w.numel() for w in weights)


def layer_sparsity(model: nn.Module) -> dict[str, float]:
    """Each prunable layer's share of zero weights (global pruning spreads them unevenly)."""
    return {name: float((module.weight == 0).float().mean()) for name, module in prunable_weights(model)}


def _check_sparsity(value: float) -> float:
    if not 0.0 <= value < 1.0:
        raise ValueError(f"sparsity must be in [0, 1) (the share of weights set to zero), got {value}")
    return float(value)


def apply_global_mask(model: nn.Module, amount: float) -> list[tuple[nn.Module, str]]:
    """Mask, in place, the ``amount`` share of Conv/Linear weights of smallest |w|, ranked over all layers at once.

    The weights stay reparametrised (``weight = weight_orig * weight_mask``) so that training keeps the zeros;
    :func:`make_permanent` turns them back into plain weights. Returns the masked ``(module, "weight")`` pairs.
    """
    params = [(module, "weight") for _, module in prunable_weights(model)]
    # round(amount * total) weights get mask 0: the smallest |w| over the concatenation of every layer
    prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=_check_sparsity(amount))
    return params


def make_permanent(params: Iterable[tuple[nn.Module, str]]) -> None:
    """Fold each mask into its weight (``prune.remove``): the state_dict then holds plain, sparse weights."""
    for module, name in params:
        prune.remove(module, name)


def global_magnitude_prune(model: nn.Module, amount: float) -> nn.Module:
    """A pruned copy of ``model``: the ``amount`` share of Conv/Linear weights with the smallest |w| set to 0.

    One-shot global L1 (magnitude) pruning; ``model`` itself is left untouched.
    """
    pruned = clone(model)
    make_permanent(apply_global_mask(pruned, amount))
    return pruned.eval()


@dataclass(frozen=True)
class PruneConfig:
    """Prune first, then unlearn: one-shot global magnitude pruning, then fine-tuning on the retain set."""

    sparsity: float = 0.9  # share of Conv + Linear weights set to zero (global |w| ranking); biases kept
    num_epochs: int = 1  # fine-tuning epochs on the retain set, with the pruning mask held fixed
    lr: float = 1e-3  # Adam, constant
    batch_size: int = 128


CONFIGS = {
    "quick": PruneConfig(sparsity=0.9, num_epochs=1),
    "full": PruneConfig(sparsity=0.9, num_epochs=3),
}


def _retain_loader(splits: Splits, batch_size: int, seed: int | None):
    if len(splits.retain) == 0:
        raise ValueError("the retain set is empty: fine-tuning needs the data to keep")
    return make_loader(splits.retain, batch_size, shuffle=True, seed=seed)


def prune_and_finetune(
    model: nn.Module,
    splits: Splits,
    config: PruneConfig | str = "quick",
    *,
    device: str | torch.device = "auto",
    seed: int | None = 0,
) -> UnlearningResult:
    """Prune a copy of ``model`` to ``config.sparsity``, then fine-tune it on the retain set, mask fixed.

    The result's model has plain sparse weights (exactly ``config.sparsity`` of them zero); ``extras`` holds
    the measured ``sparsity``.
    """
    config = pick_config(CONFIGS, config)
    cost = Cost()
    with timed(cost):
        loader = _retain_loader(splits, config.batch_size, seed)
        unlearned = clone(model)
        params = apply_global_mask(unlearned, config.sparsity)
        history = fit(unlearned, loader, num_epochs=config.num_epochs, lr=config.lr, device=device, desc="prune+FT")
        make_permanent(params)
    return UnlearningResult(unlearned.eval(), cost, history, {"sparsity": sparsity(unlearned)})


@dataclass(frozen=True)
class L1SparseConfig:
    """The l1-sparse fine-tune of Jia et al. (2023): retain-set cross-entropy plus a decaying L1 penalty."""

    alpha: float = 5e-4  # gamma_0, the L1 weight at the first step (the paper's CIFAR-10 value)
    num_epochs: int = 1  # over the retain set; gamma decays linearly to 0 over all of them
    lr: float = 1e-3  # Adam, constant
    batch_size: int = 128


L1_CONFIGS = {
    "quick": L1SparseConfig(num_epochs=1),
    "full": L1SparseConfig(num_epochs=3),
}


def l1_norm(model: nn.Module) -> torch.Tensor:
    """||theta||_1 over every trainable parameter (weights and biases, as the Unlearn-Sparse code)."""
    return sum(p.abs().sum() for p in model.parameters() if p.requires_grad)


def l1_sparse_step(alpha: float, total_steps: int) -> StepLoss:
    """A step loss for :func:`~unlearnlab.training.fit`: CE + alpha * (1 - t / T) * ||theta||_1 at step t of T."""
    if total_steps < 1:
        raise ValueError(f"total_steps must be positive, got {total_steps}")
    step = 0

    def loss_fn(model: nn.Module, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        nonlocal step
        gamma = alpha * max(0.0, 1.0 - step / total_steps)  # 0 <= gamma_t <= alpha
        step += 1
        return F.cross_entropy(model(X), y) + gamma * l1_norm(model)

    return loss_fn


def l1_sparse_finetune(
    model: nn.Module,
    splits: Splits,
    config: L1SparseConfig | str = "quick",
    *,
    device: str | torch.device = "auto",
    seed: int | None = 0,
) -> UnlearningResult:
    """Fine-tune a copy of ``model`` on the retain set with the linearly decaying L1 penalty."""
    config = pick_config(L1_CONFIGS, config)
    cost = Cost()
    with timed(cost):
        loader = _retain_loader(splits, config.batch_size, seed)
        unlearned = clone(model)
        loss_fn = l1_sparse_step(config.alpha, config.num_epochs * len(loader))
        history = fit(
            unlearned, loader, num_epochs=config.num_epochs, lr=config.lr, loss_fn=loss_fn, device=device, desc="l1"
        )
    return UnlearningResult(unlearned.eval(), cost, history)

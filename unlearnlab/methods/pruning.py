"""Prune first, then unlearn (Jia et al., 2023; notebook 06): one-shot global magnitude pruning, then fine-tuning.

Jia et al. (2023), "Model Sparsity Can Simplify Machine Unlearning" (NeurIPS): a sparse model forgets more
easily, and pruning before fine-tuning on the retain set closes more of the gap to retraining than
fine-tuning alone. Avadhani (*Machine Learning Final Project: Machine Unlearning*) made its CIFAR-10 ResNet-18
sparse another way, with an L1 penalty that drives weights towards zero (here that is
:mod:`unlearnlab.methods.l1_sparse`, not this module), and read the MIA falling from 0.578 to 0.52.

- Global L1 magnitude pruning: over the weights of every Conv and Linear layer *together*, the ``sparsity``
  share with the smallest |w| is set to 0 (``torch.nn.utils.prune.global_unstructured``); biases are kept.
  Global, not per layer, and Linear layers included: the course CNN keeps 93.6 % of its weights in ``fc1``
  (401,408 of 428,960), so pruning only convolutions (as the Unlearn-Sparse code does) would touch 4.4 %.
- Then fine-tuning on the retain set with the mask held fixed, so the model stays exactly as sparse.

Reference settings: Jia et al. prune one-shot (OMP) to 95 % sparsity and fine-tune 10 epochs on the retain set
(SGD, lr 0.01, CIFAR-10). Here: 95 % sparsity (over Conv *and* Linear weights), Adam at 1e-3, 3 epochs
(quick) / 5 (full) on the 3,600 retain images of lesson 06's memorising model (``MEMORISING`` in
:mod:`unlearnlab.lessons.mia_pruning`; quick, measured: simple_mia 0.565 -> 0.535, retain accuracy
97.9 -> 93.0 %; 90 % sparsity kept 96.8 % but only reached 0.544).
The l1-sparse fine-tune, the other route to sparsity, is :mod:`unlearnlab.methods.l1_sparse`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils import prune

from ..data import Splits
from ..training import fit
from .base import UnlearningResult, clone, pick_config, retain_loader, timed

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


def global_magnitude_masks(weights: Sequence[torch.Tensor], amount: float) -> list[torch.Tensor]:
    """Keep-masks of global magnitude pruning: ``False`` for the ``round(amount x total)`` entries of smallest |w|.

    The ranking runs over every tensor of ``weights`` at once (one threshold for all layers), as
    ``prune.global_unstructured`` with ``L1Unstructured`` does; each mask is a bool tensor of its weight's shape,
    ``True`` where the weight is kept. The weights are not changed.
    """
    amount = _check_sparsity(amount)
    if not weights:
        raise ValueError("no weights given: pass the list of weight tensors to rank together")
    flat = torch.cat([w.detach().abs().flatten() for w in weights])
    keep = torch.ones_like(flat, dtype=torch.bool)
    n_pruned = round(amount * flat.numel())  # torch's own count (Python's round)
    if n_pruned:
        keep[torch.topk(flat, n_pruned, largest=False).indices] = False
    return [mask.view_as(w) for mask, w in zip(keep.split([w.numel() for w in weights]), weights)]


def apply_global_mask(model: nn.Module, amount: float) -> list[tuple[nn.Module, str]]:
    """Mask, in place, the ``amount`` share of Conv/Linear weights of smallest |w|, ranked over all layers at once.

    The weights stay reparametrised (``weight = weight_orig * weight_mask``) so that training keeps the zeros;
    :func:`make_permanent` turns them back into plain weights. Returns the masked ``(module, "weight")`` pairs.
    """
    modules = [module for _, module in prunable_weights(model)]
    # the masks of prune.global_unstructured with L1Unstructured, computed here: torch's own flattens each weight
    # with .view(-1), which channels-last convolution weights (build_model's layout) do not allow
    masks = global_magnitude_masks([module.weight for module in modules], amount)
    for module, mask in zip(modules, masks):
        prune.custom_from_mask(module, "weight", mask)
    return [(module, "weight") for module in modules]


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
class Config:
    """Prune first, then unlearn: one-shot global magnitude pruning, then fine-tuning on the retain set."""

    sparsity: float = 0.95  # share of Conv + Linear weights set to zero (global |w| ranking); biases kept
    num_epochs: int = 3  # fine-tuning epochs on the retain set, with the pruning mask held fixed
    lr: float = 1e-3  # Adam, constant
    batch_size: int = 128  # images per step


CONFIGS = {
    "quick": Config(sparsity=0.95, num_epochs=3),
    "full": Config(sparsity=0.95, num_epochs=5),
}


@dataclass
class PruneResult(UnlearningResult):
    """The pruned, fine-tuned model and its measured sparsity."""

    sparsity: float = 0.0  # share of Conv + Linear weights that are exactly zero in the returned model


def unlearn(
    model: nn.Module,
    splits: Splits,
    config: Config | str = "quick",
    *,
    device: torch.device | str = "cpu",
    seed: int | None = 0,
) -> PruneResult:
    """Prune a copy of ``model`` to ``config.sparsity``, then fine-tune it on the retain set, mask fixed.

    The returned model has plain sparse weights (exactly ``round(sparsity x weights)`` of them zero).
    """
    config = pick_config(CONFIGS, config)
    with timed() as cost:
        loader = retain_loader(splits, config.batch_size, seed)
        unlearned = clone(model)
        params = apply_global_mask(unlearned, config.sparsity)
        history = fit(unlearned, loader, num_epochs=config.num_epochs, lr=config.lr, device=device, desc="prune+FT")
        make_permanent(params)
    return PruneResult(unlearned.eval(), cost, history, sparsity(unlearned))

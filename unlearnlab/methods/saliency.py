"""Saliency-chosen trainable weights (notebook 02): score each weight by the gradient of the forget-class loss,
train only the top fraction and keep every other entry bit-identical through a gradient mask.

Only the weights and biases of convolution and linear layers are candidates; BatchNorm parameters stay frozen,
so :func:`unlearnlab.training.fit` keeps those layers in eval mode and their running statistics untouched.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ..training import Batches

Masks = dict[str, torch.Tensor]  # parameter name -> boolean tensor of the parameter's shape (True = trainable)
CANDIDATE_LAYERS = (nn.Conv2d, nn.Linear)


def candidate_parameters(model: nn.Module) -> dict[str, nn.Parameter]:
    """The parameters saliency may choose from: weights and biases of conv and linear layers, by name."""
    return {
        f"{module_name}.{name}" if module_name else name: p
        for module_name, module in model.named_modules()
        if isinstance(module, CANDIDATE_LAYERS)
        for name, p in module.named_parameters(recurse=False)
    }


def gradient_saliency(model: nn.Module, loader: Batches, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    """SalUn's weight saliency |sum_b dL_b/dw| for every candidate parameter, L_b the mean cross-entropy of
    batch b on the loader's labels.

    As SalUn (Fan et al., 2024, "SalUn: Empowering Machine Unlearning via Gradient-based Weight Saliency",
    ``generate_mask.py``): the gradients of the batch-mean losses are summed over the batches, and the magnitude
    is taken of the total, not of each batch's gradient (batches that pull a weight in opposite directions
    cancel; on a mixed-label forget set the two orders choose visibly different masks). Give it the forget set
    with its original labels (class 6): large scores mark the weights that class 6 relies on. The model is
    evaluated in eval mode; it is left as it was given (parameters, mode and device: a model on another device
    is scored on a copy).
    """
    device = torch.device(device)
    on_device = all(p.device.type == device.type for p in model.parameters())
    net = model if on_device else copy.deepcopy(model).to(device)
    was_training = net.training
    net.eval()
    params = candidate_parameters(net)
    # plain (contiguous) score tensors, whatever the weights' layout: a student's ``s.view(-1)`` works on them
    scores = {name: torch.zeros(p.shape) for name, p in params.items()}
    n_batches = 0
    try:
        for X, y in loader:
            loss = F.cross_entropy(net(X.to(device)), y.to(device))  # the batch mean, as SalUn
            grads = torch.autograd.grad(loss, list(params.values()))
            for name, g in zip(params, grads):
                scores[name] += g.detach().cpu()  # signed: the magnitude is taken of the sum
            n_batches += 1
    finally:
        net.train(was_training)
    if n_batches == 0:
        raise ValueError("the loader is empty: give gradient_saliency the forget set (at least one batch)")
    return {name: s.abs() for name, s in scores.items()}


def top_fraction_mask(scores: Mapping[str, torch.Tensor], fraction: float) -> Masks:
    """Boolean masks choosing the ``fraction`` of entries with the largest score, ranked across all tensors."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    if not scores:
        raise ValueError("scores is empty: nothing to choose from")
    flat = torch.cat([s.flatten() for s in scores.values()])  # (P,)
    k = max(1, round(fraction * flat.numel()))
    chosen = torch.zeros(flat.numel(), dtype=torch.bool)
    chosen[torch.topk(flat, k).indices] = True  # exactly k entries, ties broken by topk
    masks, start = {}, 0
    for name, s in scores.items():
        masks[name] = chosen[start : start + s.numel()].view_as(s)
        start += s.numel()
    return masks


def layer_masks(model: nn.Module, layers: Iterable[str]) -> Masks:
    """Masks that make every entry of the named layers trainable (e.g. ``["fc3"]``: the output layer only)."""
    layers = tuple(layers)
    params = candidate_parameters(model)
    unknown = [layer for layer in layers if not any(name.startswith(f"{layer}.") for name in params)]
    if unknown:
        raise ValueError(f"no conv or linear layer named {unknown[0]!r}; the model has {sorted(params)}")
    return {
        name: torch.full_like(p, name.rsplit(".", 1)[0] in layers, dtype=torch.bool, device="cpu")
        for name, p in params.items()
    }


def mask_fraction(masks: Mapping[str, torch.Tensor]) -> float:
    """Fraction of all masked entries that are trainable."""
    total = sum(m.numel() for m in masks.values())
    return sum(int(m.sum()) for m in masks.values()) / total


def mask_summary(masks: Mapping[str, torch.Tensor]) -> dict[str, dict[str, float]]:
    """Per tensor: how many entries are chosen, out of how many, and the fraction (for a table or a bar plot)."""
    return {
        name: {"chosen": int(m.sum()), "size": m.numel(), "fraction": float(m.float().mean())}
        for name, m in masks.items()
    }


def apply_gradient_masks(model: nn.Module, masks: Mapping[str, torch.Tensor]) -> list:
    """Freeze everything the masks do not choose; returns hook handles (call ``.remove()`` on each after training).

    Tensors with no chosen entry and every non-candidate parameter get ``requires_grad=False``; the others get
    a hook that zeroes the gradient of unchosen entries. With Adam or SGD without weight decay, a zero gradient
    means a zero update, so unchosen entries stay bit-identical.
    """
    params = dict(model.named_parameters())
    unknown = sorted(set(masks) - set(params))
    if unknown:
        raise ValueError(f"mask for {unknown[0]!r}, which is not a parameter of the model")
    handles = []
    for name, p in params.items():
        mask = masks.get(name)
        if mask is not None and mask.shape != p.shape:
            raise ValueError(f"mask for {name} has shape {tuple(mask.shape)}, parameter has {tuple(p.shape)}")
        p.requires_grad_(mask is not None and bool(mask.any()))
        if p.requires_grad and not bool(mask.all()):
            keep = mask.to(device=p.device, dtype=p.dtype)
            handles.append(p.register_hook(lambda g, keep=keep: g * keep))
    return handles

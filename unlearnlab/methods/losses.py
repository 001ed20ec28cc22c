"""The losses several unlearning methods share: soft targets, the distillation KL and DeepInversion's BN prior.

- :func:`kd_loss`, T^2 KL(targets || softmax(student / T)), is the package's one KL/KD primitive: distillation
  (notebook 03), the bad teacher, SCRUB, GKT and the zero-shot student use it, on the targets of
  :func:`soft_targets` (the teacher softened) or :func:`soft_targets_without` (the forget classes removed).
- :func:`bn_statistics_loss` (R_bn) measures how far a batch's features are from a BatchNorm layer's running
  statistics: DeepInversion's data prior (notebook 05), which GKT's generator uses too
  (:func:`bn_statistics_hooks`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from ..data import check_classes
from ..models import has_batchnorm

# ----------------------------------------------------------------------------------------------------------
# Distillation


def soft_targets(teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """The teacher's softened distribution softmax(z / T), (B, C)."""
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    return F.softmax(teacher_logits / temperature, dim=1)


def soft_targets_without(
    teacher_logits: torch.Tensor, forget_classes: Iterable[int], temperature: float = 1.0
) -> torch.Tensor:
    """The teacher's softened probabilities with the forget classes removed and the rest renormalised.

    p_c = exp(z_c / T) / sum_{k not forgotten} exp(z_k / T) for a retained class c, and p_c = 0 for a forgotten
    one; ``teacher_logits`` (B, C) -> probabilities (B, C), each row summing to 1.
    """
    forget_classes = check_classes(forget_classes, num_classes=teacher_logits.shape[1])
    if len(forget_classes) >= teacher_logits.shape[1]:
        raise ValueError("every class is forgotten: keep at least one")
    masked = teacher_logits.clone()
    masked[:, list(forget_classes)] = float("-inf")  # exp(-inf) = 0: no mass on a forgotten class
    return soft_targets(masked, temperature)


def kd_loss(student_logits: torch.Tensor, target_probs: torch.Tensor, temperature: float) -> torch.Tensor:
    """T^2 * KL(targets || softmax(student / T)), averaged over the batch (``reduction="batchmean"``).

    KL(p || q) = sum_c p_c (log p_c - log q_c); ``F.kl_div`` wants log q as its input and p as its target.
    The T^2 factor keeps the gradient's scale independent of T (Hinton et al., 2015).
    """
    log_q = F.log_softmax(student_logits / temperature, dim=1)  # (B, C)
    return temperature**2 * F.kl_div(log_q, target_probs, reduction="batchmean")


# ----------------------------------------------------------------------------------------------------------
# DeepInversion's BatchNorm-statistics prior


def bn_statistics_loss(
    features: torch.Tensor,
    running_mean: torch.Tensor,
    running_var: torch.Tensor,
    standardise: bool = True,
    eps: float = 1e-5,
) -> torch.Tensor:
    """How far a batch's per-channel statistics are from a BN layer's running ones.

    Statistics are over every dimension but the channel one (dim 1), with the biased batch variance; features
    are (B, C) or (B, C, H, W). The paper's raw form (``standardise=False``):
        R_bn = ||mu - running_mean||_2 + ||var - running_var||_2
    Standardised (the course's default), each channel in units of its running std s = sqrt(running_var + eps):
        R_bn = ||(mu - running_mean) / s||_2 + ||var / s^2 - 1||_2
    """
    if features.dim() not in (2, 4):
        raise ValueError(f"expected BN inputs (B, C) or (B, C, H, W), got shape {tuple(features.shape)}")
    if features.shape[1] != running_mean.numel():
        raise ValueError(f"features have {features.shape[1]} channels, the statistics {running_mean.numel()}")
    dims = [d for d in range(features.dim()) if d != 1]
    mean = features.mean(dim=dims)  # (C,)
    var = features.var(dim=dims, unbiased=False)  # (C,)
    if not standardise:
        return torch.linalg.vector_norm(mean - running_mean) + torch.linalg.vector_norm(var - running_var)
    scale = running_var + eps  # (C,) the running variance, s^2
    return torch.linalg.vector_norm((mean - running_mean) / scale.sqrt()) + torch.linalg.vector_norm(var / scale - 1)


def bn_layers(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """Every BatchNorm layer of ``model`` with running statistics; a clear error when there is none."""
    layers = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    layers = [m for m in layers if m.running_mean is not None]
    if not has_batchnorm(model) or not layers:
        raise ValueError(
            f"DeepInversion needs a teacher with BatchNorm layers (their running statistics are its only "
            f"knowledge of the data), and {type(model).__name__} has none: use e.g. build_model('cnn_bn') "
            "or pretrained('cnn_bn')"
        )
    return layers


@contextmanager
def bn_statistics_hooks(model: nn.Module, standardise: bool = True) -> Iterator[list[torch.Tensor]]:
    """Within the block, each forward pass appends R_bn of every BN layer (in order) to the yielded list."""
    losses: list[torch.Tensor] = []

    def hook(module: nn.modules.batchnorm._BatchNorm, inputs: tuple[torch.Tensor, ...], _: torch.Tensor) -> None:
        losses.append(bn_statistics_loss(inputs[0], module.running_mean, module.running_var, standardise, module.eps))

    handles = [layer.register_forward_hook(hook) for layer in bn_layers(model)]
    try:
        yield losses
    finally:
        for handle in handles:
            handle.remove()

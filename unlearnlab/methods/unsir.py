"""UNSIR (Tarun et al., "Fast Yet Effective Machine Unlearning", IEEE TNNLS 2023): EMMN's error-maximising noise
with a few real retain images for the repair step (notebook 04).

The same algorithm as :mod:`unlearnlab.methods.noise`, with ``real_retain_per_class > 0``: the impair pass
runs over the noise and the real images, the repair pass over the real images alone. Not zero-shot: it keeps
those images (``cost.stored_bytes``).
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from ..data import Splits
from . import noise
from .base import pick_config
from .noise import Config, NoiseResult

CONFIGS: dict[str, Config] = {
    "quick": replace(noise.CONFIGS["quick"], real_retain_per_class=50),  # as notebook 04 runs it
    "full": replace(noise.CONFIGS["full"], real_retain_per_class=50),
}


def unlearn(
    model: nn.Module,
    splits: Splits,
    config: Config | str = "quick",
    *,
    device: torch.device | str = "cpu",
    seed: int | None = 0,
) -> NoiseResult:
    """Unlearn ``splits.forget_classes`` with error-maximising noise and real retain images for the repair."""
    config = pick_config(CONFIGS, config)
    if config.real_retain_per_class < 1:
        raise ValueError("UNSIR repairs with real retain images: real_retain_per_class must be positive")
    return noise.unlearn(model, splits, config, device=device, seed=seed)

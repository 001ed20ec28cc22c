"""Error-maximising / error-minimising noise (EMMN): zero-shot unlearning with learned noise (notebook 04).

Chundawat et al., "Zero-shot machine unlearning" (2023), after UNSIR (Tarun et al., "Fast yet effective
machine unlearning"). For each forget class, learn a batch of noise images that *maximise* the frozen
model's loss for that class; for each retained class, learn noise that *minimises* it (a stand-in for the
retain data that zero-shot forbids). Impair: one high learning-rate pass over all the noise with its class
labels, which wrecks the forget class. Repair: a pass over the retain stand-in. With real retain images
(``real_retain_per_class > 0``, i.e. UNSIR, no longer zero-shot) the repair restores the retained classes;
with error-minimising noise it cannot, because the model already fits that noise: it carries no knowledge.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..data import NUM_CLASSES, Splits, TensorData, check_classes, concat, make_loader, per_class_subset
from ..training import History, fit, make_rng, progress
from .base import Cost, UnlearningResult, clone, frozen, pick_config, timed


@dataclass(frozen=True)
class Config:
    """Knobs of EMMN; ``CONFIGS`` holds the quick and full instances (both fit a 2-core CPU)."""

    noise_per_class: int = 256  # noise images learned per class (forget and retained alike)
    noise_steps: int = 100  # Adam steps on the noise images (the model is frozen)
    noise_lr: float = 0.1  # Adam learning rate on the noise pixels
    noise_reg: float = 0.1  # lambda: weight of the mean squared L2 norm of a noise image (keeps it bounded)
    impair_lr: float = 0.02  # Adam learning rate of the impair pass (high on purpose)
    impair_epochs: int = 1  # passes over noise (+ retain stand-in) in the impair step
    repair_lr: float = 0.01  # Adam learning rate of the repair pass
    repair_epochs: int = 1  # passes over the retain stand-in in the repair step
    batch_size: int = 64  # images per impair/repair step
    real_retain_per_class: int = 0  # 0: zero-shot EMMN; > 0: UNSIR, this many real retain images per class


CONFIGS = {
    # quick: 2-core CPU, a few seconds of noise learning
    "quick": Config(noise_per_class=32, noise_steps=20),
    # full: a 2-core CPU in about two minutes; the public UNSIR/EMMN code learns 256 images per class for 200 steps,
    # four times the work, and lands where this does: zero-shot EMMN near chance, UNSIR far above it
    "full": Config(noise_per_class=128, noise_steps=100),
}


def noise_penalty(noise: torch.Tensor) -> torch.Tensor:
    """Mean over images of the squared L2 norm of each noise image (B, 1, 28, 28): mean_i ||N_i||^2."""
    return noise.pow(2).flatten(1).sum(1).mean()


def error_max_objective(logits: torch.Tensor, y: torch.Tensor, noise: torch.Tensor, reg: float) -> torch.Tensor:
    """To minimise for error-maximising noise: -CE(model(N), y) + lambda * mean_i ||N_i||^2."""
    return -F.cross_entropy(logits, y) + reg * noise_penalty(noise)


def error_min_objective(logits: torch.Tensor, y: torch.Tensor, noise: torch.Tensor, reg: float) -> torch.Tensor:
    """To minimise for error-minimising noise: CE(model(N), y) + lambda * mean_i ||N_i||^2."""
    return F.cross_entropy(logits, y) + reg * noise_penalty(noise)


def learn_noise(
    model: nn.Module,
    classes: Iterable[int],
    maximise: bool,
    config: Config | str = "quick",
    *,
    device: torch.device | str = "cpu",
    rng: torch.Generator | None = None,
) -> TensorData:
    """Noise images labelled with ``classes`` that maximise (or minimise) the frozen ``model``'s loss.

    ``model`` is used in eval mode and left as it was; ``rng`` draws the starting noise.
    """
    config = pick_config(CONFIGS, config)
    classes = check_classes(classes)
    if not classes:
        raise ValueError("classes is empty: name at least one class to learn noise for")
    if config.noise_per_class < 1 or config.noise_steps < 0:
        raise ValueError("noise_per_class must be positive and noise_steps non-negative")
    device = torch.device(device)
    y = torch.tensor(classes).repeat_interleave(config.noise_per_class).to(device)  # (K * n,)
    noise = torch.randn(len(y), 1, 28, 28, generator=rng).to(device).requires_grad_(True)  # (K * n, 1, 28, 28)
    objective = error_max_objective if maximise else error_min_objective
    optimizer = torch.optim.Adam([noise], lr=config.noise_lr)
    with frozen(model.to(device)), progress(config.noise_steps, "noise") as bar:
        for _ in range(config.noise_steps):
            loss = objective(model(noise), y, noise, config.noise_reg)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            bar.update(1)
    return TensorData(noise.detach().cpu(), y.cpu())


@dataclass
class NoiseResult(UnlearningResult):
    """The unlearned model with the noise it learned and the two phases' histories."""

    forget_noise: TensorData | None = None  # error-maximising noise, labelled with the forget classes
    retain_standin: TensorData | None = None  # error-minimising noise, or the real images of UNSIR
    impair: History | None = None  # the high learning-rate pass over noise + stand-in
    repair: History | None = None  # the pass over the stand-in alone


def unlearn(
    model: nn.Module,
    splits: Splits,
    config: Config | str = "quick",
    *,
    device: torch.device | str = "cpu",
    seed: int | None = 0,
) -> NoiseResult:
    """Unlearn ``splits.forget_classes`` from ``model`` (left unchanged) with error-max/error-min noise.

    Zero-shot when ``config.real_retain_per_class == 0``: only the class ids are read from ``splits``.
    ``stored_bytes`` counts the real images UNSIR keeps (0 for EMMN).
    """
    config = pick_config(CONFIGS, config)
    forget = check_classes(splits.forget_classes)
    if not forget:
        raise ValueError("forget_classes is empty: EMMN forgets classes, name at least one")
    retained = [c for c in range(NUM_CLASSES) if c not in forget]
    device = torch.device(device)
    with timed() as cost:
        teacher = clone(model)
        forget_noise = learn_noise(teacher, forget, True, config, device=device, rng=make_rng(seed))
        if config.real_retain_per_class > 0:  # UNSIR: a little real retain data (not zero-shot any more)
            standin = per_class_subset(splits.retain, config.real_retain_per_class, seed=0 if seed is None else seed)
        else:
            rng = make_rng(None if seed is None else seed + 1)
            standin = learn_noise(teacher, retained, False, config, device=device, rng=rng)
        unlearned = teacher
        impair = fit(
            unlearned,
            make_loader(concat(forget_noise, standin), config.batch_size, shuffle=True, seed=seed),
            num_epochs=config.impair_epochs,
            lr=config.impair_lr,
            device=device,
            desc="impair",
        )
        repair = fit(
            unlearned,
            make_loader(standin, config.batch_size, shuffle=True, seed=seed),
            num_epochs=config.repair_epochs,
            lr=config.repair_lr,
            device=device,
            desc="repair",
        )
    history = History(
        step_loss=impair.step_loss + repair.step_loss,
        epoch_loss=impair.epoch_loss + repair.epoch_loss,
        seconds=cost.seconds,
    )
    stored = 0 if config.real_retain_per_class == 0 else standin.X.numel() * standin.X.element_size()
    return NoiseResult(
        unlearned.eval(),
        Cost(cost.seconds, stored),
        history,
        forget_noise=forget_noise,
        retain_standin=standin,
        impair=impair,
        repair=repair,
    )

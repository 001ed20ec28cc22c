"""DeepInversion: class-conditional images synthesised from a BatchNorm teacher (notebook 05).

Yin et al., "Dreaming to Distill: Data-free Knowledge Transfer via DeepInversion" (CVPR 2020). Starting
from noise, a batch of images is optimised with Adam so that the frozen teacher (i) classifies each image as
its target class and (ii) sees, at every BatchNorm layer, feature statistics close to the running statistics
it stored while training on the real data. Image priors (total variation, l2) and random jitter keep the
images smooth and natural. All classes are synthesised in one batch, so one Adam step serves all of them.

The course's change to the paper (notebook 05): each BatchNorm channel's statistics are compared in units of its
own running standard deviation. In raw units, the fully connected BN layer of the course CNN (running variances
in the hundreds) outweighs the convolutional ones, and the images come out as textures instead of strokes.
R_bn itself (:func:`~unlearnlab.methods.losses.bn_statistics_loss`) is in :mod:`unlearnlab.methods.losses`, as
GKT's generator uses it too.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ..cache import weights_digest
from ..checkpoints import Checkpoint
from ..data import MEAN, NUM_CLASSES, STD, TensorData, check_classes
from ..training import make_rng, progress
from .base import frozen, pick_config
from .losses import bn_layers, bn_statistics_hooks

# the valid range of a normalised MNIST pixel: [0, 1] after (x - MEAN) / STD
PIXEL_MIN, PIXEL_MAX = (0.0 - MEAN) / STD, (1.0 - MEAN) / STD


@dataclass(frozen=True)
class InversionConfig:
    """DeepInversion settings; the loss is CE + bn_weight * R_bn + tv_weight * R_tv + l2_weight * R_l2."""

    images_per_class: int = 100  # synthetic images wanted per class
    batch_per_class: int = 100  # images per class in one optimised batch (batch = classes x this)
    steps: int = 200  # Adam steps per batch
    lr: float = 0.1  # Adam learning rate on the pixels (cosine-annealed to 0)
    bn_weight: float = 1.0  # weight of the BatchNorm-statistics loss, summed over every BN layer
    first_bn_multiplier: float = 5.0  # extra weight of the first BN layer (closest to the pixels)
    tv_weight: float = 1.0  # total-variation prior (smooth strokes)
    l2_weight: float = 1e-3  # l2 prior on the normalised pixels (no blown-up values)
    jitter: int = 2  # random shift in pixels, in each direction, at every step
    flip: bool = False  # random horizontal flips (the paper, on ImageNet); digits are not mirror-symmetric
    standardise_bn: bool = True  # BN statistics in units of the running std (False: the paper's raw units)


CONFIGS = {
    # quick: 2-core CPU, about 35 s for 450 images (the teacher recognises them all; a student reaches ~98 % retain)
    "quick": InversionConfig(images_per_class=50, batch_per_class=50, steps=100),
    # full: 2-core CPU, minutes for 2,250 images (a student reaches ~98.8 % retain), in five checkpointed batches
    "full": InversionConfig(images_per_class=250, batch_per_class=50, steps=100),
}


def total_variation(X: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of vertical plus horizontal neighbours, averaged over images.

    R_tv(X) = mean_{n,c,i,j} (x[i+1, j] - x[i, j])^2 + mean_{n,c,i,j} (x[i, j+1] - x[i, j])^2
    """
    if X.dim() != 4:
        raise ValueError(f"expected images (N, C, H, W), got shape {tuple(X.shape)}")
    dy = X[:, :, 1:, :] - X[:, :, :-1, :]  # (N, C, H-1, W)
    dx = X[:, :, :, 1:] - X[:, :, :, :-1]  # (N, C, H, W-1)
    return dy.pow(2).mean() + dx.pow(2).mean()


@torch.no_grad()
def bn_statistics(model: nn.Module, X: torch.Tensor, standardise: bool = True) -> list[float]:
    """R_bn of each BN layer of ``model`` (in eval mode, unchanged) on the batch ``X``: how data-like it looks."""
    with frozen(model), bn_statistics_hooks(model, standardise) as losses:
        model(X.to(next(model.parameters()).device))
    return [float(loss) for loss in losses]


def jitter_and_flip(X: torch.Tensor, jitter: int, flip: bool, rng: torch.Generator) -> torch.Tensor:
    """Shift the whole batch by a random (dy, dx) in [-jitter, jitter] (wrapping round) and maybe flip it."""
    if jitter > 0:
        dy, dx = torch.randint(-jitter, jitter + 1, (2,), generator=rng).tolist()
        X = torch.roll(X, shifts=(dy, dx), dims=(2, 3))
    if flip and torch.rand((), generator=rng) < 0.5:
        X = torch.flip(X, dims=(3,))
    return X


@dataclass
class SynthesisResult:
    """Synthetic images with their target classes, what they cost and how the loss went."""

    data: TensorData  # X (N, 1, 28, 28) normalised like MNIST, y (N,) target classes
    seconds: float
    teacher_acc: float  # fraction of images the teacher classifies as their target class
    step_loss: list[float] = field(default_factory=list)  # total loss of every step, batch after batch

    @property
    def images_per_second(self) -> float:
        """Synthesis throughput."""
        return len(self.data) / self.seconds if self.seconds > 0 else float("inf")


def inversion_loss(
    teacher: nn.Module, X: torch.Tensor, y: torch.Tensor, bn_losses: list[torch.Tensor], config: InversionConfig
) -> torch.Tensor:
    """One DeepInversion objective on the (already jittered) batch ``X`` (B, 1, 28, 28) with targets ``y``."""
    bn_losses.clear()
    logits = teacher(X)  # (B, num_classes); the hooks fill bn_losses
    ce = F.cross_entropy(logits, y)
    bn = config.first_bn_multiplier * bn_losses[0] + sum(bn_losses[1:], torch.zeros((), device=X.device))
    return ce + config.bn_weight * bn + config.tv_weight * total_variation(X) + config.l2_weight * X.pow(2).mean()


def _optimise_batch(
    teacher: nn.Module, y: torch.Tensor, config: InversionConfig, rng: torch.Generator, bar: tqdm
) -> tuple[torch.Tensor, list[float]]:
    """Optimise one batch of images from noise for ``y`` (B,); returns the images (B, 1, 28, 28) and losses."""
    device = y.device
    X = torch.randn((len(y), 1, 28, 28), generator=rng).to(device).requires_grad_(True)
    optimizer = torch.optim.Adam([X], lr=config.lr, betas=(0.5, 0.9))
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.steps)
    losses = []  # detached tensors: reading each one with .item() would wait for the GPU at every step
    with bn_statistics_hooks(teacher, config.standardise_bn) as bn_losses:
        for _ in range(config.steps):
            shifted = jitter_and_flip(X, config.jitter, config.flip, rng)  # (B, 1, 28, 28)
            loss = inversion_loss(teacher, shifted, y, bn_losses, config)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            with torch.no_grad():
                X.clamp_(PIXEL_MIN, PIXEL_MAX)  # stay a valid image
            losses.append(loss.detach())
            bar.update(1)
    return X.detach(), torch.stack(losses).tolist()


CHECKPOINT_VERSION = 1  # raise when a change to the synthesis makes saved batches differ from new ones


def synthesis_checkpoint(
    teacher: nn.Module, classes: Sequence[int], config: InversionConfig, seed: int | None, device: torch.device
) -> Checkpoint | None:
    """Where a synthesis saves its finished batches: keyed by everything the images depend on (None: no seed).

    The configuration, the teacher's weights, the seed, the classes and the kind of device (a GPU's images differ
    from a CPU's in the last bits) name the file, so a change to any of them starts afresh.
    """
    if seed is None:  # seeded from the OS: a rerun is another run, nothing to resume
        return None
    inputs = {"teacher": weights_digest(teacher), "classes": ",".join(map(str, classes))}
    return Checkpoint.of("deepinversion", config, CHECKPOINT_VERSION, seed=str(seed), device=device.type, **inputs)


@dataclass
class _Progress:
    """A synthesis so far: the finished batches and everything the next batch depends on."""

    rng: torch.Generator  # draws the next batch's starting noise and every jitter
    images: list[torch.Tensor] = field(default_factory=list)  # one (B, 1, 28, 28) tensor per finished batch
    labels: list[torch.Tensor] = field(default_factory=list)
    step_loss: list[float] = field(default_factory=list)
    recognised: int = 0  # images the teacher calls their target class
    seconds: float = 0.0  # synthesis time spent on the finished batches, in this run and in interrupted ones

    def state(self) -> dict:
        """What a checkpoint saves (tensors, numbers and lists only)."""
        return {
            "rng": self.rng.get_state(),
            "X": torch.cat(self.images),
            "y": torch.cat(self.labels),
            "batch_sizes": [len(y) for y in self.labels],
            "step_loss": self.step_loss,
            "recognised": self.recognised,
            "seconds": self.seconds,
        }

    @classmethod
    def restore(cls, state: dict) -> _Progress:
        """The synthesis as :meth:`state` saved it."""
        rng = torch.Generator()
        rng.set_state(state["rng"])
        images = list(state["X"].split(state["batch_sizes"]))
        labels = list(state["y"].split(state["batch_sizes"]))
        return cls(rng, images, labels, list(state["step_loss"]), state["recognised"], state["seconds"])


def _save(checkpoint: Checkpoint | None, run: _Progress) -> Checkpoint | None:
    """Save ``run`` to ``checkpoint``; a cache that cannot be written (the grading sandbox) means no checkpoints."""
    if checkpoint is None:
        return None
    return checkpoint if checkpoint.save(run.state()) else None


def synthesize(
    teacher: nn.Module,
    classes: Sequence[int] | None = None,
    config: InversionConfig | str = "quick",
    *,
    images_per_class: int | None = None,
    device: torch.device | str = "cpu",
    seed: int | None = 0,
) -> SynthesisResult:
    """DeepInversion images of ``classes`` (default: all) from the BatchNorm ``teacher``, left unchanged.

    ``seed`` seeds the one ``rng`` that draws the starting noise and the jitter; the global RNG is not touched.

    ``config`` is an :class:`InversionConfig` or a profile name (``"quick"``, ``"full"``);
    ``images_per_class`` overrides the config's count. Every batch holds all classes at once.

    After each batch the images so far and the ``rng``'s state are saved to a checkpoint in the cache
    (:func:`synthesis_checkpoint`); a run interrupted and started again with the same inputs continues after the
    last finished batch and returns the same images, and a finished run's rerun returns at once. ``seconds`` is
    the synthesis time of every batch, whichever run computed it.
    """
    config = pick_config(CONFIGS, config)
    if images_per_class is not None:
        config = replace(config, images_per_class=images_per_class)
    if config.images_per_class < 1 or config.batch_per_class < 1 or config.steps < 1:
        raise ValueError("images_per_class, batch_per_class and steps must be positive")
    bn_layers(teacher)  # fail early, with a clear message, on a model without BatchNorm
    classes = check_classes(range(NUM_CLASSES) if classes is None else classes)
    if not classes:
        raise ValueError("classes is empty: name at least one class to synthesise")
    device = torch.device(device)
    rounds = math.ceil(config.images_per_class / config.batch_per_class)
    checkpoint = synthesis_checkpoint(teacher, classes, config, seed, device)
    saved = checkpoint.load() if checkpoint is not None else None
    run = _Progress.restore(saved) if saved is not None else _Progress(make_rng(seed))
    done = len(run.images)
    # BN uses its running statistics and the weights stay fixed; the teacher is restored afterwards
    desc = f"DeepInversion, {rounds} batches" + (f" (resumed after {done})" if done else "")
    with frozen(teacher.to(device)), progress((rounds - done) * config.steps, desc) as bar:
        for r in range(done, rounds):
            start = time.perf_counter()
            per_class = min(config.batch_per_class, config.images_per_class - r * config.batch_per_class)
            y = torch.tensor(classes, device=device).repeat_interleave(per_class)  # (len(classes) * per_class,)
            X, losses = _optimise_batch(teacher, y, config, run.rng, bar)
            with torch.no_grad():  # one batch at a time: the device only ever holds one round's activations
                run.recognised += int((teacher(X).argmax(1) == y).sum())
            run.images.append(X.cpu())
            run.labels.append(y.cpu())
            run.step_loss += losses
            run.seconds += time.perf_counter() - start
            checkpoint = _save(checkpoint, run)
    data = TensorData(torch.cat(run.images), torch.cat(run.labels))
    return SynthesisResult(data, run.seconds, run.recognised / len(data), run.step_loss)

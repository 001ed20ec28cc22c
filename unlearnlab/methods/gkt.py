"""Gated Knowledge Transfer (GKT): zero-shot class unlearning by distilling through a gate (notebook 04).

Chundawat et al., "Zero-shot machine unlearning" (2023), built on Micaelli & Storkey's zero-shot knowledge
transfer. No real image is used. A generator seeks pseudo-images on which teacher and student disagree
(it maximises KL(T || S)); a gate drops every pseudo-image whose teacher probability for a forget class
reaches a threshold; a freshly initialised student learns the teacher on the rest with
``KL(T || S) + beta * L_at``, where ``L_at`` matches the teacher's spatial attention maps.

Course additions (seed report 002): an entropy filter (keep pseudo-images the teacher is sure about), and a
stopping rule that needs no real data: watch how often the student calls *probe images of the forget class*
(e.g. DeepInversion samples) a forget class, and keep the last snapshot before that rate rises.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..data import Splits, check_classes
from ..training import History, pick_device, progress, seed_everything
from .base import Cost, UnlearningResult, clone, pick_config, timed

Monitor = Callable[[nn.Module], dict[str, float]]  # evaluation only (may use real test data), never training


@dataclass(frozen=True)
class GKTConfig:
    """Knobs of Gated Knowledge Transfer; ``CONFIGS`` holds the quick (CPU) and full (GPU) instances."""

    num_iterations: int = 1000  # pseudo-batches: one generator step and `student_steps` student steps each
    batch_size: int = 256  # pseudo-images per generator draw
    student_steps: int = 10  # student updates per pseudo-batch (fresh draws of the same generator)
    generator_steps: int = 1  # generator updates per pseudo-batch
    z_dim: int = 100  # generator input noise dimension
    lr_student: float = 2e-3  # Adam, cosine-annealed to 0 over num_iterations
    lr_generator: float = 1e-3  # Adam, cosine-annealed to 0 over num_iterations
    gate_threshold: float = 0.01  # drop a pseudo-image when the teacher gives a forget class >= this probability
    max_entropy: float | None = None  # entropy filter (nats): keep only teacher entropy < this; None = off
    beta: float = 250.0  # weight of the attention-transfer term (0 = pure KL)
    attention_layers: tuple[str, ...] = ("bn1", "bn2")  # modules whose outputs give attention maps
    check_every: int = 25  # pseudo-batches between checkpoints (probe rate, monitor, snapshot)
    min_iterations: int = 100  # the stopping rule only acts after this many pseudo-batches (a random student is noise)
    max_probe_rate: float = 0.05  # stop when the student calls more than this fraction of the probes a forget class
    run_to_end: bool = False  # keep training after the rule fires (to show what happens); the snapshot is still kept


CONFIGS = {
    # quick: 2-core CPU, well under a minute; far from converged, so the notebook states lower bars
    "quick": GKTConfig(num_iterations=40, batch_size=32, student_steps=3, check_every=10, min_iterations=20),
    # full: one GPU, the scale of the public GKT code (leakage shows after several hundred pseudo-batches)
    "full": GKTConfig(num_iterations=1500, batch_size=256, student_steps=10, check_every=50, min_iterations=300),
}


# ----------------------------------------------------------------------------------------------------------
# The generator


class Generator(nn.Module):
    """z (B, z_dim) -> pseudo-images (B, 1, 28, 28), standardised like normalised MNIST pixels."""

    def __init__(self, z_dim: int = 100) -> None:
        super().__init__()
        self.z_dim = z_dim
        self.fc = nn.Linear(z_dim, 64 * 7 * 7)
        self.body = nn.Sequential(
            nn.BatchNorm2d(64),
            nn.Upsample(scale_factor=2),  # (B, 64, 14, 14)
            nn.Conv2d(64, 32, 3, padding=1),
            nn.BatchNorm2d(32),
            nn.LeakyReLU(0.2),
            nn.Upsample(scale_factor=2),  # (B, 32, 28, 28)
            nn.Conv2d(32, 16, 3, padding=1),
            nn.BatchNorm2d(16),
            nn.LeakyReLU(0.2),
            nn.Conv2d(16, 1, 3, padding=1),  # (B, 1, 28, 28)
            nn.BatchNorm2d(1, affine=False),  # as in zero-shot KT: standardised pixels, no squashing
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.fc(z).view(-1, 64, 7, 7)  # (B, 64, 7, 7)
        return self.body(h)  # (B, 1, 28, 28), zero mean and unit variance over the batch

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw ``batch_size`` pseudo-images from fresh noise."""
        device = self.fc.weight.device
        z = torch.randn(batch_size, self.z_dim, generator=generator).to(device)
        return self(z)


# ----------------------------------------------------------------------------------------------------------
# The gate and the entropy filter: pure functions of the teacher's probabilities


def entropy(probs: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Shannon entropy in nats of each row of ``probs`` (B, C): H(p) = -sum_c p_c log p_c."""
    return -(probs * (probs + eps).log()).sum(1)


def gate_mask(
    probs: torch.Tensor, forget_classes: Iterable[int], threshold: float, max_entropy: float | None = None
) -> torch.Tensor:
    """Keep (True) the rows of ``probs`` (B, C) whose every forget-class probability is below ``threshold``
    and, when ``max_entropy`` is given, whose entropy is below it."""
    if probs.dim() != 2:
        raise ValueError(f"probs must be (batch, classes), got shape {tuple(probs.shape)}")
    forget = check_classes(forget_classes, probs.shape[1])
    if not forget:
        raise ValueError("forget_classes is empty: name at least one class to forget")
    keep = (probs[:, list(forget)] < threshold).all(1)  # (B,)
    if max_entropy is not None:
        keep &= entropy(probs) < max_entropy
    return keep


# ----------------------------------------------------------------------------------------------------------
# Attention transfer


def attention_map(A: torch.Tensor) -> torch.Tensor:
    """Spatial attention of ``A`` (B, C, H, W): f(A) = mean_c A_c^2, flattened, L2-normalised -> (B, H*W)."""
    return F.normalize(A.pow(2).mean(1).flatten(1), dim=1)


def attention_loss(student_acts: Sequence[torch.Tensor], teacher_acts: Sequence[torch.Tensor]) -> torch.Tensor:
    """L_at = sum over layers l of mean_(b, j) (a_s[b, j] - a_t[b, j])^2, with a = attention_map(A_l).

    The squared difference of the unit-norm attention maps, averaged over the batch and the H*W positions,
    as in the public zero-shot KT and GKT code (so their beta = 250 carries over).
    """
    if len(student_acts) != len(teacher_acts) or not student_acts:
        raise ValueError(f"need the same non-zero number of layers, got {len(student_acts)} and {len(teacher_acts)}")
    total = student_acts[0].new_zeros(())
    for A_s, A_t in zip(student_acts, teacher_acts):
        if A_s.shape != A_t.shape:
            raise ValueError(f"activation shapes differ: {tuple(A_s.shape)} vs {tuple(A_t.shape)}")
        total = total + (attention_map(A_s) - attention_map(A_t)).pow(2).mean()
    return total


@contextmanager
def record_activations(model: nn.Module, layer_names: Sequence[str]) -> Iterator[list[torch.Tensor]]:
    """Inside the block, the list holds the outputs of ``layer_names`` from the latest forward pass, in order."""
    modules = dict(model.named_modules())
    missing = [name for name in layer_names if name not in modules]
    if missing:
        raise ValueError(f"the model has no module {missing[0]!r}; it has {', '.join(n for n in modules if n)}")
    acts: list[torch.Tensor] = []
    slots: dict[str, torch.Tensor] = {}

    def hook_for(name: str) -> Callable:
        def hook(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
            slots[name] = output
            if len(slots) == len(layer_names):
                acts[:] = [slots[n] for n in layer_names]
                slots.clear()

        return hook

    handles = [modules[name].register_forward_hook(hook_for(name)) for name in layer_names]
    try:
        yield acts
    finally:
        for handle in handles:
            handle.remove()


def kl_teacher_student(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """KL(T || S) = sum_c t_c (log t_c - log s_c), averaged over the batch (``reduction="batchmean"``)."""
    return F.kl_div(
        F.log_softmax(student_logits, 1), F.log_softmax(teacher_logits, 1), reduction="batchmean", log_target=True
    )


# ----------------------------------------------------------------------------------------------------------
# The stopping rule: no real data, only probe images of the forget classes


@torch.no_grad()
def probe_rate(model: nn.Module, probes: torch.Tensor, forget_classes: Iterable[int], batch_size: int = 500) -> float:
    """Fraction of ``probes`` (N, 1, 28, 28) that ``model`` assigns to a forget class."""
    forget = torch.tensor(check_classes(forget_classes))
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    hits = 0
    for start in range(0, len(probes), batch_size):
        pred = model(probes[start : start + batch_size].to(device)).argmax(1).cpu()
        hits += int(torch.isin(pred, forget).sum())
    model.train(was_training)
    return hits / max(1, len(probes))


def reinitialise(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with fresh random weights (same architecture): GKT's student."""
    student = copy.deepcopy(model)
    for module in student.modules():
        if hasattr(module, "reset_parameters") and module is not student:
            module.reset_parameters()
    return student


@dataclass
class Checkpoint:
    """What was measured at one checkpoint of GKT."""

    iteration: int  # pseudo-batches done
    probe_rate: float | None  # fraction of forget-class probes called a forget class (None without probes)
    kept_fraction: float  # fraction of pseudo-images the gate let through since the last checkpoint
    metrics: dict[str, float] = field(default_factory=dict)  # from the monitor (evaluation only)


def gkt(
    teacher: nn.Module,
    splits: Splits | None,
    config: GKTConfig | str = "quick",
    *,
    forget_classes: Iterable[int] | None = None,
    probes: torch.Tensor | None = None,
    monitor: Monitor | None = None,
    device: str | torch.device = "auto",
    seed: int | None = 0,
) -> UnlearningResult:
    """Unlearn ``forget_classes`` (default: ``splits.forget_classes``) from ``teacher`` with Gated Knowledge Transfer.

    Zero-shot: only the class ids are taken from ``splits``, never an image. ``probes`` (N, 1, 28, 28) are
    synthetic images of the forget classes for the stopping rule; ``monitor(student) -> dict`` is called at
    each checkpoint for evaluation only. ``result.model`` is the snapshot chosen by the rule (the last model
    without probes); ``extras`` hold ``"final_model"``, ``"checkpoints"``, ``"stop_iteration"``, ``"generator"``.
    """
    config = pick_config(CONFIGS, config)
    if forget_classes is None:
        if splits is None:
            raise ValueError("give splits or forget_classes: GKT needs to know which classes to forget")
        forget_classes = splits.forget_classes
    forget = check_classes(forget_classes)
    if not forget:
        raise ValueError("forget_classes is empty: name at least one class to forget")
    if config.num_iterations < 1 or config.student_steps < 1 or config.batch_size < 2:
        raise ValueError("num_iterations and student_steps must be positive and batch_size at least 2")
    seed_everything(seed)
    device = pick_device(device)
    cost = Cost()
    with timed(cost):
        teacher = clone(teacher).to(device).eval()
        for p in teacher.parameters():
            p.requires_grad_(False)
        student = reinitialise(teacher).to(device)
        for p in student.parameters():
            p.requires_grad_(True)
        generator = Generator(config.z_dim).to(device)
        noise = torch.Generator().manual_seed(0 if seed is None else seed)
        opt_s = torch.optim.Adam(student.parameters(), lr=config.lr_student)
        opt_g = torch.optim.Adam(generator.parameters(), lr=config.lr_generator)
        history, checkpoints = History(), []
        snapshot, stop_iteration, kept, seen = None, None, 0, 0
        layers = config.attention_layers if config.beta > 0 else ()

        with (
            record_activations(teacher, layers) as acts_t,
            record_activations(student, layers) as acts_s,
            progress(config.num_iterations, "GKT", unit="pseudo-batch") as bar,
        ):
            for iteration in range(1, config.num_iterations + 1):
                scale = 0.5 * (1 + math.cos(math.pi * (iteration - 1) / config.num_iterations))  # cosine annealing
                for opt, lr in ((opt_s, config.lr_student), (opt_g, config.lr_generator)):
                    for group in opt.param_groups:
                        group["lr"] = lr * scale
                # generator: seek pseudo-images where the student disagrees with the teacher (maximise KL)
                generator.train()
                student.train()
                for _ in range(config.generator_steps):
                    X = generator.sample(config.batch_size, noise)  # (B, 1, 28, 28)
                    loss_g = -kl_teacher_student(student(X), teacher(X))
                    opt_g.zero_grad(set_to_none=True)
                    loss_g.backward()
                    opt_g.step()
                # student: learn the teacher on the pseudo-images the gate lets through
                for _ in range(config.student_steps):
                    with torch.no_grad():
                        X = generator.sample(config.batch_size, noise)
                        teacher_logits = teacher(X)  # (B, C)
                        keep = gate_mask(teacher_logits.softmax(1), forget, config.gate_threshold, config.max_entropy)
                        teacher_acts = [a.detach() for a in acts_t]
                    seen += len(keep)
                    kept += int(keep.sum())
                    if int(keep.sum()) < 2:  # BatchNorm needs two images; nothing to learn from this draw
                        continue
                    student_logits = student(X[keep])
                    loss = kl_teacher_student(student_logits, teacher_logits[keep])
                    if config.beta > 0:
                        loss = loss + config.beta * attention_loss(acts_s, [a[keep] for a in teacher_acts])
                    opt_s.zero_grad(set_to_none=True)
                    loss.backward()
                    opt_s.step()
                    history.step_loss.append(loss.item())
                bar.update(1)

                if iteration % config.check_every == 0 or iteration == config.num_iterations:
                    student.eval()
                    rate = probe_rate(student, probes, forget) if probes is not None else None
                    metrics = monitor(student) if monitor is not None else {}
                    checkpoints.append(Checkpoint(iteration, rate, kept / max(1, seen), metrics))
                    kept = seen = 0
                    if stop_iteration is None and rate is not None and iteration >= config.min_iterations:
                        if rate <= config.max_probe_rate:
                            snapshot = copy.deepcopy(student)
                        else:  # the forget class is coming back: keep the last good snapshot
                            stop_iteration = iteration
                            if not config.run_to_end:
                                break
        student.eval()
        chosen = snapshot if snapshot is not None else student
        if probes is not None and stop_iteration is None:
            stop_iteration = checkpoints[-1].iteration
    history.seconds = cost.seconds
    return UnlearningResult(
        model=chosen.eval(),
        cost=cost,
        history=history,
        extras={
            "final_model": student,
            "checkpoints": checkpoints,
            "stop_iteration": stop_iteration,
            "generator": generator.eval(),
        },
    )

"""Gated Knowledge Transfer (GKT): zero-shot class unlearning by distilling through a gate (notebook 04).

Chundawat et al., "Zero-shot machine unlearning" (2023), built on Micaelli & Storkey's zero-shot knowledge
transfer (ZSKT). No real image is used. A generator seeks pseudo-images on which teacher and student disagree
(it maximises KL(T || S)); a gate drops every pseudo-image whose teacher probability for a forget class
reaches a threshold; a freshly initialised student learns the teacher on the rest with
``KL(T || S) + beta * L_at``, where ``L_at`` matches the teacher's spatial attention maps.

How one pseudo-batch runs (as in the public GKT code): one noise batch z; the generator takes a step that
maximises the KL on the images the gate keeps; the images G(z) are drawn again from the updated generator, the
teacher labels them once, and the student takes ``student_steps`` steps on that same batch.

What the course changed, and why (``benchmarks/bench_gkt.py`` measures it; the first version of this module
ended at about 50 % retain accuracy in the quick profile, 40 pseudo-batches of 32 images):

- *The gate also guards the generator* (as in the public GKT code). The student never learns the forget
  class, so KL(T || S) is largest on its images; a generator maximising the KL over every image is rewarded
  for drawing exactly the images the gate will drop.
- *One batch per pseudo-batch, labelled once* (as in the public code, which repeats the same z). The first
  version drew fresh images, and ran the teacher, for every student step; now the generator and the teacher
  cost one forward pass per pseudo-batch instead of one per student step.
- *A data prior for the generator* (``bn_weight``, DeepInversion's R_bn: the "Adaptive DeepInversion" that
  the CS772 project report on zero-shot unlearning proposes as future work). The generator also matches the
  teacher's BatchNorm statistics, so its images look like digits to the teacher, and the student's BatchNorm
  statistics, gathered on them, fit real digits. In the quick profile it is the largest single gain.
  ``bn_weight=0`` is the paper's generator.
- *The student's KL at a temperature* (``temperature``, Hinton et al.): the student learns the teacher's
  softened outputs, times T^2 so that the gradient keeps its size; the generator's KL stays at T = 1.
  The gate tests the teacher's probability at T = 1, so on a gated image the softened targets can still give a
  forget class real mass; in a long quick-profile run the student learns the class back from it
  (``mask_forget=True`` gives the forget classes no mass in the targets; notebook 04 tests both).
- *Sizes and rates for a CPU:* a narrower generator (``generator_width``), batches of 64 and Adam at 1e-2
  for both networks in the quick profile. The student stays a fresh copy of the teacher's architecture: the
  method's point is a model that never saw the forget class.

``CONFIGS["quick"]`` uses the prior and T = 4. ``CONFIGS["full"]`` is the same recipe at T = 1 (the public
code's temperature), ten times longer: 600 pseudo-batches of 64, sized for a 2-core CPU (a few CPU-minutes per
run; a GPU runs the same configuration faster). Measured with the quick profile's teacher, a run that long at
T = 4 learned the forget class back, and at T = 1 it did not while the student passed the paper's 97.12 % retain
accuracy (``benchmarks/bench_gkt.py --profile full`` measures it with the full teacher). ``stop_at`` ends a run
early while the learning rates still anneal over ``num_iterations`` (a long run, watched in its first part).

Course additions (from the CS772 report): an entropy filter (keep pseudo-images the teacher is sure about), and a
stopping rule that needs no real data: watch how often the student calls *probe images of the forget class*
(e.g. DeepInversion samples) a forget class, and keep the last snapshot before that rate rises.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .. import checkpoints as resume
from ..cache import tensors_digest, weights_digest
from ..data import Splits, check_classes
from ..training import History, make_rng, progress, seeded
from .base import Cost, UnlearningResult, clone, fresh_model, pick_config, timed
from .losses import bn_statistics_hooks, kd_loss, soft_targets, soft_targets_without

Monitor = Callable[[nn.Module], dict[str, float]]  # evaluation only (may use real test data), never training

VERSION = 1  # the recipe's version in the keys of saved runs: bump it when a change alters what a run computes


@dataclass(frozen=True)
class Config:
    """Knobs of Gated Knowledge Transfer; ``CONFIGS`` holds the quick and full instances (both fit a 2-core CPU)."""

    num_iterations: int = 1000  # pseudo-batches: generator step(s), then `student_steps` student steps
    stop_at: int | None = None  # end the run after this many of the num_iterations planned (None: all of them)
    batch_size: int = 256  # pseudo-images per pseudo-batch (before the gate)
    student_steps: int = 10  # student updates per pseudo-batch, on the same images (as the public GKT code)
    generator_steps: int = 1  # generator updates per pseudo-batch
    z_dim: int = 100  # generator input noise dimension
    generator_width: int = 64  # channels of the generator's first block (halved in each later block)
    lr_student: float = 2e-3  # Adam, cosine-annealed to 0 over num_iterations
    lr_generator: float = 1e-3  # Adam, cosine-annealed to 0 over num_iterations
    grad_clip: float = 5.0  # clip each network's gradient norm (the public GKT code uses 5)
    temperature: float = 1.0  # the student's KL at temperature T (x T^2); the generator's KL is at T = 1
    mask_forget: bool = False  # the student's soft targets give the forget classes no mass (the rest renormalised)
    bn_weight: float = 0.0  # generator prior: weight of R_bn (teacher's BatchNorm statistics); 0 = the paper's
    gate_threshold: float = 0.01  # drop a pseudo-image when the teacher gives a forget class >= this probability
    max_entropy: float | None = None  # entropy filter (nats): keep only teacher entropy < this; None = off
    beta: float = 250.0  # weight of the attention-transfer term (0 = pure KL)
    attention_layers: tuple[str, ...] = ("bn1", "bn2")  # modules whose outputs give attention maps
    check_every: int = 25  # pseudo-batches between checkpoints (probe rate, monitor, snapshot)
    min_iterations: int = 100  # the stopping rule only acts after this many pseudo-batches (a random student is noise)
    max_probe_rate: float = 0.05  # the rule fires when more than this fraction of probes is called a forget class
    run_to_end: bool = False  # keep training after the rule fires (to show what happens); the snapshot is still kept


_QUICK = Config(  # 2-core CPU, about 35 CPU-seconds per run; the course's generator prior and temperature (see above)
    num_iterations=60,
    batch_size=64,
    student_steps=5,
    generator_width=32,
    lr_student=1e-2,
    lr_generator=1e-2,
    temperature=4.0,
    bn_weight=1.0,
    check_every=5,
    min_iterations=10,
)
CONFIGS = {
    "quick": _QUICK,
    # full: the quick recipe at T = 1 and ten times longer, a few CPU-minutes per run on a 2-core CPU
    "full": replace(_QUICK, num_iterations=600, temperature=1.0, check_every=50, min_iterations=100),
}


# ----------------------------------------------------------------------------------------------------------
# The generator


class Generator(nn.Module):
    """z (B, z_dim) -> pseudo-images (B, 1, 28, 28), standardised like normalised MNIST pixels.

    ZSKT's generator at MNIST size: linear to 7x7, two upsample-conv blocks, a 1-channel conv, and a BatchNorm
    without affine parameters at the end (pixels standardised over the batch, no squashing).
    """

    def __init__(self, z_dim: int = 100, width: int = 64) -> None:
        super().__init__()
        self.z_dim, self.width = z_dim, width
        w1, w2 = max(1, width // 2), max(1, width // 4)
        self.fc = nn.Linear(z_dim, width * 7 * 7)
        self.body = nn.Sequential(
            nn.BatchNorm2d(width),
            nn.Upsample(scale_factor=2),  # (B, width, 14, 14)
            nn.Conv2d(width, w1, 3, padding=1),
            nn.BatchNorm2d(w1),
            nn.LeakyReLU(0.2),
            nn.Upsample(scale_factor=2),  # (B, width/2, 28, 28)
            nn.Conv2d(w1, w2, 3, padding=1),
            nn.BatchNorm2d(w2),
            nn.LeakyReLU(0.2),
            nn.Conv2d(w2, 1, 3, padding=1),  # (B, 1, 28, 28)
            nn.BatchNorm2d(1, affine=False),  # as in zero-shot KT: standardised pixels, no squashing
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.fc(z).view(-1, self.width, 7, 7)  # (B, width, 7, 7)
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
# Attention transfer and the divergence


def attention_map(A: torch.Tensor) -> torch.Tensor:
    """Spatial attention of ``A`` (B, C, H, W): f(A) = mean_c A_c^2, flattened, L2-normalised -> (B, H*W)."""
    return F.normalize(A.pow(2).mean(1).flatten(1), dim=1)


def attention_loss(student_acts: Sequence[torch.Tensor], teacher_acts: Sequence[torch.Tensor]) -> torch.Tensor:
    """L_at = sum over layers l of mean_(b, j) (a_s[b, j] - a_t[b, j])^2, with a = attention_map(A_l).

    The squared difference of the unit-norm attention maps, averaged over the batch and the H*W positions,
    as in the public zero-shot KT and GKT code. Their KL is averaged over classes too (``reduction="mean"``,
    1/C of ours): under Adam, their beta = 250 weighs the attention term like beta = 2500 does here.
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


# ----------------------------------------------------------------------------------------------------------
# The stopping rule: no real data, only probe images of the forget classes


@torch.no_grad()
def probe_rate(model: nn.Module, probes: torch.Tensor, forget_classes: Iterable[int], batch_size: int = 500) -> float:
    """Fraction of ``probes`` (N, 1, 28, 28) that ``model`` (in eval mode) assigns to a forget class."""
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


@dataclass
class StoppingRule:
    """The data-free stopping rule, fed the probe rate at each checkpoint.

    From ``min_iterations`` on, a checkpoint whose rate is at most ``max_rate`` is *good* (take a snapshot);
    the rule *fires* at the first later checkpoint whose rate exceeds ``max_rate``, i.e. once the rate has
    been low and rises: the forget class is coming back. A rate that was never low is a student still too
    poor to read (a fresh student calls anything anything), not a leak, so it does not fire the rule.
    """

    min_iterations: int
    max_rate: float
    snapshot_iteration: int | None = None  # the last good checkpoint
    stop_iteration: int | None = None  # where the rule fired (None: it has not)

    def observe(self, iteration: int, rate: float) -> str:
        """``"snapshot"`` (keep this student), ``"stop"`` (the rule fires now) or ``"continue"``."""
        if self.stop_iteration is not None or iteration < self.min_iterations:
            return "continue"
        if rate <= self.max_rate:
            self.snapshot_iteration = iteration
            return "snapshot"
        if self.snapshot_iteration is not None:
            self.stop_iteration = iteration
            return "stop"
        return "continue"


@dataclass
class Checkpoint:
    """What was measured at one checkpoint of GKT."""

    iteration: int  # pseudo-batches done
    probe_rate: float | None  # fraction of forget-class probes called a forget class (None without probes)
    kept_fraction: float  # fraction of pseudo-images the gate let through since the last checkpoint
    metrics: dict[str, float] = field(default_factory=dict)  # from the monitor (evaluation only)


@dataclass
class GKTResult(UnlearningResult):
    """GKT's chosen student (``model``) with everything the run measured."""

    final_model: nn.Module | None = None  # the student at the end of the run (``model`` when the rule never fired)
    generator: Generator | None = None  # the trained generator
    checkpoints: list[Checkpoint] = field(default_factory=list)  # one per ``check_every`` pseudo-batches
    stop_iteration: int | None = None  # where the stopping rule fired (None: it never did)
    snapshot_iteration: int | None = None  # the snapshot returned as ``model`` (None unless the rule fired)
    phase_seconds: dict[str, float] = field(default_factory=dict)  # time per phase (the monitor's is not a cost)
    kept_fraction: float = 0.0  # share of all pseudo-images the gate let through


class _Clock:
    """Seconds spent per phase, summed over the run: ``with clock("student"): ...``."""

    def __init__(self, *phases: str) -> None:
        self.seconds: dict[str, float] = defaultdict(float, dict.fromkeys(phases, 0.0))

    @contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] += time.perf_counter() - start


# ----------------------------------------------------------------------------------------------------------
# One pseudo-batch: a generator step, the teacher's labels, student steps


def _generator_step(
    generator: Generator,
    teacher: nn.Module,
    student: nn.Module,
    z: torch.Tensor,
    opt: torch.optim.Optimizer,
    forget: Sequence[int],
    config: Config,
    bn_losses: list[torch.Tensor] | None,
) -> float:
    """Maximise KL(T || S) on the gated images G(z) (minus ``bn_weight`` x R_bn of all of them); returns the loss.

    loss_G = -KL(T(x) || S(x)) over kept x  +  bn_weight * sum_l R_bn,l(G(z))
    """
    X = generator(z)  # (B, 1, 28, 28)
    if bn_losses is not None:
        bn_losses.clear()
    teacher_logits = teacher(X)  # (B, C); the hooks fill bn_losses
    keep = gate_mask(teacher_logits.detach().softmax(1), forget, config.gate_threshold, config.max_entropy)
    loss = X.new_zeros(())
    if int(keep.sum()) >= 2:  # the student's BatchNorm needs two images
        loss = loss - kd_loss(student(X[keep]), soft_targets(teacher_logits[keep], 1.0), 1.0)
    if bn_losses:
        loss = loss + config.bn_weight * torch.stack(bn_losses).sum()
    if loss.requires_grad:
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(generator.parameters(), config.grad_clip)
        opt.step()
    return float(loss.detach())


@torch.no_grad()
def _label(
    generator: Generator,
    teacher: nn.Module,
    z: torch.Tensor,
    teacher_acts: list[torch.Tensor],
    forget: Sequence[int],
    config: Config,
) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """The gated images G(z) with the teacher's logits and attention-layer activations, computed once."""
    X = generator(z)  # (B, 1, 28, 28)
    teacher_logits = teacher(X)  # (B, C)
    keep = gate_mask(teacher_logits.softmax(1), forget, config.gate_threshold, config.max_entropy)  # (B,)
    return X[keep], teacher_logits[keep], [a[keep] for a in teacher_acts]


def _student_step(
    student: nn.Module,
    X: torch.Tensor,
    teacher_logits: torch.Tensor,
    teacher_acts: list[torch.Tensor],
    student_acts: list[torch.Tensor],
    opt: torch.optim.Optimizer,
    forget: Sequence[int],
    config: Config,
) -> float:
    """One step of L_S = T^2 KL(T_T || S_T) + beta * L_at on the kept images; returns L_S.

    With ``mask_forget`` the targets T_T give the forget classes no mass (:func:`soft_targets_without`).
    """
    student_logits = student(X)  # (K, C); the hooks fill student_acts
    T = config.temperature
    targets = soft_targets_without(teacher_logits, forget, T) if config.mask_forget else soft_targets(teacher_logits, T)
    loss = kd_loss(student_logits, targets, T)
    if config.beta > 0:
        loss = loss + config.beta * attention_loss(student_acts, teacher_acts)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    nn.utils.clip_grad_norm_(student.parameters(), config.grad_clip)
    opt.step()
    return float(loss.detach())


@dataclass
class _Networks:
    """The three networks of a GKT run and the two optimisers."""

    teacher: nn.Module  # a frozen copy of the original model
    student: nn.Module  # freshly initialised, same architecture
    generator: Generator
    opt_s: torch.optim.Optimizer
    opt_g: torch.optim.Optimizer


def build_networks(model: nn.Module, config: Config, device: torch.device, seed: int | None) -> _Networks:
    """Step 1: a frozen copy of ``model`` as teacher, a fresh student and a generator drawn from ``seed``."""
    teacher = clone(model).to(device).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    with seeded(seed):  # weight initialisation draws from torch's global RNG: a forked, seeded copy of it
        student = fresh_model(teacher).to(device).train()
        generator = Generator(config.z_dim, config.generator_width).to(device).train()
    return _Networks(
        teacher,
        student,
        generator,
        torch.optim.Adam(student.parameters(), lr=config.lr_student),
        torch.optim.Adam(generator.parameters(), lr=config.lr_generator),
    )


def anneal(nets: _Networks, iteration: int, config: Config) -> None:
    """Cosine-anneal both learning rates to 0 over ``num_iterations`` (``iteration`` counts from 1)."""
    scale = 0.5 * (1 + math.cos(math.pi * (iteration - 1) / config.num_iterations))
    for opt, lr in ((nets.opt_s, config.lr_student), (nets.opt_g, config.lr_generator)):
        for group in opt.param_groups:
            group["lr"] = lr * scale


def pseudo_batch(
    nets: _Networks,
    z: torch.Tensor,
    forget: Sequence[int],
    config: Config,
    acts_t: list[torch.Tensor],
    acts_s: list[torch.Tensor],
    bn_losses: list[torch.Tensor] | None,
    clock: _Clock,
) -> tuple[int, list[float]]:
    """Step 2, one pseudo-batch: generator step(s), the gated images labelled once, the student steps on them.

    Returns how many of the ``len(z)`` pseudo-images the gate kept and the student's loss at each step.
    """
    with clock("generator step"):
        for _ in range(config.generator_steps):
            _generator_step(nets.generator, nets.teacher, nets.student, z, nets.opt_g, forget, config, bn_losses)
    with clock("draw and label"):
        if bn_losses is not None:
            bn_losses.clear()
        X, teacher_logits, teacher_acts = _label(nets.generator, nets.teacher, z, acts_t, forget, config)
    losses = []
    if len(X) >= 2:  # BatchNorm needs two images; otherwise nothing to learn from this pseudo-batch
        with clock("student steps"):
            for _ in range(config.student_steps):
                losses.append(
                    _student_step(nets.student, X, teacher_logits, teacher_acts, acts_s, nets.opt_s, forget, config)
                )
    return len(X), losses


def measure(
    student: nn.Module,
    iteration: int,
    probes: torch.Tensor | None,
    forget: Sequence[int],
    monitor: Monitor | None,
    kept_fraction: float,
    clock: _Clock,
) -> Checkpoint:
    """Step 3, at a checkpoint: the probe rate and the monitor's metrics, with the student in eval mode."""
    student.eval()  # the monitor must neither see batch statistics nor move the running ones
    with clock("probes"):
        rate = probe_rate(student, probes, forget) if probes is not None else None
    with clock("monitor (evaluation)"):
        metrics = monitor(student) if monitor is not None else {}
    student.train()
    return Checkpoint(iteration, rate, kept_fraction, metrics)


def _check(config: Config, forget: Sequence[int]) -> None:
    if not forget:
        raise ValueError("forget_classes is empty: GKT forgets classes, name at least one")
    if config.num_iterations < 1 or config.student_steps < 1 or config.batch_size < 2:
        raise ValueError("num_iterations and student_steps must be positive and batch_size at least 2")
    if config.stop_at is not None and not 1 <= config.stop_at <= config.num_iterations:
        raise ValueError(f"stop_at must lie in [1, num_iterations={config.num_iterations}], got {config.stop_at}")
    if config.temperature <= 0:
        raise ValueError(f"temperature must be positive, got {config.temperature}")


# ----------------------------------------------------------------------------------------------------------
# Resuming: a run saves its whole state at every checkpoint and a rerun with the same inputs continues from it


@dataclass
class _Run:
    """Where a GKT run stands, besides its networks and random generators: what a saved run restores."""

    rule: StoppingRule
    history: History = field(default_factory=History)
    records: list[Checkpoint] = field(default_factory=list)  # what each checkpoint measured
    snapshot: dict[str, torch.Tensor] | None = None  # the student's weights at the rule's last good checkpoint
    iteration: int = 0  # pseudo-batches done
    kept: int = 0  # pseudo-images the gate kept since the last checkpoint
    seen: int = 0  # pseudo-images drawn since the last checkpoint
    kept_total: int = 0  # ... before the last checkpoint
    seen_total: int = 0
    finished: bool = False  # the run ended (its last pseudo-batch, or the rule stopped it)

    def close_window(self) -> float:
        """The share of pseudo-images the gate kept since the last checkpoint; the next window starts empty."""
        share = self.kept / max(1, self.seen)
        self.kept_total += self.kept
        self.seen_total += self.seen
        self.kept = self.seen = 0
        return share


def saved_run(
    model: nn.Module,
    config: Config,
    forget: Sequence[int],
    seed: int | None,
    probes: torch.Tensor | None,
    monitor: Monitor | None,
    device: torch.device,
) -> resume.Checkpoint | None:
    """Where a run with these inputs saves its state (None for ``seed=None``: such a run cannot be repeated).

    Keyed by the configuration, the teacher's weights, the seed, the forget classes, the probes, the monitor
    (by name: its records are saved too), the device type and :data:`VERSION`."""
    if seed is None:
        return None
    return resume.Checkpoint.of(
        "gkt",
        config,
        VERSION,
        teacher=weights_digest(model),
        seed=str(seed),
        forget=",".join(map(str, forget)),
        probes="none" if probes is None else tensors_digest(probes),
        monitor=getattr(monitor, "__qualname__", "none"),
        device=device.type,
    )


def _save(saved: resume.Checkpoint, nets: _Networks, rng: torch.Generator, run: _Run, seconds: dict) -> bool:
    """Save everything the rest of the run depends on, and what its result reports; False where the cache cannot
    be written (the grading sandbox's): the run goes on without saving."""
    return saved.save(
        {
            "student": nets.student.state_dict(),
            "generator": nets.generator.state_dict(),
            "opt_s": nets.opt_s.state_dict(),  # the learning rates too: anneal() sets them from the iteration
            "opt_g": nets.opt_g.state_dict(),
            "rng": resume.rng_state(rng),
            "run": {**asdict(run), "history": run.history.step_loss},  # records and rule as plain dicts
            "seconds": seconds,  # the cost so far ("total") and per phase
        }
    )


def _restore(state: dict[str, Any], nets: _Networks, rng: torch.Generator) -> tuple[_Run, dict]:
    """Put the networks, optimisers and generators back as :func:`_save` saved them; the run and its seconds."""
    nets.student.load_state_dict(state["student"])
    nets.generator.load_state_dict(state["generator"])
    nets.opt_s.load_state_dict(state["opt_s"])
    nets.opt_g.load_state_dict(state["opt_g"])
    resume.restore_rng(state["rng"], rng)
    fields = state["run"]
    run = _Run(
        **{
            **fields,
            "rule": StoppingRule(**fields["rule"]),
            "history": History(step_loss=list(fields["history"])),
            "records": [Checkpoint(**record) for record in fields["records"]],
        }
    )
    return run, state["seconds"]


def unlearn(
    model: nn.Module,
    splits: Splits,
    config: Config | str = "quick",
    *,
    device: torch.device | str = "cpu",
    seed: int | None = 0,
    probes: torch.Tensor | None = None,
    monitor: Monitor | None = None,
) -> GKTResult:
    """Unlearn ``splits.forget_classes`` from ``model`` (the teacher, left unchanged) with Gated Knowledge Transfer.

    Zero-shot: only the class ids are taken from ``splits``, never an image. ``probes`` (N, 1, 28, 28) are
    synthetic images of the forget classes for the stopping rule; ``monitor(student) -> dict`` is called at
    each checkpoint for evaluation only (its time is not in ``cost``; notebook 04's lesson,
    :mod:`unlearnlab.lessons.zero_shot`, watches real test accuracy with one).

    The :class:`StoppingRule` (from ``min_iterations`` on) keeps a snapshot at every checkpoint whose probe
    rate is at most ``max_probe_rate``, and *fires* at the first later checkpoint whose rate exceeds it: the
    forget class is coming back. ``result.model`` is the last snapshot when the rule fired, else the final
    student (``result.final_model``).

    Every checkpoint also saves the run (:func:`saved_run`, :mod:`unlearnlab.checkpoints`): a run that was
    interrupted continues from its last checkpoint and ends as the uninterrupted run would have (bit for bit
    on a CPU), and a finished run returns at once with its saved result. ``UNLEARNLAB_RESUME=0`` starts afresh.
    """
    config = pick_config(CONFIGS, config)
    forget = check_classes(splits.forget_classes)
    _check(config, forget)
    device = torch.device(device)
    cost = Cost()
    clock = _Clock("generator step", "draw and label", "student steps", "probes", "monitor (evaluation)")
    start = time.perf_counter()
    with timed(cost):
        nets = build_networks(model, config, device, seed)
        rng = make_rng(seed)  # the generator's input noise
        saved = saved_run(model, config, forget, seed, probes, monitor, device)
        state = saved.load() if saved is not None else None
        saving = saved is not None
        run, before = _Run(StoppingRule(config.min_iterations, config.max_probe_rate)), {"total": 0.0}
        if state is not None:
            run, before = _restore(state, nets, rng)
            clock.seconds.update(before["phases"])
        layers = config.attention_layers if config.beta > 0 else ()
        last = config.stop_at or config.num_iterations  # the learning rates still anneal over num_iterations
        first = last + 1 if run.finished else run.iteration + 1
        bn_prior = bn_statistics_hooks(nets.teacher) if config.bn_weight > 0 else nullcontext(None)

        with (
            record_activations(nets.teacher, layers) as acts_t,
            record_activations(nets.student, layers) as acts_s,
            bn_prior as bn_losses,
            progress(last, "GKT", unit="pseudo-batch") as bar,
        ):
            bar.initial = bar.n = first - 1  # a resumed run: the time left is estimated from its own pace
            for iteration in range(first, last + 1):
                anneal(nets, iteration, config)
                z = torch.randn(config.batch_size, config.z_dim, generator=rng).to(device)  # (B, z_dim)
                n_kept, losses = pseudo_batch(nets, z, forget, config, acts_t, acts_s, bn_losses, clock)
                run.iteration, run.seen, run.kept = iteration, run.seen + config.batch_size, run.kept + n_kept
                run.history.step_loss += losses
                bar.update(1)
                if iteration % config.check_every and iteration != last:
                    continue
                point = measure(nets.student, iteration, probes, forget, monitor, run.close_window(), clock)
                run.records.append(point)
                action = run.rule.observe(iteration, point.probe_rate) if point.probe_rate is not None else "continue"
                if action == "snapshot":
                    with clock("probes"):  # weights only: a deep copy would carry the recording hooks along
                        run.snapshot = {k: v.detach().clone() for k, v in nets.student.state_dict().items()}
                stop = action == "stop" and not config.run_to_end
                run.finished = stop or iteration == last
                if saving:
                    so_far = before["total"] + time.perf_counter() - start
                    saving = _save(saved, nets, rng, run, {"total": so_far, "phases": dict(clock.seconds)})
                if stop:
                    break
        student = nets.student.eval()
        fired = run.rule.stop_iteration is not None
        chosen = student
        if fired:
            chosen = clone(student)  # the hooks are gone now
            chosen.load_state_dict(run.snapshot)
    cost.seconds += before["total"] - clock.seconds["monitor (evaluation)"]  # evaluation is not part of the cost
    run.history.seconds = cost.seconds
    return GKTResult(
        chosen.eval(),
        cost,
        run.history,
        final_model=student,
        generator=nets.generator.eval(),
        checkpoints=run.records,
        stop_iteration=run.rule.stop_iteration,
        snapshot_iteration=run.rule.snapshot_iteration if fired else None,
        phase_seconds=dict(clock.seconds),
        kept_fraction=(run.kept_total + run.kept) / max(1, run.seen_total + run.seen),
    )

"""The amnesiac training ledger (Graves et al., 2021; Gogineni and Nadimi; notebook 07).

Training goes through the shared :func:`unlearnlab.training.fit`; a :class:`LedgerRecorder` hooked into its
``on_step`` keeps the parameter change of every batch that held a forget sample. A :class:`LedgerLoader` says
which batches those are, and can deal the forget samples into a chosen share of the batches (Gogineni and Nadimi varies
that share). :func:`train_with_ledger` trains the base model this way and, with the same initial weights and the
same batches minus the forget samples, the model retrained without them; :func:`ledger_run` caches both and the
ledger on disk.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from .. import cache
from ..data import (
    Splits,
    TensorData,
    concat,
    load_mnist,
    split_by_class,
    stratified_subset,
)
from ..files import save_torch
from ..models import build_model
from ..training import fit, seeded

LEDGER_VERSION = 1  # bump when the recipe changes, so old cache files are not reused

Update = dict[str, torch.Tensor]  # parameter name -> change of that parameter in one step


@dataclass(frozen=True)
class LedgerSetup:
    """How the ledger-trained base model is trained (its hash names the cache file); the defaults are notebook 07's
    quick setting (``unlearnlab.lessons.amnesiac.SETTINGS``)."""

    model: str = "cnn"  # build_model name: "cnn" (the course CNN), "lenet5" or "mlp"
    forget_class: int = 6  # the class whose training images are the forget set (Graves et al.: 3)
    forget_size: int = 300  # training images of the forget class: all of them are forgotten (Graves et al.: 100)
    others: int | None = 12_000  # images of the other classes, stratified (None: all 54,082)
    affected_share: float | None = 0.1  # share of the batches the forget images are dealt into (None: shuffled)
    optimizer: str = "sgd"  # "sgd" (plain, or with momentum) or "adam"
    lr: float = 0.1  # constant learning rate (Adam: give about 1e-3)
    momentum: float = 0.0  # SGD momentum (0: each update depends on its own batch alone)
    batch_size: int = 64  # images per step
    num_epochs: int = 2  # passes over the training set
    seed: int = 0  # initial weights, subsets and batch order
    held_out: int = 600  # forget-class training images kept out, the MIA's non-members (it balances to forget_size)
    test_subset: int | None = 2_000  # stratified test images the measurements use (None: all 10,000)

    def key(self) -> str:
        """A short stable hash of what decides the weights (not the evaluation sets) and the ledger version."""
        fields = {k: v for k, v in asdict(self).items() if k not in ("held_out", "test_subset")}
        return cache.key(fields, LEDGER_VERSION)


# ----------------------------------------------------------------------------------------------------------
# The data: all other classes and a few hundred images of the forget class, which are the forget set


@dataclass
class LedgerData:
    """The splits of a ledger run and the forget-class training images it never saw (MIA non-members)."""

    splits: Splits  # forget = the forget-class images trained on; retain = the other classes trained on
    held_out: TensorData  # training images of the forget class left out of training: same class, never seen


def ledger_data(setup: LedgerSetup) -> LedgerData:
    """The training data of ``setup``: ``others`` images of the other classes plus ``forget_size`` of the forget
    class (the forget set); the (``test_subset`` of the) test set split by class; ``held_out`` of the remaining
    forget-class training images set aside."""
    train, test = load_mnist(train=True), load_mnist(train=False)
    if setup.test_subset is not None and setup.test_subset < len(test):
        test = stratified_subset(test, setup.test_subset, seed=setup.seed)
    sixes, others = split_by_class(train, (setup.forget_class,))
    if not 0 < setup.forget_size < len(sixes):
        raise ValueError(f"forget_size must be in 1..{len(sixes) - 1}, got {setup.forget_size}")
    if setup.others is not None and setup.others < len(others):
        others = stratified_subset(others, setup.others, seed=setup.seed)
    order = torch.randperm(len(sixes), generator=torch.Generator().manual_seed(setup.seed))
    held_out = order[setup.forget_size :][: setup.held_out]
    forget, held_out = sixes.subset(order[: setup.forget_size]), sixes.subset(held_out)
    test_forget, test_retain = split_by_class(test, (setup.forget_class,))
    return LedgerData(Splits(forget, others, test, test_forget, test_retain, (setup.forget_class,)), held_out)


class LedgerLoader:
    """Batches of retain + forget images that remember, per step, whether the batch held a forget image.

    ``affected_share=None`` shuffles everything together; a share ``s`` deals the shuffled forget images round
    robin into ``ceil(s * batches)`` random full batches and fills every batch up with retain images. With
    ``drop_forget=True`` the forget images are left out of the very same batches: the run that never saw them.
    """

    def __init__(
        self,
        retain: TensorData,
        forget: TensorData,
        batch_size: int,
        affected_share: float | None,
        seed: int,
        drop_forget: bool = False,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if affected_share is not None and not 0 < affected_share <= 1:
            raise ValueError(f"affected_share must be in (0, 1] or None, got {affected_share}")
        self.data = concat(retain, forget)
        self.n_retain, self.n_forget = len(retain), len(forget)
        self.batch_size, self.affected_share, self.drop_forget = batch_size, affected_share, drop_forget
        self.rng = torch.Generator().manual_seed(seed)
        self.has_forget: list[bool] = []  # one entry per step so far, over every epoch

    def __len__(self) -> int:
        return math.ceil((self.n_retain + self.n_forget) / self.batch_size)

    def batches(self) -> list[torch.Tensor]:
        """One epoch's batches as indices into retain + forget (forget images are ``>= n_retain``)."""
        n, size = self.n_retain + self.n_forget, self.batch_size
        if self.affected_share is None:
            order = torch.randperm(n, generator=self.rng)
            return [order[i : i + size] for i in range(0, n, size)]
        n_batches = len(self)
        capacity = [size] * (n_batches - 1) + [n - size * (n_batches - 1)]
        full = max(1, n // size)  # forget images go into full batches only (the last one may be short)
        affected = torch.randperm(full, generator=self.rng)[: math.ceil(self.affected_share * n_batches)]
        forget = self.n_retain + torch.randperm(self.n_forget, generator=self.rng)
        per_batch = {int(b): forget[i :: len(affected)] for i, b in enumerate(affected)}
        if any(len(f) > capacity[b] for b, f in per_batch.items()):
            raise ValueError("too few affected batches for the forget set: raise affected_share or batch_size")
        retain, start, out = torch.randperm(self.n_retain, generator=self.rng), 0, []
        for b in range(n_batches):
            f = per_batch.get(b, torch.empty(0, dtype=torch.long))
            take = capacity[b] - len(f)
            out.append(torch.cat([retain[start : start + take], f]))
            start += take
        return out

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for index in self.batches():
            is_forget = index >= self.n_retain
            self.has_forget.append(bool(is_forget.any()))
            if self.drop_forget:
                index = index[~is_forget]
                if len(index) == 0:  # a batch of forget images only: the run without them has no such step
                    continue
            yield self.data.X[index], self.data.y[index]


# ----------------------------------------------------------------------------------------------------------
# The ledger


@dataclass
class Ledger:
    """The parameter change of every recorded step, in float32, as training made it."""

    steps: list[int]  # index of each recorded step among all ``total_steps``
    updates: list[Update]  # theta after the step minus theta before it
    total_steps: int  # steps of the whole training run

    @property
    def nbytes(self) -> int:
        """Bytes of the stored updates (float32 values; no index is needed for a dense update)."""
        return sum(t.numel() * t.element_size() for u in self.updates for t in u.values())

    def bytes_per_step(self) -> int:
        """Bytes of one recorded step (every step stores every trainable parameter)."""
        return self.nbytes // max(1, len(self.updates))

    def save(self, path: Path) -> None:
        """Write the ledger to ``path`` atomically (a reader never sees half a file)."""
        save_torch(self.to_payload(), Path(path))

    def to_payload(self) -> dict:
        """Plain tensors, lists and numbers (loadable with ``weights_only=True``)."""
        return {"steps": self.steps, "updates": self.updates, "total_steps": self.total_steps}

    @classmethod
    def from_payload(cls, payload: dict) -> Ledger:
        """The ledger :meth:`to_payload` described."""
        return cls(list(payload["steps"]), list(payload["updates"]), int(payload["total_steps"]))

    @classmethod
    def load(cls, path: Path) -> Ledger:
        """A ledger written by :meth:`save`."""
        return cls.from_payload(torch.load(path, map_location="cpu", weights_only=True))


class LedgerRecorder:
    """``fit``'s ``on_step`` hook: after each step, store theta_after - theta_before when the step is flagged.

    ``flagged(step)`` says whether step ``step`` must be recorded (for a :class:`LedgerLoader`, whether its batch
    held a forget image). The parameters are read from ``model`` by name; updates are kept on the CPU.
    """

    def __init__(self, model: nn.Module, flagged) -> None:
        self.model, self.flagged = model, flagged
        self.before = self._snapshot()
        self.ledger = Ledger([], [], 0)

    def _snapshot(self) -> Update:
        return {n: p.detach().to("cpu", copy=True) for n, p in self.model.named_parameters() if p.requires_grad}

    def __call__(self, step: int) -> None:
        after = self._snapshot()
        if self.flagged(step):
            self.ledger.steps.append(step)
            self.ledger.updates.append({n: after[n] - self.before[n] for n in after})
        self.ledger.total_steps = step + 1
        self.before = after


def make_optimizer(model: nn.Module, setup: LedgerSetup) -> torch.optim.Optimizer:
    """The setup's optimiser over ``model``'s parameters."""
    if setup.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=setup.lr, momentum=setup.momentum)
    if setup.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=setup.lr)
    raise ValueError(f"unknown optimizer {setup.optimizer!r}: use 'sgd' or 'adam'")


@dataclass
class LedgerRun:
    """A base model trained with a ledger, the model retrained without the forget images, and their data."""

    setup: LedgerSetup
    model: nn.Module  # trained on retain + forget, the ledger recorded
    retrained: nn.Module  # same initial weights and batches, the forget images left out
    ledger: Ledger
    data: LedgerData
    seconds: float  # training time of the base model (with the recording)
    retrain_seconds: float  # training time of the retrained model
    threads: int | None = None  # torch's CPU threads during training (None: not recorded, an older cache file)


def initial_model(setup: LedgerSetup) -> nn.Module:
    """The setup's untrained model, its weights drawn from ``setup.seed`` (the caller's RNG is left alone)."""
    with seeded(setup.seed):
        return build_model(setup.model)


def train_with_ledger(
    setup: LedgerSetup, device: torch.device | str = "cpu", data: LedgerData | None = None
) -> LedgerRun:
    """Train the base model through ``fit`` with a :class:`LedgerRecorder`, and the retrained model."""
    data = data or ledger_data(setup)
    device = torch.device(device)
    trained = []
    for drop in (False, True):
        model = initial_model(setup).to(device)
        loader = LedgerLoader(
            data.splits.retain, data.splits.forget, setup.batch_size, setup.affected_share, setup.seed, drop
        )
        recorder = LedgerRecorder(model, lambda step, loader=loader: loader.has_forget[step])
        history = fit(
            model,
            loader,
            num_epochs=setup.num_epochs,
            optimizer=make_optimizer(model, setup),
            device=device,
            desc=f"train {setup.model}" + (" without the forget set" if drop else " with a ledger"),
            on_step=None if drop else recorder,
        )
        trained.append((model.eval(), history.seconds, recorder.ledger))
    (model, seconds, ledger), (retrained, retrain_seconds, _) = trained
    return LedgerRun(setup, model, retrained, ledger, data, seconds, retrain_seconds, torch.get_num_threads())


@contextlib.contextmanager
def cpu_threads(n: int | None) -> Iterator[None]:
    """Inside the block torch computes on ``n`` CPU threads (``None``: as it is); the count is restored after."""
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def ledger_run(setup: LedgerSetup, device: torch.device | str = "cpu", threads: int | None = None) -> LedgerRun:
    """:func:`train_with_ledger`, cached on disk by :func:`unlearnlab.cache.load_or_build`.

    ``threads`` trains on that many CPU threads and caches the run under its own name: float sums on another
    thread count round differently, so the same setup gives other (equally valid) weights, which is how a check's
    bars are shown to hold on another machine. ``None`` is the lesson's run, on torch's current thread count.
    """
    suffix = "" if threads is None else f"-threads{threads}"

    def build() -> LedgerRun:
        with cpu_threads(threads):
            return train_with_ledger(setup, device)

    run = cache.load_or_build(
        cache.entry_path("amnesiac", f"{setup.model}-{setup.key()}{suffix}"),
        build,
        _run_payload,
        lambda payload: _run_from_payload(setup, payload),
    )
    device = torch.device(device)
    run.model.to(device)
    run.retrained.to(device)
    return run


def _run_payload(run: LedgerRun) -> dict:
    """A ledger cache file's content: both models' weights (on the CPU), the ledger, the seconds, the setup's key."""
    return {
        "key": run.setup.key(),
        "model": {k: v.cpu() for k, v in run.model.state_dict().items()},
        "retrained": {k: v.cpu() for k, v in run.retrained.state_dict().items()},
        "ledger": run.ledger.to_payload(),
        "seconds": run.seconds,
        "retrain_seconds": run.retrain_seconds,
        "threads": run.threads,
    }


def _run_from_payload(setup: LedgerSetup, payload: dict) -> LedgerRun:
    """The run that :func:`_run_payload` stored for ``setup`` (models in eval mode, on the CPU)."""
    if payload["key"] != setup.key():
        raise ValueError("the file belongs to another setup")
    model, retrained = build_model(setup.model), build_model(setup.model)
    model.load_state_dict(payload["model"])
    retrained.load_state_dict(payload["retrained"])
    return LedgerRun(
        setup,
        model.eval(),
        retrained.eval(),
        Ledger.from_payload(payload["ledger"]),
        ledger_data(setup),
        float(payload["seconds"]),
        float(payload["retrain_seconds"]),
        payload.get("threads"),
    )

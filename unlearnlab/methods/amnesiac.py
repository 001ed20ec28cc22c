"""Amnesiac unlearning (Graves et al., 2021) and partial amnesiac unlearning (Gogineni and Nadimi; notebook 07).

Amnesiac unlearning subtracts, from the trained weights, every update the ledger recorded for a batch that held
a forget image (:mod:`unlearnlab.methods.ledger`), then optionally repairs the model with a short fine-tune on
retain data. The partial version keeps, per layer, only the top ``fraction`` of each recorded update by
magnitude (stored as float16 values and int32 indices) or only chosen layers, and needs no repair (Gogineni and Nadimi).
:func:`partial_update` applies the same layer-wise top-k to any method's change of the weights, e.g. label
flipping or gradient ascent (Gogineni and Nadimi's second method).

The algorithms only: notebook 07's setting, studies and figures are :mod:`unlearnlab.lessons.amnesiac`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ..data import Splits, make_loader
from ..training import fit
from .base import Cost, UnlearningResult, clone, pick_config, timed
from .ledger import Ledger, Update

VALUE_BYTES, INDEX_BYTES = 2, 4  # a kept entry is stored as a float16 value and an int32 flat index


@dataclass(frozen=True)
class Config:
    """Amnesiac unlearning settings."""

    fraction: float = 1.0  # share of each recorded update kept per layer, by magnitude (1.0: the full ledger)
    layers: tuple[str, ...] | None = None  # parameter-name prefixes whose updates are undone (None: all)
    repair_epochs: int = 0  # epochs of fine-tuning on retain data after the undo (0: no repair)
    repair_lr: float = 1e-3  # Adam learning rate of the repair
    batch_size: int = 128  # images per repair step


CONFIGS = {
    "quick": Config(fraction=0.1),
    "full": Config(fraction=0.1),
}


@dataclass
class AmnesiacResult(UnlearningResult):
    """The unlearned model, with how many recorded steps were undone and the share of each update kept."""

    undone_steps: int = 0
    fraction: float = 1.0


# ----------------------------------------------------------------------------------------------------------
# Top-k compression of an update


def kept_count(numel: int, fraction: float) -> int:
    """How many entries of a ``numel``-entry layer a ``fraction`` keeps: ``round(fraction * numel)``, at least
    one for a positive fraction (a layer's update is never dropped whole by rounding)."""
    if not 0 <= fraction <= 1:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    return 0 if fraction == 0 else max(1, min(numel, round(fraction * numel)))


def top_k_update(update: torch.Tensor, fraction: float) -> torch.Tensor:
    """``update`` with only its ``kept_count`` entries of largest magnitude kept, all others zero (a new tensor).

    Among equal magnitudes at the cut, which one is kept is unspecified (``torch.topk``).
    """
    k = kept_count(update.numel(), fraction)
    flat = update.detach().flatten()
    kept = torch.zeros_like(flat)
    if k:
        index = _top_indices(flat, k)
        kept[index] = flat[index]
    return kept.view_as(update)


def _top_indices(flat: torch.Tensor, k: int) -> torch.Tensor:
    """Flat indices of the ``k`` entries of largest magnitude (which of several equal ones is unspecified)."""
    return flat.abs().topk(k, sorted=False).indices


@dataclass
class CompactUpdate:
    """One layer's kept update entries: float16 values at int32 flat indices of a tensor of ``shape``."""

    values: torch.Tensor  # (k,) float16
    indices: torch.Tensor  # (k,) int32
    shape: tuple[int, ...]

    @property
    def nbytes(self) -> int:
        """Bytes stored: 2 per value and 4 per index."""
        return self.values.numel() * VALUE_BYTES + self.indices.numel() * INDEX_BYTES

    def dense(self) -> torch.Tensor:
        """The float32 tensor with the kept values in place and zeros elsewhere."""
        return decode(self.values, self.indices, self.shape)


def decode(values: torch.Tensor, indices: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """A stored layer update read back: a new float32 tensor of ``shape``, zero except ``values`` (any float dtype,
    e.g. float16) at the flat, row-major ``indices`` (any integer dtype, e.g. int32)."""
    out = torch.zeros(torch.Size(shape).numel())
    out[indices.long()] = values.float()
    return out.view(*shape)


def compress(update: torch.Tensor, fraction: float) -> CompactUpdate:
    """The top ``fraction`` of ``update`` by magnitude, stored compactly (values rounded to float16)."""
    flat = update.detach().flatten().cpu()
    index = torch.sort(_top_indices(flat, kept_count(flat.numel(), fraction))).values
    return CompactUpdate(flat[index].half(), index.int(), tuple(update.shape))


def _selected(name: str, layers: Sequence[str] | None) -> bool:
    return layers is None or name.startswith(tuple(layers))


@dataclass
class PartialLedger:
    """A ledger whose updates keep a ``fraction`` of each layer's entries (only ``layers``, when named)."""

    updates: list[dict[str, CompactUpdate]]
    fraction: float
    layers: tuple[str, ...] | None

    @property
    def nbytes(self) -> int:
        """Bytes of every stored value and index."""
        return sum(c.nbytes for u in self.updates for c in u.values())

    def dense_updates(self) -> list[Update]:
        """The stored updates as float32 tensors (zeros where nothing was kept)."""
        return [{n: c.dense() for n, c in u.items()} for u in self.updates]


def partial_ledger(ledger: Ledger, fraction: float, layers: Sequence[str] | None = None) -> PartialLedger:
    """Compress every recorded update: per layer the top ``fraction`` by magnitude, only ``layers`` if named."""
    names = {n for u in ledger.updates for n in u}
    if layers is not None and not any(_selected(n, layers) for n in names):
        raise ValueError(f"no recorded parameter starts with one of {list(layers)}; the ledger has {sorted(names)}")
    updates = [{n: compress(t, fraction) for n, t in u.items() if _selected(n, layers)} for u in ledger.updates]
    return PartialLedger(updates, fraction, None if layers is None else tuple(layers))


# ----------------------------------------------------------------------------------------------------------
# The undo


def subtract_updates(state: Mapping[str, torch.Tensor], updates: Iterable[Mapping[str, torch.Tensor]]) -> Update:
    """A new state: each entry minus the sum of its recorded updates; entries no update names are unchanged."""
    out = {name: value.detach().clone() for name, value in state.items()}
    for update in updates:
        for name, delta in update.items():
            if name not in out:
                raise KeyError(f"the update names {name!r}, which the state does not have")
            out[name] -= delta.to(out[name].device, out[name].dtype)
    return out


def undo(model: nn.Module, updates: Iterable[Mapping[str, torch.Tensor]]) -> nn.Module:
    """A copy of ``model`` with the updates subtracted from its parameters (buffers untouched)."""
    undone = clone(model)
    params = dict(undone.named_parameters())
    new = subtract_updates({n: p.detach() for n, p in params.items()}, updates)
    with torch.no_grad():
        for name, p in params.items():
            p.copy_(new[name])
    return undone.eval()


def unlearn(
    model: nn.Module,
    splits: Splits,
    config: Config | str = "quick",
    *,
    ledger: Ledger,
    device: torch.device | str = "cpu",
    seed: int | None = 0,
) -> AmnesiacResult:
    """Undo the ``ledger``'s updates (the top ``config.fraction`` per layer, ``config.layers`` only) on a copy of
    ``model``, then fine-tune on ``splits.retain`` for ``config.repair_epochs`` (0: none).

    The method contract plus one keyword: the ledger recorded while ``model`` was trained (it is the stored
    state this method needs). ``cost.stored_bytes`` is what the kept updates take.
    """
    config = pick_config(CONFIGS, config)
    cost = Cost()
    history = None
    with timed(cost):
        if config.fraction == 1.0 and config.layers is None:
            updates, cost.stored_bytes = ledger.updates, ledger.nbytes
        else:
            partial = partial_ledger(ledger, config.fraction, config.layers)
            updates, cost.stored_bytes = partial.dense_updates(), partial.nbytes
        unlearned = undo(model, updates)
        if config.repair_epochs:
            loader = make_loader(splits.retain, config.batch_size, shuffle=True, seed=seed)
            history = fit(
                unlearned, loader, num_epochs=config.repair_epochs, lr=config.repair_lr, device=device, desc="repair"
            )
    return AmnesiacResult(unlearned.eval(), cost, history, undone_steps=len(ledger.updates), fraction=config.fraction)


def partial_update(
    original: nn.Module, unlearned: nn.Module, fraction: float, layers: Sequence[str] | None = None
) -> nn.Module:
    """A copy of ``original`` plus, per parameter, the top ``fraction`` of (unlearned - original) by magnitude
    (only ``layers``, when named; buffers are the original's): Gogineni and Nadimi's layer-wise partial update."""
    mixed = clone(original)
    new = dict(unlearned.named_parameters())
    with torch.no_grad():
        for name, p in mixed.named_parameters():
            if _selected(name, layers):
                p.add_(top_k_update(new[name].detach().to(p.device) - p, fraction))
    return mixed.eval()

"""Pretrained models, trained once and cached on disk, keyed by their whole training configuration."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from . import cache
from .config import Profile
from .data import (
    BatchLoader,
    check_classes,
    load_dataset,
    split_by_class,
    split_random,
    stratified_subset,
)
from .models import build_model
from .training import fit, seeded

ZOO_VERSION = 1  # bump when the training recipe changes, so old cache files are not reused


@dataclass(frozen=True)
class TrainSpec:
    """Everything that decides a pretrained model's weights; its hash names the cache file."""

    model: str
    train_subset: int | None
    num_epochs: int
    batch_size: int
    lr: float
    seed: int
    exclude_classes: tuple[int, ...] = ()  # non-empty: the retrain-from-scratch gold standard
    dataset: str = "mnist"  # "mnist" or "fashion_mnist" (unlearnlab.data.DATASETS)
    exclude_random: float = 0.0  # > 0: trained without this random share of the subset (random forgetting)
    split_seed: int | None = None  # seed of the subset and the random forget split; None: ``seed``

    @classmethod
    def from_profile(
        cls, model: str, profile: Profile, seed: int = 0, exclude_classes: tuple[int, ...] = ()
    ) -> TrainSpec:
        """The spec that ``profile`` prescribes for ``model``."""
        return cls(
            model,
            profile.train_subset,
            profile.num_epochs,
            profile.batch_size,
            profile.lr,
            seed,
            check_classes(exclude_classes),
        )

    def key(self) -> str:
        """A short stable hash of the spec and the zoo version."""
        # fields added after version 1 enter the hash only when set, so the MNIST models' cache files stay valid
        fields = {k: v for k, v in asdict(self).items() if k not in _LATER_FIELDS or v != _LATER_FIELDS[k]}
        return cache.key(fields, ZOO_VERSION)


_LATER_FIELDS = {"dataset": "mnist", "exclude_random": 0.0, "split_seed": None}  # name -> default


@dataclass
class ZooEntry:
    """A model from the zoo with how long its training took (seconds) and where it is cached."""

    model: nn.Module
    seconds: float
    path: Path


def train_from_scratch(spec: TrainSpec, device: str | torch.device = "cpu") -> tuple[nn.Module, float]:
    """Train a fresh model as ``spec`` says; returns the model (in eval mode) and the training seconds."""
    train = load_dataset(spec.dataset, train=True)
    split_seed = spec.seed if spec.split_seed is None else spec.split_seed
    if spec.train_subset is not None and spec.train_subset < len(train):
        train = stratified_subset(train, spec.train_subset, seed=split_seed)
    if spec.exclude_classes:
        _, train = split_by_class(train, spec.exclude_classes)
    if spec.exclude_random:  # the same split as ``random_splits(exclude_random, ..., seed=split_seed)``
        _, train = split_random(train, spec.exclude_random, seed=split_seed)
    with seeded(spec.seed):  # the initial weights, without reseeding the caller's RNG
        model = build_model(spec.model)
    loader = BatchLoader(train, spec.batch_size, shuffle=True, seed=spec.seed)
    history = fit(
        model,
        loader,
        num_epochs=spec.num_epochs,
        lr=spec.lr,
        device=device,
        lr_schedule="onecycle",
        desc=f"train {spec.model}",
    )
    return model, history.seconds


def _payload(spec: TrainSpec, trained: tuple[nn.Module, float]) -> dict:
    """A zoo file's content: the weights (on the CPU), the training seconds, and the spec and key they belong to."""
    model, seconds = trained
    state = {k: v.cpu() for k, v in model.state_dict().items()}
    return {"key": spec.key(), "spec": asdict(spec), "seconds": seconds, "state_dict": state}


def _from_payload(spec: TrainSpec, payload: dict) -> tuple[nn.Module, float]:
    """The model (in eval mode) and the training seconds that :func:`_payload` stored for ``spec``."""
    if payload["key"] != spec.key():
        raise ValueError("the file belongs to another training configuration")
    model = build_model(spec.model)
    model.load_state_dict(payload["state_dict"])
    return model.eval(), float(payload["seconds"])


def get(
    name: str,
    profile: Profile,
    seed: int = 0,
    device: str | torch.device = "cpu",
    exclude_classes: tuple[int, ...] = (),
) -> ZooEntry:
    """Load the model ``name`` trained under ``profile``, training and caching it on first use."""
    return get_spec(TrainSpec.from_profile(name, profile, seed, tuple(exclude_classes)), device)


def get_spec(spec: TrainSpec, device: str | torch.device = "cpu") -> ZooEntry:
    """The model ``spec`` describes, training and caching it on first use."""
    path = cache.entry_path("zoo", f"{spec.model}-{spec.key()}")
    model, seconds = cache.load_or_build(
        path,
        lambda: train_from_scratch(spec, device),
        lambda trained: _payload(spec, trained),
        lambda payload: _from_payload(spec, payload),
    )
    return ZooEntry(model.to(device).eval(), seconds, path)


def pretrained(name: str, profile: Profile, seed: int = 0, device: str | torch.device = "cpu") -> nn.Module:
    """The original model: ``name`` trained on all ten classes (cached)."""
    return get(name, profile, seed, device).model


def retrained(
    forget_classes: tuple[int, ...],
    name: str,
    profile: Profile,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> nn.Module:
    """The gold standard: ``name`` trained from scratch without ``forget_classes`` (cached)."""
    if not check_classes(forget_classes):
        raise ValueError("forget_classes is empty: name at least one class to forget")
    return get(name, profile, seed, device, exclude_classes=tuple(forget_classes)).model

"""Run profiles: ``quick`` fits a 2-core CPU (CI), ``full`` reproduces the papers on one GPU."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TypeVar

import torch


@dataclass(frozen=True)
class Profile:
    """Knobs shared by every notebook; method-specific knobs live in each method's config."""

    name: str
    train_subset: int | None  # images per pretraining run (None = all 60,000)
    num_epochs: int  # pretraining epochs of the base model
    batch_size: int  # training batch size
    lr: float  # peak Adam learning rate for pretraining (one-cycle schedule)
    finetune_epochs: int  # epochs for an unlearning fine-tune

    def with_(self, **changes: object) -> Profile:
        """A copy with some fields changed (e.g. ``QUICK.with_(num_epochs=1)``)."""
        return replace(self, **changes)


# quick: ~99.0 % test accuracy in about a minute on 2 CPU cores; full: all 60,000 images, paper scale
QUICK = Profile(name="quick", train_subset=30_000, num_epochs=2, batch_size=128, lr=3e-3, finetune_epochs=1)
FULL = Profile(name="full", train_subset=None, num_epochs=6, batch_size=128, lr=3e-3, finetune_epochs=3)
PROFILES: dict[str, Profile] = {p.name: p for p in (QUICK, FULL)}
T = TypeVar("T")


def for_profile(table: Mapping[str, T], profile: Profile) -> T:
    """``table``'s entry for ``profile``; a profile the table lacks is an error, never a silent fallback."""
    try:
        return table[profile.name]
    except KeyError:
        raise KeyError(f"no entry for profile {profile.name!r}: this table has {', '.join(table)}") from None


def resolve(profile: str | Profile = "auto") -> Profile:
    """Return a :class:`Profile`; ``"auto"`` means ``full`` on CUDA and ``quick`` otherwise."""
    if isinstance(profile, Profile):
        return profile
    if profile == "auto":
        return FULL if torch.cuda.is_available() else QUICK
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}: choose one of 'auto', {', '.join(map(repr, PROFILES))}")
    return PROFILES[profile]

"""Run profiles: ``quick`` fits a 2-core CPU in minutes (CI); ``full`` reaches the papers' numbers, within an hour
per notebook on a 2-core CPU and in minutes on one GPU."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
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
# the course's recorded runs, per notebook and profile (time, device, commit): written by `unlearnlab build` from
# benchmarks/results/course_<profile>.json and shipped with the package, so an installed copy knows them too
RECORDED_RUNS = Path(__file__).with_name("recorded_runs.json")


def recorded_runs() -> dict[str, dict[str, dict[str, object]]]:
    """``{notebook: {profile: {"seconds", "device", "gpu", "commit", "status"}}}`` from :data:`RECORDED_RUNS`."""
    return json.loads(RECORDED_RUNS.read_text()) if RECORDED_RUNS.is_file() else {}


def full_profile_timed_on_gpu() -> bool:
    """Whether every recorded notebook has a passing full-profile run on a GPU (what ``"auto"`` needs to pick it)."""
    runs = recorded_runs()
    return bool(runs) and all(r.get("full", {}).get("gpu") and r["full"]["status"] == "ok" for r in runs.values())


def for_profile(table: Mapping[str, T], profile: Profile) -> T:
    """``table``'s entry for ``profile``; a profile the table lacks is an error, never a silent fallback."""
    try:
        return table[profile.name]
    except KeyError:
        raise KeyError(f"no entry for profile {profile.name!r}: this table has {', '.join(table)}") from None


def resolve(profile: str | Profile = "auto") -> Profile:
    """Return a :class:`Profile`. ``"auto"`` means ``full`` on CUDA where the course's full profile has been run and
    timed on a GPU (:func:`full_profile_timed_on_gpu`), and ``quick`` otherwise: a GPU user is never sent into a
    configuration nobody has timed."""
    if isinstance(profile, Profile):
        return profile
    if profile == "auto":
        return FULL if torch.cuda.is_available() and full_profile_timed_on_gpu() else QUICK
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}: choose one of 'auto', {', '.join(map(repr, PROFILES))}")
    return PROFILES[profile]

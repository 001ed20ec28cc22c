"""Every unlearning method of the course, by name, for ``unlearnlab compare`` and the capstone (notebook 08).

Each entry's module follows the contract of :mod:`unlearnlab.methods.base`, so every method is called the
same way::

    spec = get("salun")
    result = spec.module.unlearn(model, splits, "quick", device="cpu", seed=0)  # -> UnlearningResult

A method that needs more than the contract's inputs names them in ``extra_inputs`` (the amnesiac method needs the
ledger recorded while the model was trained), to be passed as keywords; ``unlearnlab compare`` takes them from
what each seed's setup stored (``SeedSetup.stored``) and skips the method, with the reason, where a seed has none.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

from . import (
    amnesiac,
    bad_teacher,
    distill,
    finetune,
    gkt,
    gradient_ascent,
    l1_sparse,
    neggrad_plus,
    noise,
    penalty,
    pruning,
    random_labels,
    relabel,
    salun,
    scrub,
    unsir,
    zero_shot_student,
)

SCENARIOS = ("class", "random")  # forget whole classes, or a random subset of the training set


@dataclass(frozen=True)
class MethodSpec:
    """One registered method: its module (``Config``, ``CONFIGS``, ``unlearn``) and what it needs."""

    name: str  # the name used on the command line and in tables
    module: ModuleType  # exports Config, CONFIGS and unlearn(model, splits, config, *, device, seed)
    family: str  # "relabel", "penalty", "distillation", "zero-shot", "pruning", "amnesiac", "baseline", ...
    scenarios: tuple[str, ...]  # the forgetting scenarios it supports: "class", "random" or both
    needs_forget_data: bool  # reads the forget images; False: zero-shot, retain-only or stored-state methods
    notebook: str = ""  # the course notebook that teaches it ("" for the baselines of notebook 08)
    extra_inputs: tuple[str, ...] = ()  # keyword arguments unlearn needs beyond the contract (amnesiac: "ledger")

    def __post_init__(self) -> None:
        unknown = set(self.scenarios) - set(SCENARIOS)
        if unknown or not self.scenarios:
            raise ValueError(f"{self.name}: scenarios must be a non-empty subset of {SCENARIOS}, got {self.scenarios}")
        missing = [attr for attr in ("Config", "CONFIGS", "unlearn") if not hasattr(self.module, attr)]
        if missing:
            raise TypeError(f"{self.module.__name__} does not follow the method contract: no {', '.join(missing)}")


_CLASS, _BOTH = ("class",), ("class", "random")

METHODS: dict[str, MethodSpec] = {
    spec.name: spec
    for spec in (
        MethodSpec("relabel", relabel, "relabel", _CLASS, True, "01"),
        MethodSpec("penalty", penalty, "penalty", _CLASS, True, "02"),
        MethodSpec("distill", distill, "distillation", _CLASS, True, "03"),
        MethodSpec("bad_teacher", bad_teacher, "distillation", _BOTH, True, "03"),
        MethodSpec("emmn", noise, "zero-shot", _CLASS, False, "04"),
        MethodSpec("unsir", unsir, "noise", _CLASS, False, "04"),
        MethodSpec("gkt", gkt, "zero-shot", _CLASS, False, "04"),
        MethodSpec("deepinversion", zero_shot_student, "zero-shot", _CLASS, False, "05"),
        MethodSpec("prune", pruning, "pruning", _BOTH, False, "06"),
        MethodSpec("l1_sparse", l1_sparse, "pruning", _BOTH, False, "06"),
        MethodSpec("amnesiac", amnesiac, "amnesiac", _BOTH, False, "07", extra_inputs=("ledger",)),
        MethodSpec("finetune", finetune, "baseline", _BOTH, False, "06"),
        MethodSpec("gradient_ascent", gradient_ascent, "baseline", _BOTH, True, "06"),
        MethodSpec("random_labels", random_labels, "baseline", _BOTH, True, "06"),
        MethodSpec("neggrad_plus", neggrad_plus, "baseline", _BOTH, True),
        MethodSpec("salun", salun, "baseline", _BOTH, True),
        MethodSpec("scrub", scrub, "baseline", _BOTH, True),
    )
}


def get(name: str) -> MethodSpec:
    """The registered method called ``name``; a clear error lists the names there are."""
    try:
        return METHODS[name]
    except KeyError:
        raise KeyError(f"no unlearning method named {name!r}; the registered ones are {', '.join(METHODS)}") from None


def names(scenario: str | None = None) -> list[str]:
    """The registered names, those supporting ``scenario`` only when it is given."""
    if scenario is not None and scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}: choose one of {', '.join(SCENARIOS)}")
    return [name for name, spec in METHODS.items() if scenario is None or scenario in spec.scenarios]

"""Lesson 04 (``04_zero_shot``): forget class 0 without its data: error-min/max noise, Gated Knowledge Transfer
and the anamnesis index."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..methods import anamnesis, gkt, noise
from .base import FunctionQuestion, Headline, Lesson, bars_from, pick, randn

FORGET = 0


@dataclass(frozen=True)
class Targets:
    """The GKT student's course targets (recorded in the report; no check cell enforces them yet)."""

    min_retain: float  # retain accuracy in percent, at least
    max_forget: float  # forget accuracy in percent, at most


TARGETS = {"quick": Targets(90.0, 1.0), "full": Targets(97.0, 1.0)}


def _error_max_cases(gen: torch.Generator) -> list[dict]:
    y = torch.randint(0, 10, (5,), generator=gen)
    return [{"args": [randn(gen, 5, 10), y, randn(gen, 5, 1, 28, 28), reg]} for reg in (0.0, 0.37)]


def _gate_cases(gen: torch.Generator) -> list[dict]:
    probs = torch.softmax(randn(gen, 40, 10, scale=4.0), dim=1)
    f1, f2 = pick(gen, 10, 2)
    return [
        {"args": [probs, [f1], 0.01]},
        {"args": [probs, [f1, f2], 0.05]},
        {"args": [probs, [f1], 0.2], "kwargs": {"max_entropy": 0.5}},
    ]


def _attention_cases(gen: torch.Generator) -> list[dict]:
    shapes = [(3, 4, 6, 6), (3, 8, 3, 3)]
    S, T = [randn(gen, *s) for s in shapes], [randn(gen, *s) for s in shapes]
    return [{"args": [S[:1], T[:1]]}, {"args": [S, T]}, {"args": [[2.5 * S[0]], [T[0]]]}]


def _ain_cases(gen: torch.Generator) -> list[dict]:
    def curve(n: int) -> list[float]:
        return torch.rand(n, generator=gen).mul(0.9).tolist() + [0.97, 0.5, 0.99]

    fast = curve(int(torch.randint(1, 4, (1,), generator=gen)))
    slow = curve(int(torch.randint(5, 9, (1,), generator=gen)))
    return [{"args": [fast, slow, 0.95]}, {"args": [slow, slow, 0.95]}]


def _ain_reference(curve_unlearned: list[float], curve_retrained: list[float], target: float) -> float:
    steps = anamnesis.steps_to_reach
    return anamnesis.anamnesis_index(steps(curve_unlearned, target), steps(curve_retrained, target))


HEADLINES = (
    Headline(
        "gkt_retain_acc",
        "GKT (β = 250), retain accuracy (the rule's snapshot, or the final student when it never fired)",
        reference="97.12 % (paper, quoted by seed 002)",
        bars=bars_from(TARGETS, ">=", lambda t: t.min_retain, graded=False),
        retrained="retrained_retain_acc",
        summary=True,
    ),
    Headline(
        "gkt_forget_acc",
        "GKT (β = 250), forget accuracy (the rule's snapshot, or the final student)",
        bars=bars_from(TARGETS, "<=", lambda t: t.max_forget, graded=False),
        summary=True,
    ),
    Headline("gkt_final_forget_acc", "GKT (β = 250), forget accuracy at the end of the run"),
    Headline(
        "gkt_entropy_retain_acc",
        "GKT + entropy filter 0.6, retain accuracy",
        reference="98.3 % in 500 epochs, against 850 without (paper, quoted by seed 002)",
        retrained="retrained_retain_acc",
    ),
    Headline(
        "gkt_beta0_retain_acc", "GKT without attention (β = 0), retain accuracy", retrained="retrained_retain_acc"
    ),
    Headline("gkt_beta0_final_forget_acc", "GKT without attention (β = 0), forget accuracy at the end of the run"),
    Headline("gkt_seconds", "GKT (β = 250), unlearning time", unit="s"),
    Headline(
        "emmn_retain_acc",
        "EMMN (zero-shot), retain accuracy",
        reference="10.57 % (paper, quoted by seed 002)",
        retrained="retrained_retain_acc",
    ),
    Headline("emmn_forget_acc", "EMMN (zero-shot), forget accuracy"),
    Headline(
        "unsir_retain_acc",
        "UNSIR (50 real retain images per class), retain accuracy",
        retrained="retrained_retain_acc",
    ),
    Headline(
        "original_retain_acc",
        "original model, retain accuracy",
        reference="97.84 % (paper, quoted by seed 002)",
        retrained="retrained_retain_acc",
    ),
    Headline(
        "retrained_retain_acc",
        "retrained model (gold standard), retain accuracy",
        reference="99.25 % (paper, quoted by seed 002)",
    ),
    Headline(
        "ain_gkt",
        "anamnesis index, GKT (β = 250) at the snapshot (retrained = 1)",
        unit="",
        reached="ain_gkt_reached",
    ),
    Headline("ain_emmn", "anamnesis index, EMMN (retrained = 1)", unit="", reached="ain_emmn_reached"),
    Headline(
        "ain_original", "anamnesis index, original model (retrained = 1)", unit="", reached="ain_original_reached"
    ),
)

LESSON = Lesson(
    stem="04_zero_shot",
    questions={
        "q1": FunctionQuestion(
            "error_max_objective", _error_max_cases, noise.error_max_objective, rtol=1e-4, atol=1e-4
        ),
        "q2": FunctionQuestion("keep_mask", _gate_cases, gkt.gate_mask),
        "q3": FunctionQuestion("at_loss", _attention_cases, gkt.attention_loss, rtol=1e-4),
        "q4": FunctionQuestion("ain_from_curves", _ain_cases, _ain_reference),
    },
    headlines=HEADLINES,
    needs=((), (FORGET,)),
)

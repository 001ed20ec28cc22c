"""What every lesson is made of: its questions, its bars and its headline metrics, in one typed record.

A lesson module (one per graded notebook) builds a :class:`Lesson` from these parts and nothing else holds its
facts: the check cell calls :meth:`Lesson.conditions`, the grader (``unlearnlab.course``) finds the same
question through :mod:`unlearnlab.lessons.catalog`, and ``report.md`` and the README table read its
:class:`Headline` bars, which the lesson derives from the same per-profile numbers its conditions use.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple, TypeVar

import torch
from torch import nn

from .. import zoo
from ..config import Profile
from ..config import for_profile as for_profile  # re-exported: each lesson reads its per-profile tables with it
from ..data import TensorData, load_mnist
from ..metrics import UnlearningReport, unlearning_report
from . import answers
from .answers import MODEL_KEY as MODEL_KEY  # re-exported: lessons write their cases with these
from .answers import model_arg as model_arg

PROFILE_NAMES = ("quick", "full")
T = TypeVar("T")


# ----------------------------------------------------------------------------------------------------------
# Conditions: what a result must meet, with the value it reached


class Condition(NamedTuple):
    """One condition of a check: its text, whether it holds, and (for a measured one) the value against the bar."""

    text: str
    ok: bool
    detail: str = ""  # e.g. "reached 97.40 %, bar ≥ 98.50 %": printed on FAIL only


def measured(
    text: str, value: float, op: Literal[">=", "<="], at: float, unit: str = "%", digits: int = 2
) -> Condition:
    """A condition on a measured value; a fraction with ``unit="%"`` is shown in percent (``0.985`` as 98.50 %)."""

    def shown(x: float) -> str:
        return f"{100 * x:.{digits}f} %" if unit == "%" else f"{x:.{digits}f}{' ' + unit if unit else ''}"

    holds = value >= at if op == ">=" else value <= at
    return Condition(text, holds, f"reached {shown(value)}, bar {'≥' if op == '>=' else '≤'} {shown(at)}")


# ----------------------------------------------------------------------------------------------------------
# Headline metrics (report.md and the README table)


@dataclass(frozen=True)
class Bar:
    """A threshold a recorded value must meet: ``value >= at`` or ``value <= at``."""

    op: Literal[">=", "<="]
    at: float  # in the metric's unit
    graded: bool = True  # True: a check cell enforces it; False: a course target no check cell enforces (yet)

    def passes(self, value: float) -> bool:
        """Whether ``value`` meets the bar."""
        return value >= self.at if self.op == ">=" else value <= self.at

    def __str__(self) -> str:
        text = f"{'≥' if self.op == '>=' else '≤'} {self.at:g}"
        return text if self.graded else f"{text} (target)"


@dataclass(frozen=True)
class Headline:
    """One headline metric of a notebook, as a reader needs it to judge the recorded value."""

    key: str  # the name given to record(...)
    label: str  # what the number is, in words
    unit: str = "%"  # "%", "s", "images", "" (a ratio) ...
    reference: str = ""  # the paper's or report's figure with its source
    bars: Mapping[str, Bar] = field(default_factory=dict)  # per profile name ("quick", "full")
    retrained: str | None = None  # recorded key holding the retrained model's value of the same quantity
    reached: str | None = None  # recorded bool key: False marks this value "not reached"
    digits: int = 2  # decimals shown
    summary: bool = False  # also a row of the README's headline table


def both(op: Literal[">=", "<="], at: float, graded: bool = True) -> dict[str, Bar]:
    """The same bar in every profile."""
    return {name: Bar(op, at, graded) for name in PROFILE_NAMES}


@dataclass(frozen=True)
class BarsFrom(Mapping[str, Bar]):
    """A headline's bar per profile, read from a lesson's per-profile bars when asked (so it is written once, and
    a changed bar in the lesson changes the report too)."""

    table: Mapping[str, object]  # the lesson's bars by profile name
    op: Literal[">=", "<="]
    at: Callable[[Any], float]  # the threshold in the headline's unit, from one profile's bars
    graded: bool = True

    def __getitem__(self, profile: str) -> Bar:
        return Bar(self.op, self.at(self.table[profile]), self.graded)

    def __iter__(self) -> Iterator[str]:
        return iter(self.table)

    def __len__(self) -> int:
        return len(self.table)


def bars_from(
    table: Mapping[str, T], op: Literal[">=", "<="], at: Callable[[T], float], graded: bool = True
) -> BarsFrom:
    """A headline's bars, read from ``table`` (a lesson's per-profile bars) through ``at``."""
    return BarsFrom(table, op, at, graded)


# ----------------------------------------------------------------------------------------------------------
# Questions


@dataclass(frozen=True)
class FunctionQuestion:
    """A question answered by a function: its name, fresh cases, the package's reference and tolerances."""

    function: str  # the name the answer cell defines
    cases: Callable[[torch.Generator], list[dict]]  # inputs drawn at grading time (see answers.observe_call)
    reference: Callable  # the package's implementation, same signature as the student's function
    rtol: float = 1e-5
    atol: float = 1e-6
    unordered_result: bool = False  # the result is a list whose order does not matter
    equivalents: tuple[Callable, ...] = ()  # other package functions that compute the same answer: withheld too


@dataclass(frozen=True)
class ResultQuestion:
    """A question answered by a trained model: the architecture and the conditions it must meet."""

    model: str  # the architecture of the submitted state_dict
    conditions: Callable[[nn.Module, Profile, torch.device | str], list[Condition]]


Question = FunctionQuestion | ResultQuestion


@dataclass(frozen=True)
class Lesson:
    """A graded notebook's questions, headline metrics and the cached models it loads."""

    stem: str  # the notebook's file name without .ipynb, e.g. "01_relabel_freeze"
    questions: dict[str, Question]  # by grade id ("q1", ...)
    headlines: tuple[Headline, ...] = ()
    needs: tuple[tuple[int, ...], ...] = ()  # excluded-class tuples of the cnn_bn zoo models it loads
    zoo_specs: Callable[[Profile], list[zoo.TrainSpec]] | None = None  # other zoo models it loads
    # builds, once, the cached work the notebook repeats for every run and every submission (a ledger run, a GKT
    # study): what the grading sandbox, which cannot write the cache, then loads
    warm: Callable[[Profile, torch.device], None] | None = None

    def conditions(
        self, grade_id: str, model: nn.Module, profile: Profile, device: torch.device | str = "cpu"
    ) -> list[Condition]:
        """The conditions a result question's model must meet (the check cell and the grader both call this)."""
        question = self.questions[grade_id]
        if not isinstance(question, ResultQuestion):
            raise ValueError(f"{self.stem} {grade_id} is a function question, not a result question")
        return question.conditions(model, profile, device)

    def function_question(self, grade_id: str) -> FunctionQuestion:
        """The function question ``grade_id`` (a clear error for a result question or an unknown id)."""
        question = self.questions.get(grade_id)
        if not isinstance(question, FunctionQuestion):
            raise ValueError(f"{self.stem} has no function question {grade_id!r}")
        return question

    def withheld(self, grade_id: str) -> contextlib.AbstractContextManager[None]:
        """While open, the package's reference for ``grade_id`` raises "Qn asks you to write this yourself"
        (check cells run the student's function inside it; the grader's probe does the same)."""
        question = self.function_question(grade_id)
        return answers.withheld((question.reference, *question.equivalents), grade_id.upper())

    def answer_conditions(self, grade_id: str, fn: object, seed: int = 0) -> list[Condition]:
        """The grader's test of a function answer, as check-cell conditions: ``fn`` runs on the question's cases
        (drawn with ``seed``) with the reference withheld, and must match what the reference does on each."""
        question = self.function_question(grade_id)
        cases = question.cases(torch.Generator().manual_seed(seed))
        expected = answers.reference_observations(question, cases)
        with self.withheld(grade_id):
            observed = answers.observe_answer(fn, question.function, cases)
        found = answers.differences(question, expected, observed)
        texts = dict(answers.PARTS, runs=f"{question.function} runs on {len(cases)} fresh inputs")
        return [Condition(texts[part], diff is None, diff or "") for part, diff in found.items()]

    def headline(self, key: str) -> Headline:
        """One headline metric by its recorded key."""
        for entry in self.headlines:
            if entry.key == key:
                return entry
        raise KeyError(f"{self.stem} has no headline metric {key!r}")


# ----------------------------------------------------------------------------------------------------------
# Helpers the lessons' conditions and cases share


def randn(gen: torch.Generator, *shape: int, scale: float = 1.0, dtype=torch.float32) -> torch.Tensor:
    """Normal values of ``shape`` from ``gen``, times ``scale``."""
    return scale * torch.randn(*shape, generator=gen, dtype=dtype)


def pick(gen: torch.Generator, n: int, k: int = 1) -> list[int]:
    """``k`` distinct integers below ``n``."""
    return torch.randperm(n, generator=gen)[:k].tolist()


def same_weights(a: nn.Module, b: nn.Module, prefix_ok: tuple[str, ...] = ()) -> bool:
    """Whether every state entry not starting with one of ``prefix_ok`` is bit-identical in ``a`` and ``b``."""
    sa, sb = a.state_dict(), b.state_dict()
    return all(torch.equal(v.cpu(), sb[k].cpu()) for k, v in sa.items() if not k.startswith(prefix_ok))


@functools.cache
def mnist_test_set() -> TensorData:
    """The real MNIST test set, read once per process."""
    return load_mnist(train=False)


def report_on_test(
    model: nn.Module, forget: tuple[int, ...], relabel: dict | None, device: torch.device | str
) -> UnlearningReport:
    """``model``'s report on the real MNIST test set."""
    return unlearning_report(model, mnist_test_set(), forget, relabel=relabel, device=device)


@functools.cache
def _zoo_report(profile: Profile, exclude: tuple[int, ...], device: str) -> UnlearningReport:
    """A cnn_bn zoo model's report with class 6 forgotten (read as 3), computed once per process."""
    model = zoo.get("cnn_bn", profile, device=device, exclude_classes=exclude).model
    return report_on_test(model, (6,), {6: 3}, device)


def references(profile: Profile, device: torch.device | str) -> list[UnlearningReport]:
    """The original's and the retrained model's reports (forget class 6): a class's loss is measured below both."""
    return [_zoo_report(profile, exclude, str(device)) for exclude in ((), (6,))]

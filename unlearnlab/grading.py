"""Helpers for check cells: one stable line of text per question, never a raw float.

A check prints ``"<question>: PASS (p/p points)"`` or a ``FAIL`` line with a hint, and **raises** on FAIL, so
that nbval, nbgrader and otter all score the cell the same way (nbgrader fails a test cell only when it raises
or writes to stderr). A check cell is feedback for the student; ``unlearnlab grade`` also decides each question
outside the student's kernel (``unlearnlab.course.referee``), with the model a result check hands over through
:func:`submit_model`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from torch import nn

from .files import save_torch

ARTEFACTS_ENV = "UNLEARNLAB_ARTEFACTS"  # set by the grader: the folder where result checks leave their model

# (description, passed) or (description, passed, detail): a measured condition's detail ("reached 97.40 %, bar
# ≥ 98.50 %") is printed on FAIL, so a student sees how far the answer is from the bar
Condition = tuple[str, "bool | Callable[[], object]"] | tuple[str, "bool | Callable[[], object]", str]


class CheckFailedError(AssertionError):
    """A check cell's question is not answered yet; the message is the FAIL line."""


def _holds(condition: bool | Callable[[], object]) -> tuple[bool, str]:
    """Whether a condition holds; a callable is evaluated here, so a wrong type fails with its hint, not a traceback."""
    if not callable(condition):
        return bool(condition), ""
    try:
        return bool(condition()), ""
    except Exception as err:  # a wrong answer of any type: report it as the hint's failure
        return False, f" (checking it raised {type(err).__name__}: {err})"


def check(question: str, points: int, *conditions: Condition) -> None:
    """Print ``"<question>: PASS (p/p points)"`` when every condition holds, else print ``FAIL`` and raise.

    Each condition is ``(description, passed)`` or ``(description, passed, detail)``; ``passed`` is a bool or a
    function of no arguments returning one (preferred: an answer of the wrong type then fails with the description
    as its hint). On FAIL the first line names the first failed condition (the grader's feedback quotes it), and
    one line per condition follows, each with its detail (the value reached and the bar), so a student sees every
    bar at once; :class:`CheckFailedError` carries the FAIL line.
    """
    if not conditions:
        raise ValueError("a check needs at least one condition: a check that cannot fail grades nothing")
    outcomes = []
    for text, condition, *detail in conditions:
        ok, why = _holds(condition)
        if not why and detail and detail[0]:
            why = f" ({detail[0]})"
        outcomes.append((text, ok, why))
    failed = [(text, why) for text, ok, why in outcomes if not ok]
    if not failed:
        print(f"{question}: PASS ({points}/{points} points)")
        return
    line = f"{question}: FAIL (0/{points} points). Not yet: {failed[0][0]}{failed[0][1]}"
    print(line)
    if len(outcomes) > 1:
        print("\n".join(f"  {'ok ' if ok else 'NOT'} {text}{why}" for text, ok, why in outcomes))
    raise CheckFailedError(line)


def within(value: float, target: float, tol: float) -> bool:
    """``|value - target| <= tol``, for conditions on floats."""
    return abs(float(value) - float(target)) <= tol


def submit_model(grade_id: str, model: nn.Module) -> Path | None:
    """Hand ``model``'s weights to the grader, which evaluates them in its own process.

    Writes ``<grade_id>.pt`` (a CPU ``state_dict``) into ``$UNLEARNLAB_ARTEFACTS`` when the grader has set it;
    does nothing in a student's own session. Returns the file written, if any.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"{grade_id}: expected a torch model (nn.Module), got {type(model).__name__}")
    folder = os.environ.get(ARTEFACTS_ENV)
    if not folder:
        return None
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    return save_torch(state, Path(folder) / f"{grade_id}.pt")

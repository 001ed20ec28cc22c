"""Helpers for check cells: one stable line of text per question, never a raw float.

nbval compares a check cell's output with the one stored from the solutions run, so the printed text must
not depend on timing, hardware or the exact numbers: ``PASS`` lines match, a ``FAIL`` line does not.
"""

from __future__ import annotations


def check(question: str, points: int, *conditions: tuple[str, bool]) -> None:
    """Print ``"<question>: PASS (p/p points)"`` when every condition holds, else ``FAIL`` with the first failed one.

    Each condition is ``(description, passed)``; the description is the hint a student sees on failure.
    Returns nothing, so a check cell's only output is that line.
    """
    if not conditions:
        raise ValueError("a check needs at least one condition: a check that cannot fail grades nothing")
    failed = [text for text, ok in conditions if not bool(ok)]
    if failed:
        print(f"{question}: FAIL (0/{points} points). Not yet: {failed[0]}")
    else:
        print(f"{question}: PASS ({points}/{points} points)")


def within(value: float, target: float, tol: float) -> bool:
    """``|value - target| <= tol``, for conditions on floats."""
    return abs(float(value) - float(target)) <= tol

"""Every graded lesson by its notebook's stem: where the grader, the report and the README find them."""

from __future__ import annotations

from . import amnesiac, capstone, deepinversion, distillation, mia_pruning, penalty_loss, relabel_freeze, zero_shot
from .base import Lesson

LESSONS: dict[str, Lesson] = {
    module.LESSON.stem: module.LESSON
    for module in (
        relabel_freeze,
        penalty_loss,
        distillation,
        zero_shot,
        deepinversion,
        mia_pruning,
        amnesiac,
        capstone,
    )
}


def find(stem: str) -> Lesson | None:
    """The lesson of notebook ``stem`` (``01_relabel_freeze``), or None for a notebook that is not graded."""
    return LESSONS.get(stem)

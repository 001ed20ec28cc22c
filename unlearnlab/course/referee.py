"""Grade-deciding checks that never trust the student's kernel (DESIGN.md section 5).

- A **function question** is decided by calling the student's function on inputs drawn at grading time, in a
  sandboxed process that runs the answer cell alone (with the notebook's imports), and comparing what it
  returned, what it did to its inputs and, for losses, its gradient with the package's reference, computed here.
- A **result question** is decided by evaluating the model the notebook handed over (``submit_model``) on the
  real test set, in the grader's own process, with the conditions its lesson defines; the notebook's check cell
  calls the same conditions, so students see exactly what the grader applies.

The questions themselves live in their lessons (:mod:`unlearnlab.lessons`); this module finds them through
:mod:`unlearnlab.lessons.catalog` and knows no particular lesson.
"""

from __future__ import annotations

import ast
import time
from collections.abc import Callable

import torch
from filelock import FileLock
from torch import nn

from .. import zoo
from ..config import Profile, resolve
from ..data import cache_dir, load_dataset, load_mnist
from ..lessons.base import Condition, FunctionQuestion, Lesson, Question, ResultQuestion
from ..lessons.catalog import find
from ..models import build_model
from ..training import pick_device


def question(exercise: str, grade_id: str) -> Question | None:
    """The question ``grade_id`` of ``exercise``'s lesson, or None (a notebook or question no lesson grades)."""
    lesson = find(exercise)
    return lesson.questions.get(grade_id) if lesson else None


def result_conditions(
    exercise: str, grade_id: str, model: nn.Module, profile: str | Profile = "auto", device: torch.device | str = "cpu"
) -> list[Condition]:
    """The conditions a result question's model must meet, as its lesson defines them."""
    lesson = find(exercise)
    if lesson is None:
        raise KeyError(f"no lesson grades {exercise!r}")
    return lesson.conditions(grade_id, model, resolve(profile), device)


def reference_name(exercise: str, grade_id: str) -> str | None:
    """The public name of the package function a function question is checked against (None for local helpers)."""
    asked = question(exercise, grade_id)
    if not isinstance(asked, FunctionQuestion):
        return None
    fn = getattr(asked.reference, "func", asked.reference)  # a functools.partial
    name = getattr(fn, "__name__", "")
    return name if name.isidentifier() and not name.startswith("_") else None


def warm_cache(
    exercises: list[str],
    profile: str | Profile = "auto",
    device: str | torch.device = "auto",
    echo: Callable[[str], object] = lambda line: None,
) -> None:
    """Extract the data, train (once) every model the exercises load and run their lessons' long work that does
    not depend on an answer (``Lesson.warm``: a GKT study, syntheses, the capstone's comparisons), so no
    submission's clock pays for it and a sandbox with a read-only cache finds everything it needs. ``echo`` gets
    a line per exercise made ready, with its time (seconds: a cold cache trains the models here)."""
    profile, device = resolve(profile), pick_device(device)
    for train in (True, False):
        load_mnist(train=train)
    for lesson in filter(None, map(find, exercises)):
        start = time.perf_counter()
        _warm_lesson(lesson, profile, device)
        echo(f"  {lesson.stem}: ready ({time.perf_counter() - start:.0f} s)")


def _warm_lesson(lesson: Lesson, profile: Profile, device: torch.device) -> None:
    """Every model ``lesson`` loads, trained once into the cache, then the lesson's own long work (``Lesson.warm``)."""
    for exclude in sorted(set(lesson.needs)):
        zoo.get("cnn_bn", profile, device=device, exclude_classes=exclude)
    for spec in lesson.zoo_specs(profile) if lesson.zoo_specs else ():
        load_dataset(spec.dataset, train=True)
        load_dataset(spec.dataset, train=False)
        zoo.get_spec(spec, device)
    if lesson.warm is not None:  # one process at a time: the next finds the work in the cache
        lock = cache_dir() / "warm" / f"{lesson.stem}-{profile.name}-{device.type}.lock"
        lock.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(lock):
            lesson.warm(profile, device)


# ----------------------------------------------------------------------------------------------------------
# Verdicts


def answer_imports(cells_before: list[str]) -> str:
    """The top-level import statements of the notebook's code before an answer cell (its namespace to be)."""
    lines = []
    for source in cells_before:
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        lines += [ast.unparse(node) for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    return "\n".join(lines)


def load_submitted_model(question: ResultQuestion, path) -> nn.Module:
    """The submitted ``state_dict`` in a fresh model; plain tensors only (``weights_only``), strict keys."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    model = build_model(question.model)
    model.load_state_dict(state, strict=True)
    return model.eval()

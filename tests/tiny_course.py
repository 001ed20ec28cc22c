"""The tiny test course: a two-question solution notebook (99_tiny) and its lesson (one function question).

Tests register the lesson in their own process, and grading workers load this file at start (Dask's worker
preload), so the grader's referee knows the question wherever the task runs."""

import torch
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from unlearnlab.lessons.base import FunctionQuestion, Lesson
from unlearnlab.lessons.catalog import LESSONS

NAME = "99_tiny"


def _cases(gen: torch.Generator) -> list[dict]:
    return [{"args": [int(torch.randint(-1000, 1000, (1,), generator=gen))]} for _ in range(3)]


# a lambda: the grader's sandboxed probe, which cannot import this test file, has no reference to withhold
LESSON = Lesson(NAME, {"q1": FunctionQuestion("double", _cases, lambda x: 2 * x)})


def dask_setup(worker: object) -> None:
    """Dask's preload hook: a grading worker knows the tiny lesson (tests register it themselves, per test)."""
    LESSONS.setdefault(NAME, LESSON)


def _answer(q, source):
    cell = new_code_cell(source)
    cell.id = f"{q}-answer"
    cell.metadata["nbgrader"] = {
        "grade": False,
        "grade_id": f"{q}_answer",
        "locked": False,
        "schema_version": 3,
        "solution": True,
        "task": False,
    }
    return cell


def _check(q, points, source):
    cell = new_code_cell(source)
    cell.id = f"{q}-check"
    cell.metadata["nbgrader"] = {
        "grade": True,
        "grade_id": q,
        "locked": True,
        "points": points,
        "schema_version": 3,
        "solution": False,
        "task": False,
    }
    return cell


def tiny_solution():
    """A two-question solution notebook: a function question (q1) and a value question (q2)."""
    params = new_code_cell('PROFILE = "auto"\nSEED = 0\nDEVICE = "auto"')
    params.id, params.metadata["tags"] = "parameters", ["parameters"]
    intro = new_markdown_cell("# 99 · tiny")
    intro.id = "intro"
    setup = new_code_cell("from unlearnlab.grading import check\nfrom unlearnlab import record")
    setup.id = "setup"
    rec = new_code_cell("record(answer=double(21))")
    rec.id = "record"
    cells = [
        intro,
        params,
        setup,
        _answer("q1", "def double(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION"),
        _check("q1", 2, 'check("Q1 double", 2, ("double(3) is 6", lambda: double(3) == 6))'),
        _answer("q2", "### BEGIN SOLUTION\nanswer = 42\n### END SOLUTION"),
        _check("q2", 3, 'check("Q2 answer", 3, ("answer is 42", lambda: answer == 42))'),
        rec,
    ]
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    return nb

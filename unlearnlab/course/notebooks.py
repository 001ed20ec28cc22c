"""What the course tools know about a notebook: where the course lives, and which cells are answers and checks."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from ..files import atomic_write

CHECK_TAG = "nbval-check-output"
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"


def course_root() -> Path:
    """The folder holding ``solutions/``, ``exercises/`` and ``notebooks/``: resolved from the package, not cwd."""
    root = Path(os.environ.get("UNLEARNLAB_COURSE_ROOT") or Path(__file__).resolve().parents[2])
    if not (root / "solutions").is_dir():
        raise FileNotFoundError(
            f"no solutions/ folder in {root}: install the package from a clone of the course "
            "(pip install -e .) or set UNLEARNLAB_COURSE_ROOT to the clone's folder"
        )
    return root


def read(path: str | os.PathLike) -> NotebookNode:
    """Read a notebook as nbformat v4; raises ``ValueError`` with the path when it is not a valid notebook."""
    try:
        return nbformat.read(str(path), as_version=4)
    except Exception as err:  # nbformat raises JSON, validation and reader errors of several types
        raise ValueError(f"{path} is not a valid Jupyter notebook ({type(err).__name__}: {err})") from err


def write(nb: NotebookNode, path: str | os.PathLike) -> None:
    """Write a notebook atomically, with sorted keys and a final newline (byte-stable output)."""
    text = nbformat.writes(nb, version=4) + "\n"
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def grading(cell: NotebookNode) -> dict:
    """The cell's nbgrader metadata (empty when it has none)."""
    return dict(cell.get("metadata", {}).get("nbgrader", {}))


def is_check(cell: NotebookNode) -> bool:
    """A graded check cell: nbgrader ``grade: true``."""
    return cell.cell_type == "code" and bool(grading(cell).get("grade"))


def is_answer(cell: NotebookNode) -> bool:
    """A student's answer cell: nbgrader ``solution: true``."""
    return bool(grading(cell).get("solution"))


ANSWER_DEMO = "answer-demo"  # the tag of a cell that only shows the student's own answer: nothing depends on it


def may_fail_unanswered(cell: NotebookNode) -> bool:
    """Whether ``cell`` may fail while its question is unanswered: an answer, a check, or an ``answer-demo`` cell
    (every other cell uses the lessons' reference results, so one unanswered question costs only itself)."""
    return is_answer(cell) or is_check(cell) or ANSWER_DEMO in cell.metadata.get("tags", [])


def questions(nb: NotebookNode) -> dict[str, int]:
    """``{grade_id: points}`` of the check cells, in notebook order."""
    return {grading(c)["grade_id"]: int(grading(c).get("points", 0)) for c in nb.cells if is_check(c)}


def code_cell_numbers(nb: NotebookNode) -> dict[str, int]:
    """``{cell id: n}`` where ``n`` counts code cells only, as nbval names its items (``Cell n``)."""
    return {c.id: n for n, c in enumerate(c for c in nb.cells if c.cell_type == "code")}

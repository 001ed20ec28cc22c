"""``unlearnlab grade``: points per question for a folder of submissions (DESIGN.md section 5).

For each submission: the pristine exercise, with only the student's answer cells copied in (by cell id), runs
under nbval (``--nbval-lax``, a per-cell timeout); each check cell that passes earns its points. Edited,
deleted or reordered check cells never count, since the checks always come from the pristine exercise.
"""

from __future__ import annotations

import copy
import csv
import os
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from nbformat import NotebookNode

from . import notebooks as nbs


@dataclass
class GradeRow:
    """One submission's result: points per question (grade_id), the maximum, and feedback for the student."""

    submission: str
    exercise: str
    points: dict[str, int] = field(default_factory=dict)
    max_points: dict[str, int] = field(default_factory=dict)
    feedback: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        """Points earned."""
        return sum(self.points.values())


def merge_answers(pristine: NotebookNode, submission: NotebookNode) -> tuple[NotebookNode, list[str]]:
    """The pristine exercise with the student's answer cells copied in; returns it and notes on missing answers.

    Answer cells are matched by cell id, then by nbgrader ``grade_id`` (some editors rewrite ids).
    """
    by_id = {c.get("id"): c for c in submission.cells}
    by_grade_id = {nbs.grading(c).get("grade_id"): c for c in submission.cells if nbs.is_answer(c)}
    merged, notes = copy.deepcopy(pristine), []
    for cell in merged.cells:
        if not nbs.is_answer(cell):
            continue
        theirs = by_id.get(cell.id) or by_grade_id.get(nbs.grading(cell).get("grade_id"))
        if theirs is None or theirs.cell_type != cell.cell_type:
            notes.append(f"answer cell {cell.id} is missing from the submission")
            continue
        cell.source = theirs.source
    return merged, notes


def _outcomes(junit_xml: Path) -> dict[int, tuple[bool, str]]:
    """``{code cell number: (passed, message)}`` from nbval's junit report (xfail after a timeout = failed)."""
    outcomes = {}
    for case in ET.parse(junit_xml).iter("testcase"):
        match = re.fullmatch(r"Cell (\d+)", case.get("name", ""))
        if not match:
            continue
        problem = next((child for child in case if child.tag in ("failure", "error", "skipped")), None)
        message = "" if problem is None else f"{problem.get('message', '')}\n{problem.text or ''}"
        outcomes[int(match.group(1))] = (problem is None, message)
    return outcomes


ANSI = re.compile(r"(\x1b|#x1B)\[[0-9;]*m")


def _reason(message: str) -> str:
    """A one-line reason for a failed cell: the check's FAIL line, a timeout, or the exception."""
    message = ANSI.sub("", message)
    fail = re.search(r"^[-+\s]*(Q\S*.*: FAIL \(.*)$", message, re.MULTILINE)
    if fail:
        return fail.group(1).strip()
    if "Timeout" in message or "timed out" in message:
        return "timed out" if "Previous cell timed out" not in message else "did not run: an earlier cell timed out"
    raised = re.findall(r"^(\w+(?:Error|Exception|Interrupt)\b(?::.*)?)", message, re.MULTILINE)
    with_text = [e for e in raised if ":" in e]
    if raised:
        reason = (with_text or raised)[-1].strip().rstrip(":")
        return "not answered yet (NotImplementedError)" if reason == "NotImplementedError" else reason
    return "outputs differ from the expected PASS"


def run_nbval(notebook: Path, timeout: int) -> dict[int, tuple[bool, str]]:
    """Run nbval on ``notebook`` in its folder; returns each code cell's outcome."""
    junit = notebook.with_suffix(".xml")
    env = {**os.environ, "TQDM_DISABLE": "1", "PYTHONWARNINGS": "ignore"}
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        notebook.name,
        "--nbval-lax",
        "--nbval-current-env",
        f"--nbval-cell-timeout={timeout}",
        "-p",
        "no:cacheprovider",
        "-q",
        "--color=no",
        f"--junitxml={junit.name}",
        "-o",
        "addopts=",
        "-o",
        "testpaths=",
        "--rootdir",
        str(notebook.parent),
    ]
    subprocess.run(cmd, cwd=notebook.parent, env=env, capture_output=True, text=True, check=False)
    if not junit.is_file():
        raise RuntimeError(f"nbval produced no report for {notebook}")
    return _outcomes(junit)


def find_exercise(submission: Path, nb: NotebookNode, exercises: Path) -> Path:
    """The exercise a submission answers: its notebook metadata, else the ``NN_`` prefix of its file name."""
    name = nb.metadata.get("unlearnlab", {}).get("exercise")
    if name and (exercises / f"{name}.ipynb").is_file():
        return exercises / f"{name}.ipynb"
    number = re.match(r"(\d\d)", submission.name)
    candidates = sorted(exercises.glob(f"{number.group(1)}_*.ipynb")) if number else []
    if len(candidates) != 1:
        raise ValueError(f"cannot tell which exercise {submission.name} answers: name it with --exercise")
    return candidates[0]


def grade_one(submission: Path, exercises: Path, timeout: int, exercise: Path | None = None) -> GradeRow:
    """Grade one submission; a broken file or a failing answer gives a row, never an exception."""
    try:
        theirs = nbs.read(submission)
        pristine_path = exercise or find_exercise(submission, theirs, exercises)
    except ValueError as err:
        return GradeRow(submission.stem, "?", feedback=[str(err)])
    pristine = nbs.read(pristine_path)
    row = GradeRow(submission.stem, pristine_path.stem, max_points=nbs.questions(pristine))
    merged, row.feedback = merge_answers(pristine, theirs)
    numbers = nbs.code_cell_numbers(merged)
    with tempfile.TemporaryDirectory(prefix="unlearnlab-grade-") as tmp:
        path = Path(tmp) / pristine_path.name
        nbs.write(merged, path)
        outcomes = run_nbval(path, timeout)
    for cell in merged.cells:
        if cell.cell_type != "code" or not (nbs.is_check(cell) or nbs.is_answer(cell)):
            continue
        passed, message = outcomes.get(numbers[cell.id], (False, "did not run"))
        if nbs.is_answer(cell):
            if not passed:
                row.feedback.append(f"{nbs.grading(cell).get('grade_id', cell.id)}: {_reason(message)}")
            continue
        grade_id = nbs.grading(cell)["grade_id"]
        row.points[grade_id] = row.max_points[grade_id] if passed else 0
        if not passed:
            row.feedback.append(f"{grade_id}: {_reason(message)}")
    return row


def submissions_in(paths: list[Path]) -> list[Path]:
    """Notebook files named directly, or found under named folders (checkpoints skipped)."""
    found = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
        else:
            found.append(path)
    return found


def grade_all(
    paths: list[Path],
    exercises: Path | None = None,
    timeout: int = 300,
    jobs: int | None = None,
    exercise: Path | None = None,
) -> list[GradeRow]:
    """Grade every submission, ``jobs`` at a time (default: half the cores, each kernel gets its share)."""
    exercises = exercises or nbs.course_root() / "exercises"
    jobs = jobs or max(1, (os.cpu_count() or 2) // 2)
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 2) // jobs)))
    files = submissions_in(paths)
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(lambda p: grade_one(p, exercises, timeout, exercise), files))


def write_csv(rows: list[GradeRow], path: Path) -> None:
    """One row per submission: points per question, total, maximum and feedback."""
    exercises = sorted({r.exercise for r in rows if r.exercise != "?"})
    prefix = len(exercises) > 1

    def column(row: GradeRow, grade_id: str) -> str:
        return f"{row.exercise[:2]}.{grade_id}" if prefix else grade_id

    columns = list(dict.fromkeys(column(r, q) for r in rows for q in r.max_points))
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["submission", "exercise", *columns, "total", "max", "feedback"])
        for r in rows:
            earned = {column(r, q): p for q, p in r.points.items()}
            writer.writerow(
                [
                    r.submission,
                    r.exercise,
                    *(earned.get(c, "") for c in columns),
                    r.total,
                    sum(r.max_points.values()),
                    " | ".join(r.feedback),
                ]
            )

"""Every notebook through the real pipeline (quick profile on CPU): solutions earn full marks under nbval,
unsolved exercises fail every question, exercises/ is in sync with solutions/, and the grader is fair."""

import ast
import os
import shutil
import subprocess
import sys
from functools import partial
from pathlib import Path

import pytest

from unlearnlab.course import build as B
from unlearnlab.course import grade as G
from unlearnlab.course import notebooks as nbs

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted((ROOT / "solutions").glob("[0-9]*.ipynb"))
EXERCISES = ROOT / "exercises"
CELL_TIMEOUT = 900  # seconds per cell: generous, a slow CI machine must not fail a correct notebook


def test_there_are_notebooks():
    assert [p.name for p in SOLUTIONS] == [p.name for p in sorted(EXERCISES.glob("[0-9]*.ipynb"))]
    assert SOLUTIONS and SOLUTIONS[0].name.startswith("01_")


@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda p: p.stem)
def test_solution_earns_full_marks(solution):
    row = G.grade_one(solution, EXERCISES, CELL_TIMEOUT)
    assert row.max_points, "a graded notebook needs at least one check cell"
    assert row.points == row.max_points, row.feedback


@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda p: p.stem)
def test_unsolved_exercise_fails_every_question(solution):
    row = G.grade_one(EXERCISES / solution.name, EXERCISES, CELL_TIMEOUT)
    assert set(row.points) == set(row.max_points) and row.max_points
    earned = {q: p for q, p in row.points.items() if p}
    assert not earned, f"checks that pass without an answer cannot grade anything: {earned}"
    cells = {c.id: c for c in nbs.read(EXERCISES / solution.name).cells}
    broken = [cid for cid in row.failed_cells if not nbs.may_fail_unanswered(cells[cid])]
    assert not broken, f"cells that fail when questions are unanswered (use the lesson's reference result): {broken}"


def _names(source: str, ctx: type) -> set[str]:
    """The names ``source`` loads (``ast.Load``) or stores (``ast.Store``, plus the functions it defines)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:  # IPython magics: a cell the course does not write
        return set()
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ctx)}
    if ctx is ast.Store:
        names |= {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
        names |= {
            a.asname or a.name.split(".")[0]
            for n in ast.walk(tree)
            if isinstance(n, (ast.Import, ast.ImportFrom))
            for a in n.names
        }
    return names


@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda p: p.stem)
def test_no_cell_after_a_question_uses_what_only_its_answer_defines(solution):
    defined_by_answers: set[str] = set()
    defined_elsewhere: set[str] = set()
    for cell in (c for c in nbs.read(solution).cells if c.cell_type == "code"):
        stored = _names(cell.source, ast.Store)
        if nbs.is_answer(cell):
            defined_by_answers |= stored
            continue
        if not nbs.may_fail_unanswered(cell):
            borrowed = (_names(cell.source, ast.Load) & defined_by_answers) - defined_elsewhere - stored
            assert not borrowed, f"{solution.name} cell {cell.id} uses the student's {sorted(borrowed)}"
        defined_elsewhere |= stored


def test_exercises_are_built_from_the_current_solutions(tmp_path):
    shutil.copytree(ROOT / "solutions", tmp_path / "solutions")
    B.build(tmp_path / "solutions", tmp_path / "exercises")
    for solution in SOLUTIONS:
        assert (tmp_path / "solutions" / solution.name).read_bytes() == solution.read_bytes(), (
            f"{solution.name} is not normalised: run `unlearnlab build`"
        )
        assert (tmp_path / "exercises" / solution.name).read_bytes() == (EXERCISES / solution.name).read_bytes(), (
            f"exercises/{solution.name} is out of date: run `unlearnlab build`"
        )


def _submission(folder: Path, name: str, edit) -> Path:
    nb = nbs.read(ROOT / "solutions" / "01_relabel_freeze.ipynb")
    edit({c.id: c for c in nb.cells}, nb)
    path = folder / f"01_{name}.ipynb"
    nbs.write(nb, path)
    return path


def _in_place_relabel(cells, nb):  # changes the labels in place: the check on the input catches it
    cells[
        "q1-answer"
    ].source = "def relabel_targets(y, mapping):\n    for a, b in mapping.items():\n        y[y == a] = b\n    return y"


def test_grader_is_fair_on_notebook_01(tmp_path):

    def forger(cells, nb):  # wrong answers, a patched kernel, the solutions read from disk, the original handed in
        cells["q1-answer"].source = (
            "import unlearnlab.grading as g\ng.check.__code__ = (lambda *a, **k: None).__code__\n"
            "def relabel_targets(y, mapping):\n    return {6: 3}.get(y, y) if not hasattr(y, 'clone') else y"
        )
        cells["q2-answer"].source = (
            "from pathlib import Path\nimport unlearnlab\n"
            "exec(Path(unlearnlab.__file__).parents[1].joinpath('solutions', '01_relabel_freeze.ipynb').read_text())"
        )
        cells["q3-answer"].source = "import unlearnlab.lessons.base as b\nb.Lesson.conditions = lambda *a, **k: []\n"
        cells["q3-answer"].source += "unlearned = model"
        cells["q2-check"].source = 'print("Q2 freeze_all_but_output: PASS (2/2 points)")'  # forged, deleted, moved
        nb.cells = [cells["q3-check"]] + [c for c in nb.cells if c.id not in ("q1-check", "q3-check")]

    attacks = {"wrong_q1": _in_place_relabel, "forger": forger}  # loops, crashes, daemons: test_course.py
    for name, edit in attacks.items():
        _submission(tmp_path, name, edit)
    rows = {r.submission: r for r in G.grade_all([tmp_path], EXERCISES, timeout=CELL_TIMEOUT, jobs=2)}
    assert rows["01_wrong_q1"].points == {"q1": 0, "q2": 2, "q3": 3}, rows["01_wrong_q1"].feedback
    assert rows["01_forger"].points == {"q1": 0, "q2": 0, "q3": 0}, rows["01_forger"].feedback
    assert {"__code__", "solutions"} <= set(rows["01_forger"].flags)


def _nbgrader_scores(tmp_path: Path, submissions: dict[str, Path]) -> dict[str, dict[str, float]]:
    """Points per grade_id that a real nbgrader course gives each submission (generate_assignment + autograde)."""
    gradebook = pytest.importorskip("nbgrader.api")
    course = tmp_path / "nbgrader-course"
    (course / "source" / "ps1").mkdir(parents=True)
    shutil.copy(ROOT / "solutions" / "01_relabel_freeze.ipynb", course / "source" / "ps1")
    (course / "nbgrader_config.py").write_text(f"c.CourseDirectory.root = {str(course)!r}\n")
    nbgrader = [str(Path(sys.executable).with_name("nbgrader"))]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    run = partial(subprocess.run, cwd=course, env=env, capture_output=True, text=True, check=True)
    run([*nbgrader, "generate_assignment", "ps1", "--force"])
    for student, path in submissions.items():
        (course / "submitted" / student / "ps1").mkdir(parents=True)
        shutil.copy(path, course / "submitted" / student / "ps1" / "01_relabel_freeze.ipynb")
    run([*nbgrader, "autograde", "ps1", "--force", f"--ExecutePreprocessor.timeout={CELL_TIMEOUT}"])
    with gradebook.Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        return {
            student: {g.name: g.score for g in gb.find_submission_notebook("01_relabel_freeze", "ps1", student).grades}
            for student in submissions
        }


def test_nbgrader_scores_as_unlearnlab_grade_does(tmp_path):
    """nbgrader fails a test cell only when it raises: our checks raise, so a wrong answer loses there too.

    ``unlearnlab grade``'s points for the same notebooks are asserted by the tests above (the unsolved exercise
    earns nothing, the in-place relabelling loses q1 only): nbgrader must agree. The wrong submission earns q2 and
    q3 with the solution's code, so nbgrader's full-marks path is covered without a third run of the notebook.
    """
    folder = tmp_path / "submissions"
    folder.mkdir()
    submissions = {
        "unsolved": EXERCISES / "01_relabel_freeze.ipynb",
        "wrong": _submission(folder, "wrong", _in_place_relabel),
    }
    theirs = _nbgrader_scores(tmp_path, submissions)
    assert {name: {q: int(p) for q, p in points.items()} for name, points in theirs.items()} == {
        "unsolved": {"q1": 0, "q2": 0, "q3": 0},
        "wrong": {"q1": 0, "q2": 2, "q3": 3},
    }

"""``unlearnlab grade --leaderboard``: notebook-08 submissions' methods scored like competition entries, in the
sandbox, on a local Dask cluster, beside the course's methods (a tiny study: three real MLPs a side)."""

import csv

import pytest

from unlearnlab.cli import main
from unlearnlab.compare.forgetting import Study
from unlearnlab.course import leaderboard as L
from unlearnlab.course import notebooks as nbs

TINY = Study("mlp", models=3, train_subset=600, num_epochs=1, forget_fraction=0.05, scored=10)
EXERCISE = nbs.course_root() / "exercises" / "08_capstone.ipynb"
GIVEN = "setup = lesson.q3_setup(profile, device)\n"
METHODS = {
    # the course's fine-tuning at its quick config, called as a student would: its row must match the course's
    "same_as_finetune": 'ft = registry.get("finetune").module\n'
    'my_model = ft.unlearn(setup.original, setup.splits, "quick", device=device, seed=SEED).model',
    "ascent": 'ga = registry.get("gradient_ascent").module\n'
    'my_model = ga.unlearn(setup.original, setup.splits, "quick", device=device, seed=SEED).model',
    "crashes": 'raise RuntimeError("my method is broken")',
    "too_slow": "import time\ntime.sleep(600)",
}


def _submit(folder, name, method):
    nb = nbs.read(EXERCISE)
    next(c for c in nb.cells if c.id == L.ANSWER).source = GIVEN + method
    nbs.write(nb, folder / f"08_{name}.ipynb")


@pytest.fixture()
def submissions(tmp_path, monkeypatch):
    monkeypatch.setenv("UNLEARNLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("UNLEARNLAB_RESUME", raising=False)
    folder = tmp_path / "submissions"
    folder.mkdir()
    for name, method in METHODS.items():
        _submit(folder, name, method)
    return folder


def test_the_students_own_lines_are_the_method():
    given = next(c.source for c in nbs.read(EXERCISE).cells if c.id == L.ANSWER)
    assert L.method_source(GIVEN + "x = 1\nmy_model = x", given) == "x = 1\nmy_model = x"
    unanswered = L.entrant(EXERCISE, nbs.read(EXERCISE))
    assert unanswered.error == "Q3 is not answered" and not unanswered.method


def test_a_leaderboard_of_submissions_among_the_course_methods(submissions, tmp_path):
    board = L.leaderboard([submissions], study=TINY, methods=["finetune"], timeout=60, jobs=2)
    rows = {r.name.removeprefix(L.SUBMISSION): r for r in board.result.rows}
    assert list(rows) == ["finetune", "08_ascent", "08_crashes", "08_same_as_finetune", "08_too_slow"]

    # the sandboxed, weights-only path scores the same models as the course's own run of the same method
    mine, course = rows["08_same_as_finetune"], rows["finetune"]
    assert mine.quality.score == pytest.approx(course.quality.score, abs=1e-12)
    assert (mine.forget_acc, mine.retain_acc, mine.test_acc) == (course.forget_acc, course.retain_acc, course.test_acc)
    assert mine.seconds >= 0 and board.startup > 0
    assert 0.0 <= rows["08_ascent"].quality.score <= 1.0
    # a crash and a method past its budget get rows saying so; the others were still scored
    assert rows["08_crashes"].quality is None and "RuntimeError: my method is broken" in rows["08_crashes"].error
    assert rows["08_too_slow"].error == "ran past its time budget of 60 s on seed 0"

    paths = board.write(tmp_path / "out")
    with open(paths[0]) as f:
        table = list(csv.DictReader(f))
    assert [r["name"] for r in table if r["kind"] == "submission"][-2:] == ["08_crashes", "08_too_slow"]
    assert {r["name"] for r in table if r["kind"] == "reference"} >= {"finetune", "original (no unlearning)"}
    assert [r["rank"] for r in table if r["F"]] == [str(k) for k in range(1, len([r for r in table if r["F"]]) + 1)]
    assert "08_crashes" in paths[1].read_text() and paths[3].stat().st_size > 0


def test_cli_needs_an_output_folder_and_parses_the_leaderboard(capsys):
    assert main(["grade", "somewhere", "--leaderboard"]) == 2
    assert "--out" in capsys.readouterr().err

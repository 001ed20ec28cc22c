"""The course tools on small notebooks made here: build, run (papermill) and grade (nbval)."""

import copy
import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import torch
from conftest import _submission
from nbformat.v4 import new_code_cell
from tiny_course import tiny_solution

from unlearnlab import config, zoo
from unlearnlab.config import recorded_runs, resolve
from unlearnlab.course import build as B
from unlearnlab.course import expect as EXPECT
from unlearnlab.course import grade as G
from unlearnlab.course import notebooks as nbs
from unlearnlab.course import referee as R
from unlearnlab.course import run as RUN
from unlearnlab.course.run import run_all
from unlearnlab.course.sandbox import bwrap_works
from unlearnlab.lessons import capstone
from unlearnlab.lessons.amnesiac import ledger_runs
from unlearnlab.lessons.mia_pruning import memorising_specs

ROOT = Path(__file__).resolve().parents[1]


def test_strip_solution_keeps_indentation_and_rejects_broken_markers():
    src = "def f():\n    x = 1\n    ### BEGIN SOLUTION\n    return x\n    ### END SOLUTION\n"
    assert B.strip_solution(src) == "def f():\n    x = 1\n    # YOUR CODE HERE\n    raise NotImplementedError()"
    for broken in ("### BEGIN SOLUTION\nx", "x\n### END SOLUTION", "### BEGIN SOLUTION\n### BEGIN SOLUTION"):
        with pytest.raises(B.BuildError):
            B.strip_solution(broken)


def test_build_writes_exercises_idempotently(course):
    exercise = (course / "exercises" / "99_tiny.ipynb").read_bytes()
    solution = (course / "solutions" / "99_tiny.ipynb").read_bytes()
    B.build(course / "solutions", course / "exercises")
    assert (course / "exercises" / "99_tiny.ipynb").read_bytes() == exercise
    assert (course / "solutions" / "99_tiny.ipynb").read_bytes() == solution
    nb = nbs.read(course / "exercises" / "99_tiny.ipynb")
    cells = {c.id: c for c in nb.cells}
    assert "raise NotImplementedError()" in cells["q1-answer"].source and "2 * x" not in cells["q1-answer"].source
    assert all(c.outputs == [] and c.execution_count is None for c in nb.cells if c.cell_type == "code")
    assert nb.metadata["unlearnlab"]["exercise"] == "99_tiny"
    assert cells["q1-check"].metadata["deletable"] is False and cells["q1-check"].metadata["editable"] is False
    assert cells["q1-answer"].metadata["deletable"] is False and "editable" not in cells["q1-answer"].metadata
    assert cells["q1-check"].metadata["nbgrader"]["checksum"] == B.nbgrader_checksum(cells["q1-check"])


def test_checksums_match_nbgraders_own(course):
    nbgrader_utils = pytest.importorskip("nbgrader.utils")
    nb = nbs.read(course / "exercises" / "99_tiny.ipynb")
    graded = [c for c in nb.cells if c.metadata.get("nbgrader")]
    assert graded and all(c.metadata.nbgrader.checksum == nbgrader_utils.compute_checksum(c) for c in graded)
    graded[0].source += "\n# edited"
    assert nbgrader_utils.compute_checksum(graded[0]) != graded[0].metadata.nbgrader.checksum


def test_executed_outputs_are_dropped_from_solutions_and_exercises(tmp_path):
    (tmp_path / "solutions").mkdir()
    nb = tiny_solution()
    nb.cells[4].outputs = [nbformat.v4.new_output("stream", name="stdout", text="Q1 double: PASS (2/2 points)\n")]
    nb.cells[4].execution_count = 3
    nb.cells[4].metadata["tags"] = [nbs.CHECK_TAG]
    nbs.write(nb, tmp_path / "solutions" / "99_tiny.ipynb")
    B.build(tmp_path / "solutions", tmp_path / "exercises")
    for folder in ("solutions", "exercises"):
        cell = nbs.read(tmp_path / folder / "99_tiny.ipynb").cells[4]
        assert cell.outputs == [] and cell.execution_count is None and "tags" not in cell.metadata


def test_build_validates_conventions(tmp_path):
    (tmp_path / "solutions").mkdir()
    nb = tiny_solution()
    nb.cells[1].metadata["tags"] = []
    nbs.write(nb, tmp_path / "solutions" / "99_tiny.ipynb")
    with pytest.raises(B.BuildError, match="tagged 'parameters'"):
        B.build(tmp_path / "solutions", tmp_path / "exercises")
    nb = tiny_solution()
    nb.cells[4].metadata["nbgrader"]["points"] = 0
    nbs.write(nb, tmp_path / "solutions" / "99_tiny.ipynb")
    with pytest.raises(B.BuildError, match="points > 0"):
        B.build(tmp_path / "solutions", tmp_path / "exercises")


def test_merge_copies_only_answer_cells_by_id_then_grade_id(course):
    pristine = nbs.read(course / "exercises" / "99_tiny.ipynb")
    theirs = nbs.read(course / "exercises" / "99_tiny.ipynb")
    cells = {c.id: c for c in theirs.cells}
    cells["q1-answer"].source = "def double(x):\n    return x + x"
    cells["q2-answer"].id = "renamed-by-an-editor"
    cells["q2-answer"].source = "answer = 42"
    cells["q1-check"].source = 'print("Q1 double: PASS (2/2 points)")'
    merged, notes = G.merge_answers(pristine, theirs)
    merged_cells = {c.id: c for c in merged.cells}
    assert merged_cells["q1-answer"].source == "def double(x):\n    return x + x"
    assert merged_cells["q2-answer"].source == "answer = 42"
    assert merged_cells["q1-check"].source == {c.id: c for c in pristine.cells}["q1-check"].source
    assert notes == []
    theirs.cells = [c for c in theirs.cells if c.id != "q1-answer"]
    assert G.merge_answers(pristine, theirs)[1] == ["answer cell q1-answer is missing from the submission"]


def test_reason_extracts_fail_lines_errors_and_timeouts():
    assert G._reason("...\n+Q1 double: FAIL (0/2 points). Not yet: x\n") == "Q1 double: FAIL (0/2 points). Not yet: x"
    assert G._reason("#x1B[31mNameError#x1B[39m: name 'x' is not defined") == "NameError: name 'x' is not defined"
    assert G._reason("NotImplementedError: ") == "not answered yet (NotImplementedError)"
    assert G._reason("Timeout of 5 seconds exceeded executing cell") == "timed out"


ATTACKS = {  # answer to q1 (q2 is answered correctly unless said otherwise): a hostile or broken student
    "wrong_q1": "def double(x):\n    return x + 2",
    "endless": "while True:\n    pass",
    "stubborn": "while True:\n    try:\n        while True:\n            pass\n"
    "    except KeyboardInterrupt:\n        pass",
    "exits": "import os\nos._exit(0)",
    "own_check": "def double(x):\n    return x\n\n\ndef check(*args, **kwargs):\n"
    '    print("Q1 double: PASS (2/2 points)")',
    "patcher": (
        "import builtins\nimport unlearnlab.grading as g\n"
        "g.check.__code__ = (lambda *a, **k: None).__code__\nbuiltins.bool = lambda x: True\n"
        "builtins.print = lambda *a, **k: None\n"
        "get_ipython().input_transformers_post.append(lambda lines: ['print(\"Q1 double: PASS (2/2 points)\")'])\n"
        "def double(x):\n    return 0"
    ),
    "hard_coded": "def double(x):\n    return {3: 6}.get(x, 0)",
    "killer": (
        "import os, signal\nopen('report.xml', 'w').write('<testsuite/>')\n"
        "for pid in (os.getppid(), 1):\n    try:\n        os.kill(pid, signal.SIGKILL)\n    except OSError:\n"
        "        pass\ndef double(x):\n    return 0"
    ),
}


@pytest.mark.skipif(not bwrap_works(), reason="bubblewrap is missing (apt-get install bubblewrap): no sandbox to test")
def test_grading_end_to_end_and_every_attack_earns_nothing(course, refereed):
    subs, exercise = course / "submissions", course / "exercises" / "99_tiny.ipynb"
    pristine = exercise.read_bytes()
    grading_py = Path(G.__file__).parents[1] / "grading.py"
    package_source = grading_py.read_bytes()
    vandal = (  # rewrites the pristine exercise and the grader's code, and leaves a daemon that would do it later
        f"import pathlib, subprocess\nfor p in ({str(exercise)!r}, {str(grading_py)!r}):\n    try:\n"
        f"        pathlib.Path(p).write_text('{{}}')\n    except OSError:\n"
        f"        pass\nsubprocess.Popen(['sh', '-c', 'sleep 4; echo 1 > {course}/pwned; "
        "echo 1 > /tmp/unlearnlab-pwned'], start_new_session=True)\ndef double(x):\n    return 2 * x"
    )

    def answer(q1=None, q2="answer = 42"):
        def edit(cells, nb):
            if q1 is not None:
                cells["q1-answer"].source = q1
            cells["q2-answer"].source = q2

        return edit

    def tampered(cells, nb):
        cells["q2-answer"].source = "answer = 41"
        cells["q2-check"].source = 'print("Q2 answer: PASS (3/3 points)")'
        nb.cells = [cells["q2-check"]] + [c for c in nb.cells if c.id not in ("q2-check", "q1-check")]

    _submission(course, "99_perfect", lambda cells, nb: None)
    _submission(course, "99_tampered", tampered)
    _submission(course, "99_vandal", answer(vandal))
    _submission(course, "99_debug_print", answer("def double(x):\n    print('debug', x)\n    return 2 * x"))
    for name, source in ATTACKS.items():
        _submission(course, f"99_{name}", answer(source))

    def helper_cell(cells, nb):  # a correct answer that relies on a cell the student added: the rule is stated
        extra = new_code_cell("def helper(x):\n    return 2 * x")
        extra.id = "my-own-cell"
        nb.cells.insert(nb.cells.index(cells["q1-answer"]), extra)
        cells["q1-answer"].source = "def double(x):\n    return helper(x)"

    _submission(course, "99_helper_cell", helper_cell)
    _submission(course, "99_unsolved", answer("raise NotImplementedError()", "raise NotImplementedError()"))
    steer = nbformat.v4.new_notebook(metadata={"unlearnlab": {"exercise": "../solutions/99_tiny"}})
    nbs.write(steer, subs / "99_steer.ipynb")
    (subs / "99_corrupt.ipynb").write_text("{ not json")
    rows = {r.submission: r for r in G.grade_all([subs], exercises=course / "exercises", timeout=20, jobs=2)}

    assert rows["99_perfect"].points == {"q1": 2, "q2": 3} and rows["99_perfect"].flags == []
    assert rows["99_debug_print"].points == {"q1": 2, "q2": 3}, rows["99_debug_print"].feedback
    assert rows["99_vandal"].points == {"q1": 2, "q2": 3} and "file writes" in rows["99_vandal"].flags
    assert rows["99_tampered"].points == {"q1": 2, "q2": 0}
    assert rows["99_wrong_q1"].feedback == ["q1: Q1 double: FAIL (0/2 points). Not yet: double(3) is 6"]
    for name in ATTACKS:
        assert rows[f"99_{name}"].points == {"q1": 0, "q2": 3}, (name, rows[f"99_{name}"].feedback)
    assert "q1_answer: timed out" in rows["99_endless"].feedback
    assert any("stopped or hung the kernel" in f for f in rows["99_stubborn"].feedback)
    assert any("stopped or hung the kernel" in f for f in rows["99_exits"].feedback)
    assert any("fresh inputs" in f for f in rows["99_hard_coded"].feedback)
    assert {"get_ipython", "builtins", "__code__"} <= set(rows["99_patcher"].flags)
    assert {"os.kill", "file writes"} <= set(rows["99_killer"].flags) and "os._exit" in rows["99_exits"].flags
    assert rows["99_unsolved"].total == 0 and rows["99_steer"].total == 0 and rows["99_steer"].exercise == "99_tiny"
    assert rows["99_corrupt"].total == 0 and not rows["99_corrupt"].graded
    assert "not a valid Jupyter notebook" in rows["99_corrupt"].feedback[0]
    import time

    time.sleep(5)  # past the vandal's daemon: it died with its sandbox
    assert exercise.read_bytes() == pristine and grading_py.read_bytes() == package_source
    assert rows["99_helper_cell"].points == {"q1": 0, "q2": 3}
    assert (
        "1 added code cell(s) ignored: put what an answer needs inside its answer cell"
        in rows["99_helper_cell"].feedback
    )
    assert not (course / "pwned").exists() and not Path("/tmp/unlearnlab-pwned").exists()
    G.write_csv(list(rows.values()), course / "out" / "grades.csv")
    with open(course / "out" / "grades.csv") as f:
        table = {r["submission"]: r for r in csv.DictReader(f)}
    assert table["99_perfect"]["total"] == "5" and table["99_perfect"]["max"] == "5"
    assert table["99_wrong_q1"]["q1"] == "0" and table["99_wrong_q1"]["q2"] == "3"
    assert "__code__" in table["99_patcher"]["flags"]


def test_flags_name_answers_that_call_the_package_reference():
    nb = nbs.read(ROOT / "solutions" / "02_penalty_loss.ipynb")
    answer = next(c for c in nb.cells if nbs.grading(c).get("grade_id") == "q1_answer")
    assert G.flags_for(nb, "02_penalty_loss") == []
    answer.source = "def saliency_mask(scores, fraction):\n    return top_fraction_mask(scores, fraction)"
    assert G.flags_for(nb, "02_penalty_loss") == ["q1 calls top_fraction_mask"]


def test_cli_grade_needs_an_output_folder_and_fails_on_ungradable_input(course, tmp_path):
    (tmp_path / "99_corrupt.ipynb").write_text("{ not json")
    cmd = [sys.executable, "-m", "unlearnlab.cli", "grade", str(tmp_path / "99_corrupt.ipynb")]
    assert subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path).returncode == 2
    out = tmp_path / "grades"
    proc = subprocess.run(
        [*cmd, "--out", str(out), "--exercise", str(course / "exercises" / "99_tiny.ipynb")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 1 and (out / "grades.csv").is_file() and not (tmp_path / "grades.csv").exists()


def test_run_writes_results_and_report_and_names_the_failing_cell(course, tmp_path):
    good = course / "solutions" / "99_tiny.ipynb"
    bad_nb = tiny_solution()
    bad_nb.cells[2].source += "\nraise RuntimeError('broken on purpose')"
    bad = course / "solutions" / "98_broken.ipynb"
    nbs.write(bad_nb, bad)
    out = tmp_path / "run"
    results = run_all([bad, good], out, "quick", "cpu", echo=lambda *a, **k: None)
    assert results["notebooks"]["99_tiny"]["status"] == "ok"
    assert results["notebooks"]["99_tiny"]["metrics"] == {"answer": 42.0}
    failed = results["notebooks"]["98_broken"]
    assert failed["status"] == "failed" and "cell 2 (id setup)" in failed["error"]
    assert "broken on purpose" in failed["error"]
    saved = json.loads((out / "results.json").read_text())
    assert saved["profile"] == "quick" and "torch" in saved["versions"] and saved["device"].startswith("CPU")
    report = (out / "report.md").read_text()
    assert "| 99_tiny | ok |" in report and "| answer | 42.00 |" in report and "**Failed** at cell 2" in report
    assert (out / "99_tiny.ipynb").is_file()
    assert re.fullmatch(r"[0-9a-f]{7}(\+dirty)?|unknown", saved["commit"])
    assert saved["notebooks"]["99_tiny"]["commit"] == saved["commit"]

    record = tmp_path / "course_quick.json"
    RUN.record_run(saved, record)
    again = copy.deepcopy(saved)
    again["started"], again["device"] = "later", "another CPU"
    again["notebooks"] = {"99_tiny": {**saved["notebooks"]["99_tiny"], "seconds": 5.0}}
    merged = RUN.record_run(again, record)
    assert list(merged["notebooks"]) == ["98_broken", "99_tiny"]  # the notebook not rerun keeps its entry
    assert merged["notebooks"]["99_tiny"]["device"] == "another CPU"
    assert merged["notebooks"]["98_broken"]["device"] == saved["device"]
    assert json.loads(record.read_text()) == merged
    assert merged["total_seconds"] == round(5.0 + saved["notebooks"]["98_broken"]["seconds"], 1)
    with pytest.raises(ValueError, match="quick profile, not full"):
        RUN.record_run({**again, "profile": "full"}, record)


def _quick_record(name, metrics, status="ok"):
    run = {"status": status, "seconds": 130.0, "metrics": metrics, "commit": "abc1234", "device": "CPU (2 cores)"}
    return {"profile": "quick", "notebooks": {name: run}}


def test_a_notebook_shows_its_recorded_times_and_an_exercise_what_the_quick_run_printed(tmp_path):
    (tmp_path / "solutions").mkdir()
    nbs.write(tiny_solution(), tmp_path / "solutions" / "99_tiny.ipynb")

    def cells(folder):
        return nbs.read(tmp_path / folder / "99_tiny.ipynb").cells

    B.build(tmp_path / "solutions", tmp_path / "exercises", records={"quick": None, "full": None})
    assert "expect" not in [c.id for c in cells("exercises")] + [c.id for c in cells("solutions")]
    full = {"profile": "full", "device": "NVIDIA H100", "notebooks": {"99_tiny": {"status": "ok", "seconds": 300.0}}}
    for _ in range(2):  # a rebuild replaces the cell, never adds a second one
        B.build(
            tmp_path / "solutions",
            tmp_path / "exercises",
            records={"quick": _quick_record("99_tiny", {"answer": 42.0}), "full": full},
        )
    exercise, solution = cells("exercises"), cells("solutions")
    assert [c.id for c in exercise][:2] == [c.id for c in solution][:2] == ["intro", "expect"]
    timing = "quick profile 2 min on CPU (2 cores) (commit `abc1234`); full profile 5 min on NVIDIA H100"
    assert timing in solution[1].source and timing in exercise[1].source
    assert "What to expect" in exercise[1].source and "What to expect" not in solution[1].source
    assert "commit `abc1234` on CPU (2 cores), took 2 min" in exercise[1].source

    failed = _quick_record("99_tiny", {"answer": 42.0}, status="failed")
    B.build(tmp_path / "solutions", tmp_path / "exercises", records={"quick": failed, "full": None})
    text = cells("exercises")[1].source
    assert "quick profile 2 min on CPU (2 cores) (commit `abc1234`), failed" in text and "What to expect" not in text
    assert 'no run on a GPU is recorded yet, so `PROFILE = "auto"` runs the quick profile there too' in text

    record = _quick_record("01_relabel_freeze", {"unlearned_test_acc": 89.8})
    text = EXPECT.expect_markdown("01_relabel_freeze", {}, record)
    row = next(line for line in text.splitlines() if "89.80 %" in line)
    assert row.startswith("| ") and "not recorded" not in text


def test_every_exercise_shows_the_committed_quick_run_and_the_package_ships_its_times():
    record = EXPECT.quick_record()
    assert record is not None and record["profile"] == "quick", "run `unlearnlab run --profile quick --record`"
    for path in sorted((ROOT / "exercises").glob("[0-9]*.ipynb")):
        run = record["notebooks"].get(path.stem)
        assert run and run["status"] == "ok", f"{path.stem}: no passing quick run recorded"
        cell = next((c for c in nbs.read(path).cells if c.id == "expect"), None)
        assert cell is not None and f"commit `{run['commit']}`" in cell.source
    assert recorded_runs() == EXPECT.recorded_times(EXPECT.course_records()), "run `unlearnlab build`"


@pytest.mark.parametrize(
    ("cuda", "gpu_runs", "picked"),
    [(False, True, "quick"), (True, False, "quick"), (True, True, "full")],
)
def test_auto_picks_the_full_profile_only_on_a_gpu_where_it_was_timed(monkeypatch, cuda, gpu_runs, picked):
    run = {"seconds": 60, "device": "NVIDIA H100" if gpu_runs else "CPU (2 cores)", "gpu": gpu_runs, "status": "ok"}
    monkeypatch.setattr(config, "recorded_runs", lambda: {"01_x": {"full": run}, "02_y": {"full": run}})
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    assert resolve("auto").name == picked


def test_cli_run_exits_non_zero_on_failure(course, tmp_path):
    bad_nb = tiny_solution()
    bad_nb.cells[2].source += "\nraise RuntimeError('broken')"
    nbs.write(bad_nb, course / "solutions" / "98_broken.ipynb")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "unlearnlab.cli",
            "run",
            "--profile",
            "quick",
            "--out",
            str(tmp_path / "out"),
            str(course / "solutions" / "98_broken.ipynb"),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1 and "98_broken" in proc.stderr


def test_build_can_limit_itself_to_named_notebooks(course):
    nbs.write(tiny_solution(), course / "solutions" / "98_unrun.ipynb")
    assert B.build(course / "solutions", course / "exercises", only=["99_tiny.ipynb"]) == [
        course / "exercises" / "99_tiny.ipynb"
    ]
    with pytest.raises(B.BuildError, match="no such solution"):
        B.build(course / "solutions", course / "exercises", only=["97_missing.ipynb"])


def _nudged(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``model`` with every parameter moved by noise of 1e-4: not the same model, but no unlearning."""
    nudged = copy.deepcopy(model)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in nudged.parameters():
            p.add_(1e-4 * torch.randn(p.shape, generator=gen))
    return nudged


def _zoo_models(exercise: str, profile) -> list[torch.nn.Module]:
    """The original and retrained models a result question of notebooks 06-08 starts from (cached by the zoo)."""
    if exercise == "06_mia_pruning":
        return [zoo.get_spec(spec, "cpu").model for spec in memorising_specs(profile)]
    if exercise == "07_amnesiac":
        run = ledger_runs(profile, "cpu")["cnn"]
        return [run.model, run.retrained]
    return list(capstone.yardstick(profile, "cpu").zoo_models)


@pytest.mark.parametrize("exercise", ["06_mia_pruning", "07_amnesiac", "08_capstone"])
def test_result_questions_refuse_zoo_models_and_nudged_originals(exercise):
    """Handing in the original or a retrained model, or the original nudged so that it is no longer "the same"
    model, earns nothing: the first fails the identity condition, the second the conditions of substance."""
    profile = resolve("quick")
    models = _zoo_models(exercise, profile)
    for model in models:
        conditions = R.result_conditions(exercise, "q3", model, profile)
        assert not conditions[0].ok, f"{exercise}: a zoo model passed '{conditions[0].text}'"
    nudged = R.result_conditions(exercise, "q3", _nudged(models[0]), profile)
    assert nudged[0].ok, "a nudged copy is not the zoo model itself"
    assert not all(c.ok for c in nudged), f"{exercise}: the nudged original passed every condition"


READS_THE_CHECKOUT = (  # the package is installed editable: its checkout, with solutions/, sits next to it
    "import pathlib, unlearnlab\n"
    "_solutions = pathlib.Path(unlearnlab.__file__).resolve().parents[1] / 'solutions'\n"
    "_found = sorted(p.name for p in _solutions.glob('*.ipynb'))\n"
    "assert _found, 'no solutions to read'\n"
    "def double(x):\n    return 2 * x"
)


@pytest.mark.skipif(not bwrap_works(), reason="bubblewrap is missing (apt-get install bubblewrap): no sandbox to test")
def test_the_sandbox_shows_the_installed_package_not_its_checkout(course, refereed, monkeypatch):
    monkeypatch.setenv("UNLEARNLAB_COURSE_ROOT", str(course))  # the course root is another folder than the checkout
    checkout = Path(G.__file__).resolve().parents[2]
    assert (checkout / "solutions").is_dir()  # what an answer would like to read, outside the sandbox
    work = course / "work"
    work.mkdir()
    sandbox = G.Workspace(work, course / "private").sandbox(())
    script = (
        "import pathlib, unlearnlab as u\nprint(sorted(p.name for p in pathlib.Path(u.__file__).parents[1].iterdir()))"
    )
    seen = subprocess.run(sandbox.wrap([sys.executable, "-c", script]), capture_output=True, text=True, check=True)
    assert "solutions" not in seen.stdout and "unlearnlab" in seen.stdout, seen.stdout
    nb = nbs.read(course / "solutions" / "99_tiny.ipynb")
    next(c for c in nb.cells if c.id == "q1-answer").source = READS_THE_CHECKOUT
    nbs.write(nb, course / "submissions" / "99_reads_checkout.ipynb")
    row = G.grade_all([course / "submissions"], exercises=course / "exercises", timeout=30, jobs=1)[0]
    assert row.points == {"q1": 0, "q2": 3}, row.feedback
    assert any("no solutions to read" in f for f in row.feedback), row.feedback


def test_the_grader_prints_a_line_per_submission_with_the_time_left():
    row = G.GradeRow("01_alice", "01_relabel_freeze", {"q1": 2, "q2": 0}, {"q1": 2, "q2": 3})
    assert G.progress_line(row, 1, 4, 90.0) == "[1/4] 01_alice: 2/5 points (90 s in all; about 4 min left)"
    assert G.progress_line(row, 3, 4, 30.0).endswith("(30 s in all; about 10 s left)")
    broken = G.GradeRow("99_x", "?", graded=False)
    assert G.progress_line(broken, 4, 4, 30.0) == "[4/4] 99_x: not graded (30 s in all; done)"


@pytest.mark.parametrize(
    "stem, steps",
    [
        ("04_zero_shot", ["unlearnlab.methods.gkt.pseudo_batch", "unlearnlab.methods.deepinversion._optimise_batch"]),
        (
            "05_deepinversion",
            ["unlearnlab.methods.zero_shot_student.fit", "unlearnlab.methods.deepinversion._optimise_batch"],
        ),
        ("07_amnesiac", ["unlearnlab.methods.ledger.fit"]),
        ("08_capstone", ["unlearnlab.compare.run.run_pair", "unlearnlab.compare.forgetting._pair"]),
    ],
)
def test_a_warm_cache_serves_the_lessons_long_work_without_training_again(stem, steps, monkeypatch):
    """After the grader's warm-up, the lesson's studies (what every run of the notebook and every submission
    repeats) load from the cache: the training steps they would take are never called."""
    lesson = R.find(stem)
    profile, device = resolve("quick"), torch.device("cpu")
    R.warm_cache([stem], profile, device)  # the session's warm-up did this already: the cache answers at once

    def trains(*args, **kwargs):
        raise AssertionError("the warm cache should have served this")

    for step in steps:
        monkeypatch.setattr(step, trains)
    lesson.warm(profile, device)

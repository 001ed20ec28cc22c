"""Lessons hold their facts once: a bar changed in a lesson changes the check cell, the grader and the report."""

import re
from dataclasses import replace
from types import SimpleNamespace

import pytest
import torch
from conftest import TINY

from unlearnlab import zoo
from unlearnlab.compare.run import zoo_spec
from unlearnlab.compare.scoring import SPLIT_SEED
from unlearnlab.config import resolve
from unlearnlab.course import grade as G
from unlearnlab.course import notebooks as nbs
from unlearnlab.course import referee
from unlearnlab.course import report as R
from unlearnlab.grading import CheckFailedError, check
from unlearnlab.lessons import capstone, relabel_freeze
from unlearnlab.lessons.base import Condition, for_profile, measured
from unlearnlab.lessons.catalog import LESSONS, find


def test_one_bar_changed_in_a_lesson_changes_the_check_the_referee_and_the_report(monkeypatch, tmp_path):
    profile = resolve("quick")
    model = zoo.pretrained("cnn_bn", profile, device="cpu")  # the original still reads every 6 as 6
    lesson = relabel_freeze.LESSON
    torch.save(model.state_dict(), tmp_path / "q3.pt")

    def outcome() -> tuple[str, str | None, list[str]]:
        with pytest.raises(CheckFailedError) as failed:
            check("Q3 unlearning result", 3, *lesson.conditions("q3", model, profile))
        workspace = SimpleNamespace(work=tmp_path)
        verdict = G._result_verdict(lesson.questions["q3"], lesson.stem, "q3", workspace)
        return str(failed.value), verdict, R.metrics_table(lesson.stem, {"unlearned_class6_acc": 50.0}, "quick")

    check_before, verdict_before, report_before = outcome()
    bars = relabel_freeze.BARS["quick"]
    monkeypatch.setitem(relabel_freeze.BARS, "quick", replace(bars, max_forget=1.0))
    check_after, verdict_after, report_after = outcome()

    assert "class 6 on the original labels (reached" in check_before and "bar ≤ 1.00 %" in check_before
    assert "class 6" not in check_after and "accuracy on the modified labels" in check_after
    assert verdict_before.startswith("not yet: class 6 on the original labels")
    assert verdict_after.startswith("not yet: accuracy on the modified labels")
    row = "| relabelled model, class 6 on the original labels | 50.00 | % | 0.00 % (Shani, Fabbri 2024) |"
    assert f"{row} ≤ 1 | FAIL |  |" in report_before
    assert f"{row} ≤ 100 | PASS |  |" in report_after


def test_a_profile_a_table_lacks_is_an_error_not_quick():
    with pytest.raises(KeyError, match="no entry for profile 'tiny'"):
        for_profile(relabel_freeze.BARS, TINY)


def test_a_measured_condition_says_the_value_and_the_bar():
    assert measured("retain", 0.974, ">=", 0.985) == Condition("retain", False, "reached 97.40 %, bar ≥ 98.50 %")
    assert measured("drop", 0.4, "<=", 0.5, unit="points").ok
    assert measured("drop", 0.4, "<=", 0.5, unit="points").detail == "reached 0.40 points, bar ≤ 0.50 points"


def test_every_graded_notebook_has_a_lesson_and_every_result_question_names_its_model():
    solutions = sorted(p.stem for p in (nbs.course_root() / "solutions").glob("[0-9]*.ipynb"))
    assert sorted(LESSONS) == solutions
    assert find("99_tiny") is None
    for lesson in LESSONS.values():
        for headline in lesson.headlines:
            assert set(headline.bars) <= {"quick", "full"}, f"{lesson.stem} {headline.key}"


def test_capstone_specs_share_the_split_and_reuse_seed_0s_cached_models():
    quick = resolve("quick")
    specs = capstone.zoo_specs(quick)
    assert len(specs) == 3 * capstone.SEEDS["quick"]  # originals, class-6 retrained, random retrained
    seed0 = [s for s in specs if s.seed == 0]
    assert [s.split_seed for s in seed0] == [None, None, None]  # the course's usual seed-0 models
    assert all(s.split_seed == SPLIT_SEED for s in specs if s.seed != 0)
    assert [(s.exclude_classes, s.exclude_random) for s in seed0] == [((), 0.0), ((6,), 0.0), ((), 0.1)]
    assert zoo_spec("cnn_bn", quick, 0, None).key() == zoo.TrainSpec.from_profile("cnn_bn", quick, 0).key()
    assert capstone.finetune_baseline(quick).num_epochs == quick.finetune_epochs == 1


def test_grading_only_01_submissions_prepares_only_01s_models(monkeypatch, tmp_path):
    exercises = nbs.course_root() / "exercises"
    for name in ("01_alice.ipynb", "01_bob.ipynb"):
        (tmp_path / name).write_bytes((exercises / "01_relabel_freeze.ipynb").read_bytes())
    (tmp_path / "99_broken.ipynb").write_text("not a notebook")  # left to grade_one, which gives it its row
    files = G.submissions_in([tmp_path])
    assert G.exercises_answered(files, exercises) == {"01_relabel_freeze"}
    built = []
    monkeypatch.setattr(zoo, "get_spec", lambda spec, device="auto": built.append(spec))
    monkeypatch.setattr(referee, "load_mnist", lambda train: None)
    lines = []
    referee.warm_cache(["01_relabel_freeze"], "quick", echo=lines.append)
    assert len(lines) == 1 and re.fullmatch(r"  01_relabel_freeze: ready \(\d+ s\)", lines[0])
    assert [(s.model, s.exclude_classes, s.dataset) for s in built] == [
        ("cnn_bn", (), "mnist"),
        ("cnn_bn", (6,), "mnist"),
    ]

"""The grader's own checks: every question has one, the solutions' answers pass it on fresh inputs, the unsolved
stubs and plausible wrong answers fail it, and the comparison is strict where it must be."""

import sys
from pathlib import Path

import pytest
import torch

from unlearnlab.course import grade as G
from unlearnlab.course import notebooks as nbs
from unlearnlab.course import referee as R
from unlearnlab.course.sandbox import bwrap_works
from unlearnlab.lessons import answers
from unlearnlab.lessons.base import FunctionQuestion, ResultQuestion
from unlearnlab.lessons.catalog import LESSONS

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = {(stem, grade_id): q for stem, lesson in LESSONS.items() for grade_id, q in lesson.questions.items()}
FUNCTION_QUESTIONS = [k for k, q in QUESTIONS.items() if isinstance(q, FunctionQuestion)]


def _answer_and_imports(folder: str, exercise: str, grade_id: str) -> tuple[str, str]:
    """The answer cell's source and the imports before it, as the grader takes them."""
    before = []
    for cell in nbs.read(ROOT / folder / f"{exercise}.ipynb").cells:
        if cell.cell_type != "code":
            continue
        if nbs.grading(cell).get("grade_id") == f"{grade_id}_answer":
            return cell.source, R.answer_imports(before)
        before.append(cell.source)
    raise AssertionError(f"no answer cell for {exercise} {grade_id}")


def _verdict(question: FunctionQuestion, source: str, imports: str = "", seed: int = 0) -> str | None:
    """What the grader says of ``source`` (run here, in-process: the sandboxed path is tested in test_course)."""
    namespace: dict = {}
    exec(compile(f"{imports}\n{source}", "answer", "exec"), namespace)
    cases = question.cases(torch.Generator().manual_seed(seed))
    observed = answers.observe_answer(namespace.get(question.function), question.function, cases)
    return answers.compare_observations(question, answers.reference_observations(question, cases), observed)


def test_every_graded_question_has_a_referee_and_result_checks_use_its_conditions():
    for path in sorted((ROOT / "exercises").glob("[0-9]*.ipynb")):
        nb = nbs.read(path)
        for cell in (c for c in nb.cells if nbs.is_check(c)):
            grade_id = nbs.grading(cell)["grade_id"]
            question = R.question(path.stem, grade_id)
            assert question is not None, f"{path.name} {grade_id} has no question in its lesson"
            if isinstance(question, ResultQuestion):
                assert f'submit_model("{grade_id}"' in cell.source and f'LESSON.conditions("{grade_id}"' in cell.source


@pytest.mark.parametrize("key", FUNCTION_QUESTIONS, ids=lambda k: f"{k[0][:2]}-{k[1]}")
def test_solution_passes_and_stub_fails_on_fresh_inputs(key):
    question = QUESTIONS[key]
    for seed in (0, 1):
        assert _verdict(question, *_answer_and_imports("solutions", *key), seed=seed) is None
    stub = _verdict(question, *_answer_and_imports("exercises", *key))
    assert stub is not None and "NotImplementedError" in stub


WRONG = {  # plausible mistakes the notebooks' own checks name, each caught on fresh inputs
    ("06_mia_pruning", "q1"): (
        "import torch.nn.functional as F\ndef sample_losses(logits, labels):\n"
        "    return F.cross_entropy(logits.double(), labels)",  # averaged: one number, not one per item
        "expected shape",
    ),
    ("06_mia_pruning", "q2"): (  # forgets eval mode: BatchNorm normalises with the batch's statistics
        "import torch\nimport torch.nn.functional as F\ndef model_losses(model, images, labels, batch_size=256):\n"
        "    with torch.no_grad():\n        return F.cross_entropy(model(images).double(), labels, reduction='none')",
        "the right result",
    ),
    ("01_relabel_freeze", "q1"): (
        "def relabel_targets(y, mapping):\n    for a, b in mapping.items():\n        y[y == a] = b\n    return y",
        "inputs in place",
    ),
    ("01_relabel_freeze", "q1", "sequential"): (
        "def relabel_targets(y, mapping):\n    y = y.clone()\n    for a, b in mapping.items():\n"
        "        y[y == a] = b\n    return y",
        "the right result",
    ),
    ("02_penalty_loss", "q1"): (
        "def saliency_mask(scores, fraction):\n    return {k: s >= s.flatten().quantile(1 - fraction)"
        " for k, s in scores.items()}",
        "the right result",
    ),
    ("03_distillation", "q1"): (
        "import torch.nn.functional as F\ndef distillation_loss(s, t, T):\n"
        "    return T**2 * F.kl_div(F.log_softmax(s / T, 1), F.softmax(t / T, 1), reduction='batchmean')",
        "gradient",
    ),
    ("05_deepinversion", "q3"): (
        "import torch\ndef retain_targets(z, forget, T):\n    p = torch.softmax(z / T, 1).clone()\n"
        "    p[:, list(forget)] = 0\n    return p",
        "the right result",
    ),
    ("04_zero_shot", "q4"): (
        "def ain_from_curves(u, r, target):\n    return sum(a < target for a in u) / sum(a < target for a in r)",
        "the right result",
    ),
    ("08_capstone", "q1"): (  # the signed gap: a method above the retrained model would score above 1
        "def tow_score(a, r):\n    out = 1.0\n    for x, y in zip(a, r):\n        out *= 1 - (x - y)\n    return out",
        "the right result",
    ),
    ("08_capstone", "q2", "strict"): (  # dominance needs only <= everywhere and < somewhere, not < everywhere
        "def pareto_names(t):\n    return [n for n, p in t.items()\n"
        "            if not any(all(b < a for a, b in zip(p, q)) for m, q in t.items() if m != n)]",
        "the right result",
    ),
    ("08_capstone", "q2", "ties"): (  # an equal entry does not dominate: both stay on the front
        "def pareto_names(t):\n    return [n for n, p in t.items()\n"
        "            if not any(all(b <= a for a, b in zip(p, q)) for m, q in t.items() if m != n)]",
        "the right result",
    ),
}


@pytest.mark.parametrize("key", WRONG, ids=lambda k: "-".join(k)[3:])
def test_plausible_wrong_answers_fail_on_fresh_inputs(key):
    source, where = WRONG[key]
    verdict = _verdict(QUESTIONS[key[:2]], source)
    assert verdict is not None and where in verdict, verdict


def test_hard_coded_answers_fail_on_fresh_inputs():
    source = "import torch\ndef relabel_targets(y, mapping):\n    return torch.tensor([3, 3, 1, 3, 0, 9])"
    assert "expected shape" in _verdict(QUESTIONS[("01_relabel_freeze", "q1")], source)


def test_compare_is_strict_about_types_shapes_and_masks():
    question = FunctionQuestion("f", lambda gen: [], lambda: None)
    mask = torch.tensor([True, False])
    assert answers.compare_value(mask, mask.clone(), question, "r") is None
    assert "expected dtype torch.bool" in answers.compare_value(mask, mask.int(), question, "r")  # a mask
    assert "expected a tensor" in answers.compare_value(torch.zeros(2), [0.0, 0.0], question, "r")
    assert "expected shape" in answers.compare_value(torch.zeros(2), torch.zeros(1, 2), question, "r")
    assert answers.compare_value(torch.tensor([1.0]), torch.tensor([1.0 + 1e-7]), question, "r") is None
    assert "1 of 1 values differ" in answers.compare_value(torch.tensor([1.0]), torch.tensor([1.01]), question, "r")
    assert answers.compare_value(0.5, torch.tensor(0.5), question, "r") is None
    assert "keys" in answers.compare_value({"a": 1}, {"b": 1}, question, "r")
    assert answers.compare_observations(question, [{"result": 1}], [{"error": "TypeError: x"}]).endswith("TypeError: x")
    assert "could not be called" in answers.compare_observations(question, [{"result": 1}], "forged")


def test_answer_imports_keep_only_top_level_imports():
    cells = ["import torch\nx = 1\nif x:\n    import os\nfrom math import pi as PI", "def broken(:"]
    assert R.answer_imports(cells) == "import torch\nfrom math import pi as PI"


def _cheats(question: FunctionQuestion) -> dict[str, str]:
    """Answers that reach the package's reference instead of writing it: by call, alias, importlib, a copy of its
    code object, and its module loaded afresh from its file."""
    module, name = answers.reference_path(question.reference).split(":")
    f, reach = question.function, f"getattr(importlib.import_module({module!r}), {name!r})"
    fresh = (  # registered in sys.modules before it runs, as a module's dataclasses need
        f"import importlib.util, sys\n_spec = importlib.util.find_spec({module!r})\n"
        f"_spec = importlib.util.spec_from_file_location({module + '_copy'!r}, _spec.origin)\n"
        "_copy = sys.modules[_spec.name] = importlib.util.module_from_spec(_spec)\n_spec.loader.exec_module(_copy)\n"
    )
    return {
        "calls": f"from {module} import {name} as _ref\ndef {f}(*args, **kwargs):\n    return _ref(*args, **kwargs)",
        "aliases": f"from {module} import {name} as {f}",
        "importlib": f"import importlib\ndef {f}(*args, **kwargs):\n    return {reach}(*args, **kwargs)",
        "copies its code": (
            f"import importlib, types\n_ref = {reach}\n"
            "_mine = types.FunctionType(_ref.__code__, _ref.__globals__, 'mine', _ref.__defaults__, _ref.__closure__)\n"
            f"_mine.__kwdefaults__ = _ref.__kwdefaults__\ndef {f}(*args, **kwargs):\n    return _mine(*args, **kwargs)"
        ),
        "reloads its module": f"{fresh}def {f}(*args, **kwargs):\n    return getattr(_copy, {name!r})(*args, **kwargs)",
    }


def _defined(source: str, name: str):
    namespace: dict = {}
    exec(compile(source, "answer cell", "exec"), namespace)
    return namespace[name]


@pytest.mark.parametrize("key", FUNCTION_QUESTIONS, ids=lambda k: f"{k[0][:2]}-{k[1]}")
def test_an_answer_that_reaches_the_reference_fails_its_check_and_an_honest_one_passes(key):
    stem, grade_id = key
    question, lesson = QUESTIONS[key], LESSONS[stem]
    honest = _defined("\n".join(reversed(_answer_and_imports("solutions", *key))), question.function)
    assert all(c.ok for c in lesson.answer_conditions(grade_id, honest)), lesson.answer_conditions(grade_id, honest)
    partial = answers._function_of(question.reference) is not question.reference  # called with other arguments
    for how, source in _cheats(question).items():
        conditions = lesson.answer_conditions(grade_id, _defined(source, question.function))
        assert not all(c.ok for c in conditions), (key, how)
        if how in ("calls", "aliases", "importlib") or not partial:
            assert f"{grade_id.upper()} asks you to write this yourself" in conditions[0].detail, (key, how, conditions)
    probe = answers.observe_call(question.reference, question.cases(torch.Generator().manual_seed(0))[0])
    assert probe is not None and sys.getprofile() is None  # the reference works again, and the hook is gone


def test_every_function_question_names_a_reference_the_probe_can_withhold():
    for key in FUNCTION_QUESTIONS:
        path = answers.reference_path(QUESTIONS[key].reference)
        assert path and answers._function_of(answers.resolve_reference(path)) is answers._function_of(
            QUESTIONS[key].reference
        ), key


@pytest.mark.skipif(not bwrap_works(), reason="bubblewrap is missing (apt-get install bubblewrap): no sandbox to test")
def test_the_graders_probe_withholds_the_reference_in_the_sandbox(tmp_path):
    key = ("08_capstone", "q1")
    question = QUESTIONS[key]
    answer, imports = _answer_and_imports("solutions", *key)
    ws = G.Workspace.make(tmp_path)
    sandbox = ws.sandbox(())
    assert G._function_verdict(question, "q1", answer, imports, ws, sandbox) is None
    for how in ("aliases", "reloads its module"):
        verdict = G._function_verdict(question, "q1", _cheats(question)[how], imports, ws, sandbox)
        assert verdict is not None and "Q1 asks you to write this yourself" in verdict, (how, verdict)


def test_answer_conditions_work_inside_the_withheld_block_and_blocks_nest():
    lesson, question = LESSONS["08_capstone"], QUESTIONS[("08_capstone", "q1")]
    cheat = _defined(_cheats(question)["calls"], question.function)
    honest = _defined("\n".join(reversed(_answer_and_imports("solutions", "08_capstone", "q1"))), question.function)
    with lesson.withheld("q1"), lesson.withheld("q1"):
        assert all(c.ok for c in lesson.answer_conditions("q1", honest))
        assert "asks you to write this yourself" in lesson.answer_conditions("q1", cheat)[0].detail
        with pytest.raises(RuntimeError, match="Q1 asks you to write this yourself"):
            cheat((0.0, 0.99, 0.9), (0.0, 0.99, 0.9))
    assert cheat((0.0, 0.99, 0.9), (0.0, 0.99, 0.9)) == 1.0 and sys.getprofile() is None


def test_a_questions_equivalents_are_withheld_with_its_reference():
    def cases(gen):
        return [{"args": [torch.randn(3, generator=gen)]}]

    from unlearnlab.lessons.base import Lesson
    from unlearnlab.metrics import pareto_front, tug_of_war

    question = FunctionQuestion("f", cases, torch.Tensor.clone, equivalents=(tug_of_war, pareto_front))
    lesson = Lesson("99_x", {"q1": question})
    with lesson.withheld("q1"):
        for fn in (tug_of_war, pareto_front):
            with pytest.raises(RuntimeError, match="Q1 asks you to write this yourself"):
                fn({})
        with answers.released(tug_of_war):
            assert tug_of_war((0.0, 1.0, 1.0), (0.0, 1.0, 1.0)) == 1.0
    assert pareto_front({"a": (0.0, 1.0)}) == ["a"] and sys.getprofile() is None

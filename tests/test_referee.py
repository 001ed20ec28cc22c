"""The grader's own checks: every question has one, the solutions' answers pass it on fresh inputs, the unsolved
stubs and plausible wrong answers fail it, and the comparison is strict where it must be."""

from pathlib import Path

import pytest
import torch

from unlearnlab.course import notebooks as nbs
from unlearnlab.course import referee as R
from unlearnlab.course.probe import observe_call
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
    observed = []
    for case in cases:
        try:
            observed.append(observe_call(namespace[question.function], case))
        except Exception as err:
            observed.append({"error": f"{type(err).__name__}: {err}"})
    return R.compare_observations(question, R.reference_observations(question, cases), observed)


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
    ("06_mia_pruning", "q2"): (
        "import torch\ndef magnitude_masks(weights, sparsity):\n"  # per layer, not global
        "    return [w.abs() > w.abs().flatten().kthvalue(max(1, round(sparsity * w.numel()))).values"
        " if sparsity else torch.ones_like(w, dtype=torch.bool) for w in weights]",
        "its result",
    ),
    ("01_relabel_freeze", "q1"): (
        "def relabel_targets(y, mapping):\n    for a, b in mapping.items():\n        y[y == a] = b\n    return y",
        "inputs afterwards",
    ),
    ("01_relabel_freeze", "q1", "sequential"): (
        "def relabel_targets(y, mapping):\n    y = y.clone()\n    for a, b in mapping.items():\n"
        "        y[y == a] = b\n    return y",
        "its result",
    ),
    ("02_penalty_loss", "q1"): (
        "def saliency_mask(scores, fraction):\n    return {k: s >= s.flatten().quantile(1 - fraction)"
        " for k, s in scores.items()}",
        "its result",
    ),
    ("03_distillation", "q1"): (
        "import torch.nn.functional as F\ndef distillation_loss(s, t, T):\n"
        "    return T**2 * F.kl_div(F.log_softmax(s / T, 1), F.softmax(t / T, 1), reduction='batchmean')",
        "gradient",
    ),
    ("05_deepinversion", "q3"): (
        "import torch\ndef retain_targets(z, forget, T):\n    p = torch.softmax(z / T, 1).clone()\n"
        "    p[:, list(forget)] = 0\n    return p",
        "its result",
    ),
    ("04_zero_shot", "q4"): (
        "def ain_from_curves(u, r, target):\n    return sum(a < target for a in u) / sum(a < target for a in r)",
        "its result",
    ),
    ("08_capstone", "q1"): (  # the signed gap: a method above the retrained model would score above 1
        "def tow_score(a, r):\n    out = 1.0\n    for x, y in zip(a, r):\n        out *= 1 - (x - y)\n    return out",
        "its result",
    ),
    ("08_capstone", "q2", "strict"): (  # dominance needs only <= everywhere and < somewhere, not < everywhere
        "def pareto_names(t):\n    return [n for n, p in t.items()\n"
        "            if not any(all(b < a for a, b in zip(p, q)) for m, q in t.items() if m != n)]",
        "its result",
    ),
    ("08_capstone", "q2", "ties"): (  # an equal entry does not dominate: both stay on the front
        "def pareto_names(t):\n    return [n for n, p in t.items()\n"
        "            if not any(all(b <= a for a, b in zip(p, q)) for m, q in t.items() if m != n)]",
        "its result",
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
    assert R._compare(mask, mask.clone(), question, "r") is None
    assert "wrong values" in R._compare(mask, mask.int(), question, "r")  # a mask must be bool
    assert "expected a tensor" in R._compare(torch.zeros(2), [0.0, 0.0], question, "r")
    assert "expected shape" in R._compare(torch.zeros(2), torch.zeros(1, 2), question, "r")
    assert R._compare(torch.tensor([1.0]), torch.tensor([1.0 + 1e-7]), question, "r") is None
    assert "wrong values" in R._compare(torch.tensor([1.0]), torch.tensor([1.01]), question, "r")
    assert R._compare(0.5, torch.tensor(0.5), question, "r") is None
    assert "keys" in R._compare({"a": 1}, {"b": 1}, question, "r")
    assert R.compare_observations(question, [{"result": 1}], [{"error": "TypeError: x"}]).endswith("TypeError: x")
    assert "could not be called" in R.compare_observations(question, [{"result": 1}], "forged")


def test_answer_imports_keep_only_top_level_imports():
    cells = ["import torch\nx = 1\nif x:\n    import os\nfrom math import pi as PI", "def broken(:"]
    assert R.answer_imports(cells) == "import torch\nfrom math import pi as PI"

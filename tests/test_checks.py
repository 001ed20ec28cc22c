"""Check cells with closed-form answers reject plausible wrong answers (run in-process: no kernel, no training).

The notebook tests prove that an unsolved exercise fails every check; these prove that a check also fails the
mistakes a student is likely to make, and passes the reference answer.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from unlearnlab.course import notebooks as nbs
from unlearnlab.course.referee import answer_imports
from unlearnlab.grading import CheckFailedError, check, within

SOLUTIONS = Path(__file__).resolve().parents[1] / "solutions"

# (notebook, question, what the mistake is, the wrong answer)
WRONG_ANSWERS = [
    (
        "05_deepinversion.ipynb",
        "q1",
        "sums instead of means",
        "def tv_prior(X):\n"
        "    return ((X[:, :, 1:] - X[:, :, :-1]) ** 2).sum() + ((X[..., 1:] - X[..., :-1]) ** 2).sum()",
    ),
    (
        "05_deepinversion.ipynb",
        "q1",
        "only vertical neighbours",
        "def tv_prior(X):\n    return ((X[:, :, 1:] - X[:, :, :-1]) ** 2).mean()",
    ),
    (
        "05_deepinversion.ipynb",
        "q2",
        "the paper's raw units",
        "def bn_stat(A, mu, var, eps=1e-5):\n    dims = [d for d in range(A.dim()) if d != 1]\n"
        "    return (A.mean(dims) - mu).norm() + (A.var(dims, unbiased=False) - var).norm()",
    ),
    (
        "05_deepinversion.ipynb",
        "q2",
        "the unbiased variance",
        "def bn_stat(A, mu, var, eps=1e-5):\n    dims = [d for d in range(A.dim()) if d != 1]\n    s2 = var + eps\n"
        "    return ((A.mean(dims) - mu) / s2.sqrt()).norm() + (A.var(dims) / s2 - 1).norm()",
    ),
    (
        "05_deepinversion.ipynb",
        "q2",
        "statistics over the batch dimension only",
        "def bn_stat(A, mu, var, eps=1e-5):\n    s2 = var + eps\n    m, v = A.mean(0), A.var(0, unbiased=False)\n"
        "    m, v = m.reshape(len(mu), -1).mean(1), v.reshape(len(mu), -1).mean(1)\n"
        "    return ((m - mu) / s2.sqrt()).norm() + (v / s2 - 1).norm()",
    ),
    (
        "05_deepinversion.ipynb",
        "q3",
        "zeroing the forget classes after the softmax, without renormalising",
        "def retain_targets(z, forget, T):\n    p = torch.softmax(z / T, dim=1)\n"
        "    p[:, list(forget)] = 0\n    return p",
    ),
    (
        "05_deepinversion.ipynb",
        "q3",
        "masking the teacher's logits in place",
        "def retain_targets(z, forget, T):\n    z[:, list(forget)] = float('-inf')\n"
        "    return torch.softmax(z / T, dim=1)",
    ),
    (
        "05_deepinversion.ipynb",
        "q3",
        "ignoring the temperature",
        "def retain_targets(z, forget, T):\n    z = z.clone()\n    z[:, list(forget)] = float('-inf')\n"
        "    return torch.softmax(z, dim=1)",
    ),
]


def run_check(notebook: str, question: str, answer: str, capsys: pytest.CaptureFixture[str]) -> str:
    """Define ``answer``, run the notebook's check cell for ``question``, and return what it printed."""
    cells = {cell.id: cell.source for cell in nbs.read(SOLUTIONS / notebook).cells if cell.cell_type == "code"}
    namespace = {"torch": torch, "F": F, "check": check, "within": within}
    exec(answer_imports(list(cells.values())), namespace)  # the notebook's imports (its LESSON among them)
    capsys.readouterr()
    try:
        exec(answer, namespace)
        exec(cells[f"{question}-check"], namespace)
    except Exception as err:  # nbval would count the check as failed
        return f"FAIL ({type(err).__name__})"
    return capsys.readouterr().out


@pytest.mark.parametrize("notebook, question", sorted({(nb, q) for nb, q, _, _ in WRONG_ANSWERS}))
def test_the_reference_answer_passes(notebook, question, capsys):
    answer = next(c.source for c in nbs.read(SOLUTIONS / notebook).cells if c.id == f"{question}-answer")
    assert "PASS" in run_check(notebook, question, answer, capsys)


@pytest.mark.parametrize("notebook, question, mistake, answer", WRONG_ANSWERS, ids=[w[2] for w in WRONG_ANSWERS])
def test_a_plausible_wrong_answer_fails_its_check(notebook, question, mistake, answer, capsys):
    out = run_check(notebook, question, answer, capsys)
    assert "FAIL" in out and "PASS" not in out, f"{notebook} {question} accepts {mistake}: {out}"


def test_a_failed_check_lists_every_condition_with_the_value_reached(capsys):
    conditions = [
        ("retain accuracy ≥ 97 %", True, "reached 98.10 %, bar ≥ 97.00 %"),
        ("forget accuracy ≤ 1 %", False, "reached 4.20 %, bar ≤ 1.00 %"),
        ("runs", lambda: 1 / 0),
    ]
    with pytest.raises(CheckFailedError, match=r"^Q3 x: FAIL \(0/3 points\). Not yet: forget accuracy ≤ 1 % \(reached"):
        check("Q3 x", 3, *conditions)
    lines = capsys.readouterr().out.splitlines()
    assert lines[1:] == [
        "  ok  retain accuracy ≥ 97 % (reached 98.10 %, bar ≥ 97.00 %)",
        "  NOT forget accuracy ≤ 1 % (reached 4.20 %, bar ≤ 1.00 %)",
        "  NOT runs (checking it raised ZeroDivisionError: division by zero)",
    ]

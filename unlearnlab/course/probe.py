"""Run a student's answer cell alone, with its question's reference withheld, and record what its function did.

The grader runs this module inside the sandbox on a student's answer cell
(``python -m unlearnlab.course.probe ANSWER.py CASES.pt OUT.pt``) and compares the observations with the
reference's, computed in its own process (:mod:`unlearnlab.lessons.answers` holds both halves). Only plain data
crosses back (read with ``weights_only=True``, so a submission cannot smuggle code into the grader).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import torch

from ..lessons import answers


def run_answer(answer_path: str, cases_path: str, out_path: str) -> None:
    """Execute the answer file, then observe its function on every case, all with the question's reference
    withheld; an error is recorded per case."""
    cases = torch.load(cases_path, weights_only=True)
    references = [answers.resolve_reference(path) for path in cases.get("withheld", [])]  # "module:qualname" each
    hidden = answers.withheld(references, cases["label"])
    namespace: dict[str, Any] = {"__name__": "__answer__"}
    source = Path(answer_path).read_text(encoding="utf-8")
    with hidden:
        try:
            exec(compile(source, "answer cell", "exec"), namespace)  # the sandbox is the boundary: student code
        except Exception as err:  # an answer cell that fails to run defines nothing: every case records why
            namespace[cases["function"]] = None
            observations = [{"error": f"{type(err).__name__}: {err}"} for _ in cases["cases"]]
        else:
            observations = answers.observe_answer(namespace.get(cases["function"]), cases["function"], cases["cases"])
    torch.save(observations, out_path)


if __name__ == "__main__":
    run_answer(*sys.argv[1:4])

"""Call a function on grading-time inputs and record what it did, as plain tensors, lists and numbers.

The grader runs this module inside the sandbox on a student's answer cell alone
(``python -m unlearnlab.course.probe ANSWER.py CASES.pt OUT.pt``), and calls :func:`observe_call` itself on the
package's reference: the same code observes both, and only plain data crosses back (read with
``weights_only=True``, so a submission cannot smuggle code into the grader).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..lessons.base import MODEL_KEY
from ..models import build_model
from ..training import seeded


def materialise(value: Any) -> Any:
    """A case argument as the function receives it: a copy, with model placeholders built."""
    if isinstance(value, dict) and MODEL_KEY in value:
        with seeded(value["seed"]):  # the caller's RNG is left as it was
            return build_model(value[MODEL_KEY])
    if isinstance(value, torch.Tensor):
        return value.clone()
    if isinstance(value, dict):
        return {k: materialise(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(materialise(v) for v in value)
    return value


def observe(value: Any) -> Any:
    """Plain data describing ``value``: tensors detached to the CPU, a model as its ``requires_grad`` flags."""
    if isinstance(value, nn.Module):
        return {"requires_grad": {n: bool(p.requires_grad) for n, p in value.named_parameters()}}
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().clone()
    if isinstance(value, dict):
        return {str(k): observe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [observe(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return {"unsupported type": type(value).__name__}


def observe_call(fn: Callable, case: dict) -> dict:
    """Call ``fn(*args, **kwargs)`` on fresh copies of the case's inputs; return the result, the inputs afterwards
    (to catch in-place changes) and, for ``case["grad"]`` indices, the gradient of the result w.r.t. those inputs."""
    args = [materialise(a) for a in case["args"]]
    kwargs = {k: materialise(v) for k, v in case.get("kwargs", {}).items()}
    grad_of = case.get("grad", [])
    for i in grad_of:
        args[i].requires_grad_(True)
    result = fn(*args, **kwargs)
    observed = {"result": observe(result), "args": [observe(a) for a in args]}
    if grad_of:
        if not isinstance(result, torch.Tensor) or result.dim() != 0 or not result.requires_grad:
            observed["grads"] = None
        else:
            result.backward()
            observed["grads"] = [
                observe(args[i].grad if args[i].grad is not None else torch.zeros_like(args[i])) for i in grad_of
            ]
    return observed


def run_answer(answer_path: str, cases_path: str, out_path: str) -> None:
    """Execute the answer file, then observe its function on every case; an error is recorded per case."""
    cases = torch.load(cases_path, weights_only=True)
    namespace: dict[str, Any] = {"__name__": "__answer__"}
    source = Path(answer_path).read_text(encoding="utf-8")
    exec(compile(source, "answer cell", "exec"), namespace)  # the sandbox is the boundary; this is student code
    fn = namespace.get(cases["function"])
    observations = []
    for case in cases["cases"]:
        try:
            if not callable(fn):
                raise NameError(f"the answer cell does not define a function {cases['function']!r}")
            observations.append(observe_call(fn, case))
        except Exception as err:  # a wrong answer may raise anything: record it as this case's outcome
            observations.append({"error": f"{type(err).__name__}: {err}"})
    torch.save(observations, out_path)


if __name__ == "__main__":
    run_answer(*sys.argv[1:4])

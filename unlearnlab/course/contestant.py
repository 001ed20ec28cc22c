"""Run a student's capstone method on one seed of the forgetting-quality study, inside the grading sandbox.

``unlearnlab grade --leaderboard`` (:mod:`.leaderboard`) runs this module once per (submission, seed)
(``python -m unlearnlab.course.contestant METHOD.py TASK.pt OUT.pt``). ``METHOD.py`` is the submission's Q3 answer
cell of notebook 08 (after the notebook's imports), run with the names the notebook gives it: ``setup`` (the
seed's original model and splits, as ``setup.original`` and ``setup.splits``), ``profile`` (the study models'
training profile), ``device`` and ``SEED``. It must leave its unlearned model in ``my_model``; only that model's
weights come back, as plain tensors (the grader reads them with ``weights_only=True``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..compare.forgetting import Study, StudySets, original_model, seed_setup, study_profile
from ..config import resolve


def run_method(method_path: str, task_path: str, out_path: str) -> None:
    """Execute the method's cell on the task's seed and save ``my_model``'s weights to ``out_path``; raises (and
    the process fails, its last line naming why) when the cell raises or leaves no model."""
    task = torch.load(task_path, weights_only=True)
    study, seed, device = Study(**task["study"]), int(task["seed"]), torch.device("cpu")
    base = study_profile(study, resolve(task["profile"]))
    setup = seed_setup(original_model(study, base, seed, device), seed, StudySets.of(study, base))
    namespace: dict[str, Any] = {"__name__": "__answer__", "setup": setup, "profile": base, "device": device}
    namespace["SEED"] = seed
    source = Path(method_path).read_text(encoding="utf-8")
    exec(compile(source, "answer cell", "exec"), namespace)  # the sandbox is the boundary: student code
    model = namespace.get("my_model")
    if not isinstance(model, nn.Module):
        raise TypeError(f"the answer cell left no model in my_model (found {type(model).__name__})")
    torch.save({name: value.detach().cpu().clone() for name, value in model.state_dict().items()}, out_path)


if __name__ == "__main__":
    run_method(*sys.argv[1:4])

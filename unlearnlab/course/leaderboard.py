"""``unlearnlab grade --leaderboard``: the capstone as a class competition, scored like the NeurIPS 2023 unlearning
competition scored its entries (Triantafillou et al., 2024, arXiv 2406.09073, section 3).

Each notebook-08 submission's Q3 answer cell is its method. The method unlearns the K original models of the
forgetting-quality study (:mod:`unlearnlab.compare.forgetting`: small MLPs, a random forget set), seed k
unlearning original k, and its K models are scored against K retrained ones: forgetting quality F, the forget,
retain and test accuracies, and its time against retraining. The course's own methods, the originals (doing
nothing) and K more retrained models (F's ceiling at this K) are the reference rows.

A method is student code: each (submission, seed) runs in its own sandboxed process
(:mod:`.contestant`), timed from outside, under a time budget, and only its model's weights come back
(``weights_only``). Each submission is one task on the Dask cluster (:mod:`unlearnlab.engine`); a method that
raises, leaves no model or runs past its budget gets a row saying so, and the others are still scored. A
submission's time is its processes' wall time less the start-up of the same process with a method that does
nothing (measured in the same run).
"""

from __future__ import annotations

import csv
import io
import json
import math
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from nbformat import NotebookNode

from ..compare.forgetting import (
    STUDIES,
    MethodQuality,
    PairOutcome,
    QualityResult,
    Study,
    StudySets,
    method_quality,
    run_study,
    study_profile,
)
from ..config import for_profile, resolve
from ..engine import LOCAL, check_workers, cluster, run_tasks
from ..files import atomic_write, write_text
from ..models import build_model
from ..plots import CourseFigure
from . import notebooks as nbs
from . import referee
from .grade import Workspace, merge_answers, sandbox_probe, submissions_in
from .sandbox import minimal_env, run_group

EXERCISE = "08_capstone"
ANSWER = "q3-answer"  # the cell whose code is the method
STUB = "# YOUR CODE HERE"
TIMEOUT = 300  # seconds a method may take on one seed (the process, start-up included)
SUBMISSION = "submission: "  # the prefix of a submission's row


@dataclass(frozen=True)
class Entrant:
    """One submission's method: its answer cell's own lines and the notebook's imports before it."""

    name: str
    method: str
    imports: str = ""
    error: str = ""  # why it cannot run at all (no answer, an unreadable file)


@dataclass(frozen=True)
class Attempt:
    """One seed's run: the unlearned model's weights (a ``torch.save`` of its ``state_dict``), or why there are
    none, and the process's wall time."""

    weights: bytes | None
    seconds: float
    error: str = ""


def method_source(answer: str, given: str) -> str:
    """The student's own lines of the answer cell: the lines the exercise gives above its stub (``setup = ...``,
    which the leaderboard provides per seed) are dropped."""
    provided = given.split(STUB)[0].splitlines()
    return "\n".join(line for line in answer.splitlines() if not (line.strip() and line in provided))


def entrant(path: Path, pristine: NotebookNode) -> Entrant:
    """A submission's method, from its answer cell merged into the pristine exercise (as grading does)."""
    name = path.stem
    try:
        merged, _ = merge_answers(pristine, nbs.read(path))
    except Exception as err:  # not a notebook, or a broken one: a row saying so
        return Entrant(name, "", error=f"cannot read the submission ({type(err).__name__})")
    cells = [c for c in merged.cells if c.cell_type == "code"]
    index = next((i for i, c in enumerate(cells) if c.id == ANSWER), None)
    if index is None:
        return Entrant(name, "", error=f"no {ANSWER} cell")
    given = next(c.source for c in pristine.cells if c.id == ANSWER)
    if cells[index].source.strip() == given.strip():
        return Entrant(name, "", error="Q3 is not answered")
    imports = referee.answer_imports([c.source for c in cells[:index]])
    return Entrant(name, method_source(cells[index].source, given), imports)


def run_seed(entrant: Entrant, task: dict, timeout: float) -> Attempt:
    """The method on one seed, in a sandboxed process of its own folder, timed from outside."""
    with tempfile.TemporaryDirectory(prefix="unlearnlab-contest-") as tmp:
        ws = Workspace.make(Path(tmp))
        files = [ws.work / name for name in ("method.py", "task.pt", "out.pt")]
        files[0].write_text(f"{entrant.imports}\n{entrant.method}\n", encoding="utf-8")
        torch.save(task, files[1])
        cmd = ws.sandbox(()).wrap([sys.executable, "-m", "unlearnlab.course.contestant", *map(str, files)])
        start = time.perf_counter()
        proc = run_group(cmd, cwd=ws.work, env=minimal_env(HOME=str(ws.work)), timeout=timeout)
        seconds = time.perf_counter() - start
        if proc.stdout.rstrip().endswith(f"[killed after {timeout:.0f} s]"):
            return Attempt(None, seconds, f"ran past its time budget of {timeout:.0f} s on seed {task['seed']}")
        if proc.returncode != 0 or not files[2].is_file():
            last = (proc.stdout.strip().splitlines() or ["no output"])[-1]
            return Attempt(None, seconds, f"failed on seed {task['seed']}: {last[-300:]}")
        return Attempt(files[2].read_bytes(), seconds)


def run_entrant(entrant: Entrant, study: dict, profile: str, timeout: float) -> list[Attempt]:
    """The task a worker runs for one submission: its method on seeds 0 to K-1, one process each; stops at the
    first seed that fails (the others would fail the same way)."""
    if entrant.error:
        return [Attempt(None, 0.0, entrant.error)]
    attempts = []
    for seed in range(study["models"]):
        attempts.append(run_seed(entrant, {"study": study, "profile": profile, "seed": seed}, timeout))
        if attempts[-1].error:
            break
    return attempts


def score(
    name: str, attempts: Sequence[Attempt], startup: float, study: Study, sets: StudySets, reference: np.ndarray
) -> MethodQuality:
    """A submission's row: its K models (weights only, into the study's architecture) scored against the
    reference group, each seed's time less the process start-up."""
    outcomes = []
    for attempt in attempts:
        if attempt.error:
            outcomes.append(PairOutcome(error=attempt.error))
            continue
        model = build_model(study.model)
        try:
            model.load_state_dict(torch.load(io.BytesIO(attempt.weights), weights_only=True), strict=True)
        except Exception as err:  # a model of another shape, or a forged file
            outcomes.append(PairOutcome(error=f"its model does not fit the study's {study.model} ({err})"[:300]))
            continue
        outcomes.append(sets.outcome(model.eval(), max(attempt.seconds - startup, 0.0), torch.device("cpu")))
    return method_quality(SUBMISSION + name, outcomes, reference, study.models)


@dataclass
class Leaderboard:
    """The scored submissions among the course's reference rows."""

    result: QualityResult  # rows: the course's methods, then the submissions
    startup: float  # seconds of a contestant process that does nothing (taken off each seed's time)
    submissions: list[str]

    def markdown(self) -> str:
        """The table (best F first) and how it was scored."""
        return (
            f"{self.result.markdown()}\n\nRows named '{SUBMISSION}...' are the submissions' Q3 methods, the others "
            f"the course's own. Each seed ran in a sandboxed process; its time is the process's wall time less "
            f"{self.startup:.1f} s of start-up (the same process with a method that does nothing)."
        )

    def table(self) -> list[dict[str, object]]:
        """One record per row, ranked by F (failed rows last): the CSV's lines."""
        rows = [*self.result.scored(), self.result.original, self.result.retrained]
        rows += [r for r in self.result.rows if r.quality is None]
        base = self.result.retrained.seconds
        records = []
        for rank, r in enumerate(rows, 1):
            kind = "submission" if r.name.startswith(SUBMISSION) else "reference"
            records.append(
                {
                    "rank": rank if r.quality is not None else "",
                    "name": r.name.removeprefix(SUBMISSION),
                    "kind": kind,
                    "F": "" if r.quality is None else round(r.quality.score, 4),
                    "forget_acc": "" if math.isnan(r.forget_acc) else round(r.forget_acc, 4),
                    "retain_acc": "" if math.isnan(r.retain_acc) else round(r.retain_acc, 4),
                    "test_acc": "" if math.isnan(r.test_acc) else round(r.test_acc, 4),
                    "time_vs_retraining": "" if math.isnan(r.seconds) else round(r.seconds / base, 3),
                    "error": r.error,
                }
            )
        return records

    def figure(self) -> Figure:
        """F against test accuracy: the submissions in colour, the course's rows in grey."""
        fig = CourseFigure(figsize=(7, 4.5))
        ax = fig.subplots()
        for r in [*self.result.scored(), self.result.original, self.result.retrained]:
            mine = r.name.startswith(SUBMISSION)
            ax.scatter(100 * r.test_acc, r.quality.score, color="tab:red" if mine else "grey", zorder=3 if mine else 2)
            ax.annotate(r.name.removeprefix(SUBMISSION), (100 * r.test_acc, r.quality.score), fontsize=7)
        ax.set_xlabel("test accuracy (%)")
        ax.set_ylabel("forgetting quality F")
        ax.set_title(f"The class leaderboard: F against accuracy (K = {self.result.study.models})")
        fig.tight_layout()
        return fig

    def write(self, out: str | Path) -> list[Path]:
        """Write ``leaderboard.csv``, ``leaderboard.md``, ``leaderboard.json`` and ``leaderboard.png``."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        paths = [out / f"leaderboard.{ext}" for ext in ("csv", "md", "json", "png")]
        records = self.table()

        def write_csv(tmp: Path) -> None:
            with open(tmp, "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=list(records[0]))
                writer.writeheader()
                writer.writerows(records)

        atomic_write(paths[0], write_csv)
        write_text(paths[1], self.markdown() + "\n")
        data = {**self.result.as_dict(), "startup_seconds": self.startup, "submissions": self.submissions}
        write_text(paths[2], json.dumps(data, indent=1, default=lambda v: None))
        fig = self.figure()
        atomic_write(paths[3], lambda tmp: fig.savefig(tmp, format="png", dpi=110))
        return paths


def leaderboard(
    paths: list[Path],
    *,
    models: int | None = None,
    methods: Sequence[str] | None = None,
    study: Study | None = None,
    profile: str = "quick",
    timeout: float = TIMEOUT,
    scheduler: str = LOCAL,
    jobs: int | None = None,
) -> Leaderboard:
    """Score every 08 submission in ``paths`` (files or folders) and the course's ``methods`` (default: all that
    forget random examples) over ``models`` seeds (default: the profile's study), on the Dask cluster
    ``scheduler``."""
    prof = resolve(profile)
    study = study or for_profile(STUDIES, prof)
    study = replace(study, models=models) if models else study
    say = lambda text: print(text, file=sys.stderr, flush=True)  # noqa: E731
    say(f"training or loading the study's models and scoring the course's methods (K = {study.models})")
    result = run_study(methods, prof, study=study, device="cpu", log=say)
    base = study_profile(study, prof)
    sets = StudySets.of(study, base)
    pristine = nbs.read(nbs.course_root() / "exercises" / f"{EXERCISE}.ipynb")
    files = submissions_in(paths)
    entrants = [entrant(p, pristine) for p in files]
    idle = Entrant("start-up", "my_model = setup.original")
    with cluster(scheduler, jobs) as client:
        check_workers(client, sandbox=sandbox_probe(scheduler))
        say(f"timing a contestant process's start-up, then {len(entrants)} submissions x {study.models} seeds")
        task = {"study": asdict(study), "profile": profile, "seed": 0}
        (startup,) = run_tasks(client, run_seed, [idle], task, timeout)
        if startup.error:
            raise RuntimeError(f"a contestant process that does nothing failed: {startup.error}")
        done = []

        def report(index: int, attempts: list[Attempt]) -> None:
            done.append(index)
            failed = next((a.error for a in attempts if a.error), "")
            say(f"[{len(done)}/{len(entrants)}] {entrants[index].name}: {failed or 'scored'}")

        attempts = run_tasks(client, run_entrant, entrants, asdict(study), profile, timeout, on_result=report)
    for e, tries in zip(entrants, attempts, strict=True):
        result.rows.append(score(e.name, tries, startup.seconds, study, sets, result.reference))
    return Leaderboard(result, startup.seconds, [e.name for e in entrants])

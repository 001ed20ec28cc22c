"""``unlearnlab grade``: points per question for a folder of submissions (DESIGN.md section 5).

For each submission, in its own throw-away folder:
1. the pristine exercise, with only the student's answer cells copied in (by cell id), runs under nbval
   (``--nbval-lax``, a per-cell timeout) with its kernel in a sandbox (:mod:`.sandbox`); nbval's report is written
   where the kernel cannot reach. An answer that kills or hangs the kernel is replaced by its unanswered stub
   and the notebook runs again, so it costs only its own question;
2. each question is also decided outside the kernel (:mod:`.referee`): a function is called afresh on inputs
   drawn now, a result model is evaluated here;
3. a question earns its points when its check cell passed **and** the referee agrees.
Edited, deleted or moved check cells never count: the checks always come from the pristine exercise.
"""

from __future__ import annotations

import copy
import csv
import json
import re
import secrets
import shutil
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from nbformat import NotebookNode

from ..engine import LOCAL, check_workers, cluster, run_tasks
from ..files import atomic_write
from ..grading import ARTEFACTS_ENV
from ..lessons import answers
from . import notebooks as nbs
from . import referee
from .sandbox import Sandbox, bwrap_works, default_hidden, default_readable, minimal_env, run_group

KERNEL = "unlearnlab-sandbox"
PROBE_TIMEOUT = 120  # seconds for one function question's answer cell and its calls
# answer-cell patterns a TA should look at: advice, not a penalty
FLAGS = {
    "get_ipython": r"get_ipython|\bIPython\b",
    "builtins": r"\bbuiltins\b|__builtins__",
    "sys.modules": r"sys\.modules",
    "__code__": r"__code__|__globals__",
    "profile hooks": r"setprofile|settrace",  # the hook that stops copies of a withheld reference
    "os.kill": r"os\.kill|killpg|signal\.",
    "os._exit": r"os\._exit|sys\.exit|\bexit\(",
    "file writes": r"open\([^)]*['\"][wax]|write_text|write_bytes|torch\.save|shutil\.|os\.(remove|unlink|rename)",
    "solutions": r"solutions",
    "subprocess": r"subprocess|os\.system|Popen",
    "zoo models": r"\bzoo\.",
}


@dataclass
class GradeRow:
    """One submission's result: points per question (grade_id), the maximum, feedback and flags for the TA."""

    submission: str
    exercise: str
    points: dict[str, int] = field(default_factory=dict)
    max_points: dict[str, int] = field(default_factory=dict)
    feedback: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    graded: bool = True  # False: the submission could not be graded at all (unreadable, unknown exercise)
    failed_cells: list[str] = field(default_factory=list)  # ids of the code cells that failed (not in the CSV)

    @property
    def total(self) -> int:
        """Points earned."""
        return sum(self.points.values())


def merge_answers(pristine: NotebookNode, submission: NotebookNode) -> tuple[NotebookNode, list[str]]:
    """The pristine exercise with the student's answer cells copied in; returns it and notes on missing answers.

    Answer cells are matched by cell id, then by nbgrader ``grade_id`` (some editors rewrite ids). Cells the
    student added are not copied: everything an answer needs belongs in its answer cell (README, grading rules).
    """
    by_id = {c.get("id"): c for c in submission.cells}
    by_grade_id = {nbs.grading(c).get("grade_id"): c for c in submission.cells if nbs.is_answer(c)}
    merged, notes = copy.deepcopy(pristine), []
    for cell in merged.cells:
        if not nbs.is_answer(cell):
            continue
        theirs = by_id.get(cell.id) or by_grade_id.get(nbs.grading(cell).get("grade_id"))
        if theirs is None or theirs.cell_type != cell.cell_type:
            notes.append(f"answer cell {cell.id} is missing from the submission")
            continue
        cell.source = theirs.source
    ours = {c.id for c in pristine.cells}
    extra = [c for c in submission.cells if c.cell_type == "code" and c.get("id") not in ours and not nbs.is_answer(c)]
    if extra:
        notes.append(f"{len(extra)} added code cell(s) ignored: put what an answer needs inside its answer cell")
    return merged, notes


def flags_for(merged: NotebookNode, exercise: str) -> list[str]:
    """Names of the review flags that the answer cells' sources trigger, including a function answer that calls
    the package's own reference for its question."""
    sources = "\n".join(c.source for c in merged.cells if nbs.is_answer(c))
    flags = [name for name, pattern in FLAGS.items() if re.search(pattern, sources)]
    for cell in (c for c in merged.cells if nbs.is_answer(c)):
        grade_id = nbs.grading(cell).get("grade_id", "").removesuffix("_answer")
        name = referee.reference_name(exercise, grade_id)
        question = referee.question(exercise, grade_id)
        # the answer's own function may share the reference's name: then only an import or attribute use counts
        same_name = name == getattr(question, "function", None)
        pattern = rf"import[^\n]*\b{name}\b|\.{name}\b" if same_name else rf"\b{name}\b"
        if name and re.search(pattern, cell.source):
            flags.append(f"{grade_id} calls {name}")
    return flags


def _outcomes(junit_xml: Path) -> dict[int, tuple[bool, str]]:
    """``{code cell number: (passed, message)}`` from nbval's junit report (xfail after a timeout = failed)."""
    outcomes = {}
    for case in ET.parse(junit_xml).iter("testcase"):
        match = re.fullmatch(r"Cell (\d+)", case.get("name", ""))
        if not match:
            continue
        problem = next((child for child in case if child.tag in ("failure", "error", "skipped")), None)
        message = "" if problem is None else f"{problem.get('message', '')}\n{problem.text or ''}"
        outcomes[int(match.group(1))] = (problem is None, message)
    return outcomes


ANSI = re.compile(r"(\x1b|#x1B)\[[0-9;]*m")
KERNEL_LOST = re.compile(r"Kernel dead|Failed to interrupt kernel|exceeded waiting for output|Kernel died")


def _reason(message: str) -> str:
    """A one-line reason for a failed cell: the check's FAIL line, a timeout, or the exception."""
    message = ANSI.sub("", message)
    fail = re.search(r"(Q\S* [^\n]*?: FAIL \([^\n]*)", message)
    if fail:
        return fail.group(1).strip()
    if "Timeout" in message or "timed out" in message:
        return "timed out" if "Previous cell timed out" not in message else "did not run: an earlier cell timed out"
    if KERNEL_LOST.search(message):
        return "did not run: the kernel was lost"
    raised = re.findall(r"^(\w+(?:Error|Exception|Interrupt|Failed)\b(?::.*)?)", message, re.MULTILINE)
    with_text = [e for e in raised if ":" in e]
    if raised:
        reason = (with_text or raised)[-1].strip().rstrip(":")
        return "not answered yet (NotImplementedError)" if reason == "NotImplementedError" else reason
    return "the cell failed"


@dataclass(frozen=True)
class Workspace:
    """One submission's folders: ``work`` is the sandbox's own, ``private`` only the grader's."""

    work: Path
    private: Path

    @classmethod
    def make(cls, root: Path) -> Workspace:
        work, private = root / "work", root / "private"
        for folder in (work, private / "runtime", private / "kernels" / KERNEL):
            folder.mkdir(parents=True)
        return cls(work, private)

    def sandbox(self, hidden: tuple[Path, ...]) -> Sandbox:
        return Sandbox(self.work, (*default_readable(), self.private / "runtime"), default_hidden(hidden))


def _write_kernelspec(ws: Workspace, sandbox: Sandbox) -> None:
    """A kernel that starts inside the sandbox and is interrupted by message (a signal would hit bubblewrap).

    ``parent_handle=1`` turns off ipykernel's parent poller: in its own PID namespace the kernel's parent is the
    namespace's init (PID 1), which the poller would take for a dead parent; the kernel dies with the sandbox.
    """
    kernel = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}", "--IPKernelApp.parent_handle=1"]
    argv = sandbox.wrap(kernel)
    spec = {"argv": argv, "display_name": "unlearnlab sandbox", "language": "python", "interrupt_mode": "message"}
    (ws.private / "kernels" / KERNEL / "kernel.json").write_text(json.dumps(spec))


def run_nbval(notebook: Path, ws: Workspace, sandbox: Sandbox, timeout: int) -> dict[int, tuple[bool, str]]:
    """Run nbval on ``notebook`` (inside ``ws.work``) with a sandboxed kernel; returns each code cell's outcome.

    A run that dies without a report (the runner itself was killed) gives no outcomes: every cell failed.
    """
    junit = ws.private / f"report-{secrets.token_hex(4)}.xml"
    _write_kernelspec(ws, sandbox)
    env = minimal_env(
        HOME=str(ws.work),
        JUPYTER_PATH=str(ws.private),
        JUPYTER_RUNTIME_DIR=str(ws.private / "runtime"),
        TMPDIR=str(ws.private / "runtime"),  # jupyter_client writes the connection file to a temp file
        JUPYTER_PLATFORM_DIRS="1",
        MPLCONFIGDIR=str(ws.work / ".matplotlib"),
        **{ARTEFACTS_ENV: str(ws.work)},
    )
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        str(notebook),
        "--nbval-lax",
        f"--nbval-kernel-name={KERNEL}",
        f"--nbval-cell-timeout={timeout}",
        "--nbval-kernel-startup-timeout=120",
        "-p",
        "no:cacheprovider",
        "-q",
        "--color=no",
        f"--junitxml={junit}",
        "-o",
        "addopts=",
        "-o",
        "testpaths=",
        "--rootdir",
        str(ws.private),
    ]
    cells = sum(1 for c in nbs.read(notebook).cells if c.cell_type == "code")
    run_group(cmd, cwd=ws.private, env=env, timeout=timeout * cells + 300)
    return _outcomes(junit) if junit.is_file() else {}


def _lost_kernel_culprit(merged: NotebookNode, outcomes: dict[int, tuple[bool, str]], done: set[str]) -> str | None:
    """The answer cell to blame when the kernel was lost: the last one (not yet replaced) at or before the first
    cell that found the kernel dead or hung."""
    lost = [n for n, (ok, msg) in sorted(outcomes.items()) if not ok and KERNEL_LOST.search(msg)]
    if not lost:
        return None
    numbers = nbs.code_cell_numbers(merged)
    candidates = [c.id for c in merged.cells if nbs.is_answer(c) and c.id not in done and numbers[c.id] <= lost[0]]
    return candidates[-1] if candidates else None


def run_isolated(
    merged: NotebookNode, pristine: NotebookNode, name: str, ws: Workspace, sandbox: Sandbox, timeout: int
) -> tuple[NotebookNode, dict[int, tuple[bool, str]], list[str]]:
    """Run the merged notebook; while an answer loses the kernel, replace it by its stub and run again."""
    stubs = {c.id: c.source for c in pristine.cells if nbs.is_answer(c)}
    done: set[str] = set()
    notes: list[str] = []
    while True:
        path = ws.work / name
        nbs.write(merged, path)
        outcomes = run_nbval(path, ws, sandbox, timeout)
        culprit = _lost_kernel_culprit(merged, outcomes, done)
        if culprit is None:
            return merged, outcomes, notes
        done.add(culprit)
        cell = next(c for c in merged.cells if c.id == culprit)
        cell.source = stubs[culprit]
        grade_id = nbs.grading(cell).get("grade_id", culprit)
        notes.append(f"{grade_id}: stopped or hung the kernel; replaced by the unanswered stub to grade the rest")


def _function_verdict(
    question: referee.FunctionQuestion, grade_id: str, answer: str, imports: str, ws: Workspace, sandbox: Sandbox
) -> str | None:
    """``None`` when the answer cell, run alone in the sandbox, matches the reference on fresh inputs."""
    gen = torch.Generator().manual_seed(secrets.randbits(63))
    cases = question.cases(gen)
    probe = ws.work / f"probe-{secrets.token_hex(4)}"
    probe.mkdir()
    (probe / "answer.py").write_text(f"{imports}\n{answer}\n", encoding="utf-8")
    paths = map(answers.reference_path, (question.reference, *question.equivalents))
    withheld = [path for path in paths if path]  # the probe withholds them while the answer runs
    task = {"function": question.function, "cases": cases, "withheld": withheld, "label": grade_id.upper()}
    torch.save(task, probe / "cases.pt")
    out = probe / "out.pt"
    files = [str(probe / name) for name in ("answer.py", "cases.pt", "out.pt")]
    cmd = sandbox.wrap([sys.executable, "-m", "unlearnlab.course.probe", *files])
    run_group(cmd, cwd=probe, env=minimal_env(HOME=str(ws.work)), timeout=PROBE_TIMEOUT)
    try:
        observed = torch.load(out, map_location="cpu", weights_only=True)
    except Exception:  # missing or forged file: the answer did not produce plain observations
        return "the answer cell, run on its own, did not finish (it must define the function and nothing slow)"
    return answers.compare_observations(question, answers.reference_observations(question, cases), observed)


def _result_verdict(question: referee.ResultQuestion, exercise: str, grade_id: str, ws: Workspace) -> str | None:
    """``None`` when the model the notebook handed over meets the question's conditions here."""
    path = ws.work / f"{grade_id}.pt"
    if not path.is_file():
        return "no model was handed to the grader (the check cell did not run to its end)"
    try:
        model = referee.load_submitted_model(question, path)
    except Exception as err:  # a forged or foreign file
        return f"the handed-over model could not be loaded ({type(err).__name__})"
    failed = [c for c in referee.result_conditions(exercise, grade_id, model) if not c.ok]
    return f"not yet: {failed[0].text}" + (f" ({failed[0].detail})" if failed[0].detail else "") if failed else None


def find_exercise(submission: Path, nb: NotebookNode, exercises: Path) -> Path:
    """The exercise a submission answers: its notebook metadata naming a known exercise, else the ``NN_`` prefix."""
    known = {p.stem: p for p in exercises.glob("[0-9]*.ipynb")}
    name = nb.metadata.get("unlearnlab", {}).get("exercise")
    if isinstance(name, str) and name in known:
        return known[name]
    number = re.match(r"(\d\d)", submission.name)
    candidates = sorted(p for stem, p in known.items() if number and stem.startswith(number.group(1) + "_"))
    if len(candidates) != 1:
        raise ValueError(f"cannot tell which exercise {submission.name} answers: name it with --exercise")
    return candidates[0]


def grade_one(
    submission: Path, exercises: Path, timeout: int, exercise: Path | None = None, hidden: tuple[Path, ...] = ()
) -> GradeRow:
    """Grade one submission in its own throw-away folder; a broken file or answer gives a row, never an exception."""
    try:
        theirs = nbs.read(submission)
        pristine_path = exercise or find_exercise(submission, theirs, exercises)
    except ValueError as err:
        return GradeRow(submission.stem, "?", feedback=[str(err)], graded=False)
    pristine = nbs.read(pristine_path)
    row = GradeRow(submission.stem, pristine_path.stem, max_points=nbs.questions(pristine))
    merged, row.feedback = merge_answers(pristine, theirs)
    row.flags = flags_for(merged, pristine_path.stem)
    with tempfile.TemporaryDirectory(prefix="unlearnlab-grade-") as tmp:
        ws = Workspace.make(Path(tmp))
        sandbox = ws.sandbox((submission.resolve().parent, exercises.resolve(), *hidden))
        merged, outcomes, notes = run_isolated(merged, pristine, pristine_path.name, ws, sandbox, timeout)
        row.feedback += notes
        numbers = nbs.code_cell_numbers(merged)
        row.failed_cells = [cid for cid, n in numbers.items() if not outcomes.get(n, (False, ""))[0]]
        if not outcomes:
            row.graded = False
            row.feedback.append("the grading run produced no report (its runner was killed): grade it by hand")
        _score(row, merged, outcomes, ws, sandbox)
        shutil.rmtree(ws.work, ignore_errors=True)
    return row


def _score(row: GradeRow, merged: NotebookNode, outcomes: dict, ws: Workspace, sandbox: Sandbox) -> None:
    """Points per question: the check cell passed under nbval and the referee agrees."""
    numbers = nbs.code_cell_numbers(merged)
    answers, before = {}, []
    for cell in merged.cells:
        if cell.cell_type != "code":
            continue
        if nbs.is_answer(cell):
            answers[nbs.grading(cell).get("grade_id", cell.id)] = (cell, referee.answer_imports(before))
            passed, message = outcomes.get(numbers[cell.id], (False, "did not run"))
            if not passed:
                row.feedback.append(f"{nbs.grading(cell).get('grade_id', cell.id)}: {_reason(message)}")
        before.append(cell.source)
        if not nbs.is_check(cell):
            continue
        grade_id = nbs.grading(cell)["grade_id"]
        passed, message = outcomes.get(numbers[cell.id], (False, "did not run"))
        problem = None if passed else _reason(message)
        if problem is None:
            problem = _verdict(row.exercise, grade_id, answers.get(f"{grade_id}_answer"), ws, sandbox)
        row.points[grade_id] = 0 if problem else row.max_points[grade_id]
        if problem:
            row.feedback.append(f"{grade_id}: {problem}")


def _verdict(exercise: str, grade_id: str, answer: tuple | None, ws: Workspace, sandbox: Sandbox) -> str | None:
    """The referee's objection to a question whose check cell passed, or ``None``."""
    question = referee.question(exercise, grade_id)
    if question is None:
        return None  # a notebook without referee entries (a course's own extra notebook): the check cell decides
    if isinstance(question, referee.ResultQuestion):
        return _result_verdict(question, exercise, grade_id, ws)
    if answer is None:
        return "no answer cell found for this question"
    cell, imports = answer
    problem = _function_verdict(question, grade_id, cell.source, imports, ws, sandbox)
    return None if problem is None else f"checked again on fresh inputs by the grader: {problem}"


def submissions_in(paths: list[Path]) -> list[Path]:
    """Notebook files named directly, or found under named folders (checkpoints skipped)."""
    found = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
        else:
            found.append(path)
    return found


def exercises_answered(files: list[Path], exercises: Path) -> set[str]:
    """The exercises the submissions answer (files that cannot be read or placed are left to :func:`grade_one`)."""
    stems = set()
    for path in files:
        try:
            stems.add(find_exercise(path, nbs.read(path), exercises).stem)
        except ValueError:
            continue
    return stems


def grade_all(
    paths: list[Path],
    exercises: Path | None = None,
    timeout: int = 300,
    jobs: int | None = None,
    exercise: Path | None = None,
    hidden: tuple[Path, ...] = (),
    scheduler: str = LOCAL,
    on_row: Callable[[list[GradeRow]], object] = lambda rows: None,
) -> list[GradeRow]:
    """Warm the model cache for the exercises the submissions answer (only those), then grade every submission as
    one task on the Dask cluster ``scheduler`` (:mod:`unlearnlab.engine`; ``local``: ``jobs`` worker processes here).

    ``on_row(finished)`` gets the rows finished so far (in submission order) as each task ends; the rows come back
    in submission order."""
    exercises = exercises or nbs.course_root() / "exercises"
    files = submissions_in(paths)
    stems = sorted({exercise.stem} if exercise else exercises_answered(files, exercises))
    print(f"preparing the data and the cached models of {', '.join(stems) or 'no exercise'}", file=sys.stderr)
    referee.warm_cache(stems, echo=lambda line: print(line, file=sys.stderr, flush=True))
    hidden = (*hidden, *(p.resolve() for p in paths))
    finished: dict[int, GradeRow] = {}
    start = time.perf_counter()

    def report(index: int, row: GradeRow) -> None:
        finished[index] = row
        print(progress_line(row, len(finished), len(files), time.perf_counter() - start), file=sys.stderr, flush=True)
        on_row([finished[k] for k in sorted(finished)])

    with cluster(scheduler, jobs) as client:
        check_workers(client, sandbox=sandbox_probe(scheduler))
        shipped = [(p.name, _read_bytes(p)) for p in files]
        return run_tasks(client, grade_shipped, shipped, exercises, timeout, exercise, hidden, on_result=report)


def sandbox_probe(scheduler: str) -> Callable[[], bool] | None:
    """The check every worker must pass before it runs student code: bubblewrap works there. ``None`` only on a
    local cluster of a machine without it, which runs unsandboxed with the CLI's warning; a cluster never does."""
    return bwrap_works if scheduler != LOCAL or bwrap_works() else None


def _read_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def grade_shipped(
    submission: tuple[str, bytes | None],
    exercises: Path,
    timeout: int,
    exercise: Path | None = None,
    hidden: tuple[Path, ...] = (),
) -> GradeRow:
    """:func:`grade_one` on a submission shipped as (file name, content): the task a worker runs. The file is
    written to the worker's own throw-away folder, so workers need no access to the TA's submissions folder."""
    name, content = submission
    if content is None:
        return GradeRow(Path(name).stem, "?", feedback=[f"{name} could not be read"], graded=False)
    with tempfile.TemporaryDirectory(prefix="unlearnlab-submission-") as tmp:
        path = Path(tmp) / name
        path.write_bytes(content)
        return grade_one(path, exercises, timeout, exercise, hidden)


def progress_line(row: GradeRow, done: int, total: int, elapsed: float) -> str:
    """``[done/total] name: points (elapsed; about N min left)``: the time left from the mean time so far."""
    left = elapsed / done * (total - done)
    points = f"{row.total}/{sum(row.max_points.values())} points" if row.graded else "not graded"
    eta = f"about {left / 60:.0f} min left" if left >= 60 else f"about {left:.0f} s left" if left else "done"
    return f"[{done}/{total}] {row.submission}: {points} ({elapsed:.0f} s in all; {eta})"


def write_csv(rows: list[GradeRow], path: Path) -> None:
    """One row per submission: points per question, total, maximum, feedback and review flags. Written atomically,
    so a TA opening it while grading goes on sees the rows finished so far, never half a file."""
    prefix = len({r.exercise for r in rows if r.exercise != "?"}) > 1

    def column(row: GradeRow, grade_id: str) -> str:
        return f"{row.exercise[:2]}.{grade_id}" if prefix else grade_id

    columns = list(dict.fromkeys(column(r, q) for r in rows for q in r.max_points))
    header = ["submission", "exercise", *columns, "total", "max", "feedback", "flags"]
    lines = [header]
    for r in rows:
        earned = {column(r, q): p for q, p in r.points.items()}
        total = [r.total, sum(r.max_points.values()), " | ".join(r.feedback), " ".join(r.flags)]
        lines.append([r.submission, r.exercise, *(earned.get(c, "") for c in columns), *total])

    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as f:
            csv.writer(f).writerows(lines)

    atomic_write(path, write)

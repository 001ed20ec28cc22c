"""``unlearnlab build``: solutions -> exercises (DESIGN.md section 5).

Answer regions become ``# YOUR CODE HERE`` + ``raise NotImplementedError()``; check cells keep the expected
output and execution count of an executed solutions run; every other output is cleared. The same input gives
byte-identical files.
"""

from __future__ import annotations

import copy
from pathlib import Path

from nbformat import NotebookNode

from . import notebooks as nbs

PLACEHOLDER = {"code": ("# YOUR CODE HERE", "raise NotImplementedError()"), "markdown": ("YOUR ANSWER HERE",)}
KEEP_NOTEBOOK_METADATA = ("kernelspec", "language_info")


class BuildError(ValueError):
    """A solution notebook breaks the course conventions (solutions/README.md)."""


def strip_solution(source: str, cell_type: str = "code", where: str = "") -> str:
    """Replace each ``### BEGIN SOLUTION`` ... ``### END SOLUTION`` region by the placeholder, keeping indentation."""
    lines, out, inside = source.splitlines(), [], False
    for line in lines:
        stripped = line.strip()
        if stripped == nbs.BEGIN:
            if inside:
                raise BuildError(f"{where}: nested {nbs.BEGIN}")
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            out += [indent + text for text in PLACEHOLDER[cell_type]]
        elif stripped == nbs.END:
            if not inside:
                raise BuildError(f"{where}: {nbs.END} without {nbs.BEGIN}")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise BuildError(f"{where}: {nbs.BEGIN} without {nbs.END}")
    return "\n".join(out)


def _validate(nb: NotebookNode, name: str) -> None:
    """Check cell ids, answer regions and check-cell metadata."""
    ids = [c.get("id") for c in nb.cells]
    if None in ids or len(set(ids)) != len(ids):
        raise BuildError(f"{name}: every cell needs a unique id (nbformat >= 4.5)")
    first_code = next((c for c in nb.cells if c.cell_type == "code"), None)
    if first_code is None or "parameters" not in first_code.metadata.get("tags", []):
        raise BuildError(f"{name}: the first code cell must be tagged 'parameters'")
    for cell in nb.cells:
        where = f"{name}, cell {cell.id}"
        if nbs.is_answer(cell) and nbs.BEGIN not in cell.source:
            raise BuildError(f"{where}: an answer cell (nbgrader solution) needs a {nbs.BEGIN} region")
        if nbs.is_check(cell):
            meta = nbs.grading(cell)
            if not meta.get("grade_id") or int(meta.get("points", 0)) <= 0:
                raise BuildError(f"{where}: a check cell needs nbgrader grade_id and points > 0")
            if nbs.CHECK_TAG not in cell.metadata.get("tags", []):
                raise BuildError(f"{where}: a check cell needs the tag {nbs.CHECK_TAG!r}")
    graded = [nbs.grading(c)["grade_id"] for c in nb.cells if nbs.is_check(c)]
    if len(set(graded)) != len(graded):
        raise BuildError(f"{name}: two check cells share a grade_id")


def _stored_check_outputs(solution: NotebookNode, executed: NotebookNode | None, name: str) -> dict[str, tuple]:
    """``{cell id: (outputs, execution_count)}`` for each check cell, from the executed run or the solution."""
    source = {c.id: c for c in executed.cells} if executed is not None else {}
    stored = {}
    for cell in solution.cells:
        if not nbs.is_check(cell):
            continue
        ran = source.get(cell.id, cell)
        outputs = [o for o in ran.get("outputs", []) if o.get("output_type") == "stream"]
        text = "".join(o.get("text", "") for o in outputs)
        if not outputs or ran.get("execution_count") is None:
            raise BuildError(
                f"{name}, cell {cell.id}: the check has no stored output; run the solutions "
                "(unlearnlab run) and build with --executed, since nbval skips unrun cells"
            )
        if "PASS" not in text or "FAIL" in text:
            raise BuildError(f"{name}, cell {cell.id}: the solution fails its own check: {text.strip()!r}")
        stored[cell.id] = ([_clean_output(o) for o in outputs], ran.execution_count)
    return stored


def _clean_output(output: NotebookNode) -> NotebookNode:
    return NotebookNode(output_type="stream", name=output.get("name", "stdout"), text=output.get("text", ""))


def _normalised(nb: NotebookNode, stored: dict[str, tuple]) -> NotebookNode:
    """A copy with outputs kept only on check cells and notebook metadata reduced to the kernel."""
    nb = copy.deepcopy(nb)
    nb.metadata = NotebookNode({k: nb.metadata[k] for k in KEEP_NOTEBOOK_METADATA if k in nb.metadata})
    nb.metadata["kernelspec"] = NotebookNode(display_name="Python 3", language="python", name="python3")
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        if cell.cell_type != "code":
            continue
        cell.outputs, cell.execution_count = stored.get(cell.id, ([], None))
        cell.outputs = copy.deepcopy(cell.outputs)
    return nb


def exercise_from(solution: NotebookNode, name: str) -> NotebookNode:
    """The student's notebook: answer regions replaced by placeholders, everything else as in the solution."""
    nb = copy.deepcopy(solution)
    nb.metadata["unlearnlab"] = NotebookNode(exercise=name)
    for cell in nb.cells:
        if nbs.is_answer(cell) or nbs.BEGIN in cell.source:
            cell.source = strip_solution(cell.source, cell.cell_type, f"{name}, cell {cell.id}")
    return nb


def build(solutions: Path, exercises: Path, executed: Path | None = None, only: list[str] | None = None) -> list[Path]:
    """Normalise each solution (storing check outputs from ``executed`` when given) and write its exercise.

    ``only`` limits the build to notebooks with those file names; by default every ``NN_*.ipynb`` is built
    and exercises without a solution are removed.
    """
    written = []
    paths = sorted(solutions.glob("[0-9]*.ipynb"))
    if only:
        unknown = sorted(set(only) - {p.name for p in paths})
        if unknown:
            raise BuildError(f"no such solution in {solutions}: {', '.join(unknown)}")
        paths = [p for p in paths if p.name in only]
    if not paths:
        raise BuildError(f"no numbered notebooks (NN_topic.ipynb) in {solutions}")
    for path in paths:
        solution = nbs.read(path)
        _validate(solution, path.name)
        run = executed / path.name if executed is not None else None
        ran = nbs.read(run) if run is not None and run.is_file() else None
        stored = _stored_check_outputs(solution, ran, path.name)
        solution = _normalised(solution, stored)
        nbs.write(solution, path)
        target = exercises / path.name
        nbs.write(exercise_from(solution, path.stem), target)
        written.append(target)
    stale = {p.name for p in exercises.glob("[0-9]*.ipynb")} - {p.name for p in paths}
    for name in sorted(stale) if not only else ():
        (exercises / name).unlink()
    return written

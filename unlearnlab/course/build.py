"""``unlearnlab build``: solutions -> exercises (DESIGN.md section 5).

Answer regions become ``# YOUR CODE HERE`` + ``raise NotImplementedError()``. Every output is cleared (a student
never sees a PASS they did not earn: check cells raise on FAIL, so no stored output is needed to grade them).
Exercises carry nbgrader's lock metadata and checksums, so ``nbgrader validate`` notices an edited check cell.
The same input gives byte-identical files.

Every notebook (solutions, exercises and the lecture notebooks of ``notebooks/``) gets the repository address
declared once in ``pyproject.toml`` (``[project.urls] Repository``): in its Colab badge and in its install cell.
"""

from __future__ import annotations

import copy
import hashlib
import re
from pathlib import Path

from nbformat import NotebookNode

from . import notebooks as nbs
from .expect import course_records, recorded_times, with_expectations

PLACEHOLDER = {"code": ("# YOUR CODE HERE", "raise NotImplementedError()"), "markdown": ("YOUR ANSWER HERE",)}
KEEP_NOTEBOOK_METADATA = ("kernelspec", "language_info")


class BuildError(ValueError):
    """A solution notebook breaks the course conventions (solutions/README.md)."""


# the badge's target and the install cell's address, as `stamp` writes them
COLAB = re.compile(r"https://colab\.research\.google\.com/github/[^)\s\"']+")
INSTALL = re.compile(r"^if importlib\.util\.find_spec\(\"unlearnlab\"\) is None:.*\n(?:[ \t]+.*(?:\n|$))+", re.M)
INSTALL_CELL = """\
if importlib.util.find_spec("unlearnlab") is None:  # e.g. on Colab: torch, numpy & co. stay as they are
    url = "git+{repository}"  # written by `unlearnlab build` from pyproject.toml
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", url], check=True)
    importlib.invalidate_caches()
"""
PYPROJECT_URL = re.compile(r"^\[project\.urls\]\s*$(?:\n(?!\[).*)*?\nRepository\s*=\s*\"([^\"]+)\"", re.M)


def repository_url(root: Path | None = None) -> str:
    """The course's repository address: ``[project.urls] Repository`` in ``pyproject.toml`` (no trailing slash)."""
    path = (root or nbs.course_root()) / "pyproject.toml"
    match = PYPROJECT_URL.search(path.read_text(encoding="utf-8"))
    if not match:
        raise BuildError(f'{path}: no Repository = "https://..." under [project.urls]')
    return match.group(1).rstrip("/")


def colab_url(repository: str, notebook: str, branch: str = "main") -> str:
    """Colab's address of ``notebook`` (a path inside the repository) on GitHub ``repository``."""
    owner_name = repository.removeprefix("https://github.com/")
    if owner_name == repository or owner_name.count("/") != 1:
        raise BuildError(f"Colab opens notebooks from GitHub: {repository!r} is not https://github.com/OWNER/NAME")
    return f"https://colab.research.google.com/github/{owner_name}/blob/{branch}/{notebook}"


def stamp(nb: NotebookNode, repository: str, opened_as: str) -> NotebookNode:
    """A copy with the Colab badge pointing at ``opened_as`` (e.g. ``exercises/01_x.ipynb``) on ``repository``, and
    the install cell's block (``if importlib.util.find_spec("unlearnlab") is None:`` and its body) installing from
    it without touching packages Colab already has."""
    nb = copy.deepcopy(nb)
    badge, install = colab_url(repository, opened_as), INSTALL_CELL.format(repository=repository)
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = COLAB.sub(badge, cell.source)
        elif cell.cell_type == "code":
            cell.source = INSTALL.sub(lambda _: install, cell.source)
    return nb


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
    graded = [nbs.grading(c)["grade_id"] for c in nb.cells if nbs.is_check(c)]
    if len(set(graded)) != len(graded):
        raise BuildError(f"{name}: two check cells share a grade_id")


def _normalised(nb: NotebookNode) -> NotebookNode:
    """A copy with no outputs, notebook metadata reduced to the kernel, and no output-comparison tags."""
    nb = copy.deepcopy(nb)
    nb.metadata = NotebookNode({k: nb.metadata[k] for k in KEEP_NOTEBOOK_METADATA if k in nb.metadata})
    nb.metadata["kernelspec"] = NotebookNode(display_name="Python 3", language="python", name="python3")
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        tags = [t for t in cell.metadata.get("tags", []) if t != nbs.CHECK_TAG]
        if tags:
            cell.metadata["tags"] = tags
        else:
            cell.metadata.pop("tags", None)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return nb


def nbgrader_checksum(cell: NotebookNode) -> str:
    """nbgrader's checksum of a graded, answer or locked cell (``nbgrader.utils.compute_checksum``, 0.9)."""
    meta = nbs.grading(cell)
    grade, solution = bool(meta.get("grade")), bool(meta.get("solution"))
    locked = not solution and (grade or bool(meta.get("locked")))
    parts = [cell.source, cell.cell_type, str(grade), str(solution), str(locked), meta["grade_id"]]
    if grade:
        parts.append(str(float(meta["points"])))
    digest = hashlib.md5()  # nbgrader's choice; an integrity marker, not a security boundary
    for part in parts:
        digest.update(part.encode("utf-8"))
    return digest.hexdigest()


def _lock(cell: NotebookNode) -> None:
    """nbgrader's lock metadata: checks can be neither deleted nor edited, answer cells not deleted."""
    meta = cell.metadata.get("nbgrader")
    if not meta:
        return
    if nbs.is_check(cell) or meta.get("locked"):
        cell.metadata["deletable"], cell.metadata["editable"] = False, False
    elif nbs.is_answer(cell):
        cell.metadata["deletable"] = False
    meta["checksum"] = nbgrader_checksum(cell)
    meta["cell_type"] = cell.cell_type


def exercise_from(
    solution: NotebookNode, name: str, times: dict | None = None, record: dict | None = None
) -> NotebookNode:
    """The student's notebook: answer regions replaced by placeholders, everything else as in the solution; its
    "what to expect" cell adds the figures of ``record`` (a quick run of the course) to the recorded ``times``."""
    nb = with_expectations(copy.deepcopy(solution), name, times or {}, record)
    nb.metadata["unlearnlab"] = NotebookNode(exercise=name)
    for cell in nb.cells:
        if nbs.is_answer(cell) or nbs.BEGIN in cell.source:
            cell.source = strip_solution(cell.source, cell.cell_type, f"{name}, cell {cell.id}")
        _lock(cell)
    return nb


def build(
    solutions: Path,
    exercises: Path,
    only: list[str] | None = None,
    repository: str | None = None,
    records: dict[str, dict | None] | None = None,
) -> list[Path]:
    """Normalise and stamp each solution (no outputs) and write its exercise.

    ``only`` limits the build to notebooks with those file names; by default every ``NN_*.ipynb`` is built
    and exercises without a solution are removed. ``repository`` defaults to :func:`repository_url`, ``records``
    (``{profile: record}``, what the "what to expect" cells show) to the course's :func:`~.expect.course_records`.
    """
    repository = repository or repository_url()
    records = course_records() if records is None else records
    times = recorded_times(records)
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
        solution = stamp(_normalised(solution), repository, f"{exercises.name}/{path.name}")
        solution = with_expectations(solution, path.stem, times.get(path.stem, {}))
        nbs.write(solution, path)
        target = exercises / path.name
        nbs.write(exercise_from(solution, path.stem, times.get(path.stem), records.get("quick")), target)
        written.append(target)
    stale = {p.name for p in exercises.glob("[0-9]*.ipynb")} - {p.name for p in paths}
    for name in sorted(stale) if not only else ():
        (exercises / name).unlink()
    return written


def build_lectures(paths: list[Path], repository: str | None = None) -> list[Path]:
    """Stamp lecture notebooks (``notebooks/``) in place, keeping their outputs (the figures a reader sees on
    GitHub) but not papermill's or the execution's metadata."""
    repository = repository or repository_url()
    for path in paths:
        nb = nbs.read(path)
        first_code = next((c for c in nb.cells if c.cell_type == "code"), None)
        if first_code is None or "parameters" not in first_code.metadata.get("tags", []):
            raise BuildError(f"{path.name}: the first code cell must be tagged 'parameters'")
        nb.metadata = NotebookNode({k: nb.metadata[k] for k in KEEP_NOTEBOOK_METADATA if k in nb.metadata})
        nb.metadata["kernelspec"] = NotebookNode(display_name="Python 3", language="python", name="python3")
        for cell in nb.cells:
            cell.metadata.pop("papermill", None)
            cell.metadata.pop("execution", None)
        nbs.write(stamp(nb, repository, f"{path.parent.name}/{path.name}"), path)
    return list(paths)

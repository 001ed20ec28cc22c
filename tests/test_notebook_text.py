"""Markdown a reader sees: no stray control characters, no citation of a page the repository does not hold, no
result question's answer, and sources cited as works."""

import re

import pytest

from unlearnlab.course import notebooks as nbs
from unlearnlab.lessons.base import ResultQuestion
from unlearnlab.lessons.catalog import LESSONS

ROOT = nbs.course_root()
NOTEBOOKS = sorted(p for folder in ("solutions", "exercises", "notebooks") for p in (ROOT / folder).glob("*.ipynb"))
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # below 0x20 except \t and \n, and DEL


def _markdown(path):
    return [(k, cell.source) for k, cell in enumerate(nbs.read(path).cells) if cell.cell_type == "markdown"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_markdown_has_no_control_characters(path):
    found = [
        f"cell {k}: {m.group()!r} in {source[max(0, m.start() - 20) : m.end() + 20]!r}"
        for k, source in _markdown(path)
        for m in CONTROL.finditer(source)
    ]
    assert not found, f"{path.name}: " + "; ".join(found)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_markdown_cites_no_design_section(path):
    """DESIGN.md is not part of the course: a notebook states what it relies on."""
    cited = [k for k, source in _markdown(path) if re.search(r"DESIGN\b", source)]
    assert not cited, f"{path.name}: markdown cells {cited} cite DESIGN"


def test_the_scan_finds_a_bel_where_alpha_was_meant():
    assert CONTROL.search("$\x07lpha = 0.1$") and not CONTROL.search("$\\alpha$ a\tb\nc")
    assert NOTEBOOKS, "no notebooks found"


def _normalised(text: str) -> str:
    """``text`` with every run of whitespace (line breaks too) as one space."""
    return " ".join(text.split())


def _solution_lines(source: str) -> list[str]:
    """The decisions between a cell's solution markers: its code lines that hold a number or a string (a setting),
    whitespace-normalised, without comments and short lines (a line that only calls the lesson's API gives nothing
    away)."""
    inside, lines = False, []
    for line in source.splitlines():
        if "### BEGIN SOLUTION" in line or "### END SOLUTION" in line:
            inside = "BEGIN" in line
            continue
        code = _normalised(line.split("#")[0])
        if inside and len(code) >= 12 and re.search(r"\d|['\"]", code):
            lines.append(code)
    return lines


def _result_answers() -> list[tuple[str, str, list[str]]]:
    """(notebook stem, grade id, the solution's answer lines) of every result question."""
    found = []
    for stem, lesson in LESSONS.items():
        cells = nbs.read(ROOT / "solutions" / f"{stem}.ipynb").cells
        for grade_id, question in lesson.questions.items():
            if isinstance(question, ResultQuestion):
                answer = next(c for c in cells if nbs.grading(c).get("grade_id") == f"{grade_id}_answer")
                found.append((stem, grade_id, _solution_lines(answer.source)))
    return found


@pytest.mark.parametrize("stem, grade_id, lines", _result_answers(), ids=lambda v: v if isinstance(v, str) else "")
def test_no_markdown_dictates_a_result_questions_answer(stem, grade_id, lines):
    """solutions/README.md's reviewer checklist, automated where it can be: no line of the answer in the text."""
    assert lines, f"{stem} {grade_id}: the answer cell has no solution lines to compare"
    for path in (ROOT / "exercises" / f"{stem}.ipynb", *sorted((ROOT / "notebooks").glob("*.ipynb"))):
        text = [_normalised(source) for _, source in _markdown(path)]
        given = [line for line in lines if any(line in cell for cell in text)]
        assert not given, f"{path.name} markdown gives away {stem} {grade_id}'s answer: {given}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_sources_are_cited_as_works(path):
    """A reader cannot follow "seed 003" or "the issue": the course cites its sources by authors or title."""
    cited = [k for k, source in _markdown(path) if re.search(r"\bseeds? 00\d|\bthe issue\b", source, re.IGNORECASE)]
    assert not cited, f"{path.name}: markdown cells {cited} cite a seed report by number or 'the issue'"


def test_the_scan_finds_a_setting_the_markdown_dictates():
    cell = (
        "### BEGIN SOLUTION\nmodel = lesson.finetune(layers=('fc3',), epochs=2)  # mine\nrun(model)\n### END SOLUTION"
    )
    assert _solution_lines(cell) == ["model = lesson.finetune(layers=('fc3',), epochs=2)"]
    dictated = _normalised("Write `model = lesson.finetune(layers=('fc3',),\n epochs=2)` and run it.")
    assert _solution_lines(cell)[0] in dictated

"""Markdown a reader sees: no stray control characters, no citation of a page the repository does not hold."""

import re

import pytest

from unlearnlab.course import notebooks as nbs

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

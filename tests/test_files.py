"""The one atomic-write helper: all or nothing, never a temporary file left behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from unlearnlab.files import atomic_write


def test_atomic_write_replaces_the_file_and_creates_folders(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "out.txt"
    assert atomic_write(path, lambda tmp: tmp.write_text("first")) == path
    atomic_write(path, lambda tmp: tmp.write_text("second"))
    assert path.read_text() == "second"
    assert sorted(p.name for p in path.parent.iterdir()) == ["out.txt"]


def test_a_failing_writer_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "out.txt"
    path.write_text("old")

    def half_then_fail(tmp: Path) -> None:
        tmp.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, half_then_fail)
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]

"""The one atomic-write helper: all or nothing, never a temporary file left behind."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from unlearnlab.files import atomic_write, save_torch, write_text


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


def test_save_torch_and_write_text_round_trip_through_the_same_helper(tmp_path: Path) -> None:
    payload = {"w": torch.arange(6.0).reshape(2, 3), "note": "ünïcode"}
    assert save_torch(payload, tmp_path / "m.pt") == tmp_path / "m.pt"
    loaded = torch.load(tmp_path / "m.pt", weights_only=True)
    assert torch.equal(loaded["w"], payload["w"]) and loaded["note"] == payload["note"]
    write_text(tmp_path / "t" / "r.md", "π ≈ 3.14\n")
    assert (tmp_path / "t" / "r.md").read_text(encoding="utf-8") == "π ≈ 3.14\n"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["m.pt", "r.md", "t"]

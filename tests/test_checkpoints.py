"""Checkpoints: a saved state comes back, a damaged one falls back to the one before, a foreign one is ignored."""

import os

import pytest
import torch

from unlearnlab.checkpoints import Checkpoint, restore_rng, rng_state


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("UNLEARNLAB_CACHE", str(tmp_path))
    monkeypatch.delenv("UNLEARNLAB_RESUME", raising=False)
    return tmp_path


def test_a_saved_state_comes_back_and_another_configuration_names_another_file(cache):
    ckpt = Checkpoint.of("demo", {"steps": 10}, version=1, teacher="abc")
    assert ckpt.load() is None
    ckpt.save({"step": 3, "w": torch.arange(4.0)})
    state = ckpt.load()
    assert state["step"] == 3 and torch.equal(state["w"], torch.arange(4.0))
    assert ckpt.path.is_relative_to(cache / "checkpoints" / "demo")
    for other in (
        Checkpoint.of("demo", {"steps": 11}, version=1, teacher="abc"),
        Checkpoint.of("demo", {"steps": 10}, version=2, teacher="abc"),
        Checkpoint.of("demo", {"steps": 10}, version=1, teacher="abd"),
    ):
        assert other.path != ckpt.path and other.load() is None


def test_a_damaged_latest_state_falls_back_to_the_one_before(cache):
    ckpt = Checkpoint.of("demo", {"steps": 10}, version=1)
    ckpt.save({"step": 1})
    ckpt.save({"step": 2})
    ckpt.path.write_bytes(ckpt.path.read_bytes()[:20])  # cut short, as a kill during a copy would
    with pytest.warns(UserWarning, match="ignoring damaged checkpoint"):
        assert ckpt.load() == {"step": 1}
    ckpt.previous.write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="damaged"):
        assert ckpt.load() is None
    ckpt.clear()
    assert not ckpt.path.exists() and not ckpt.previous.exists()


def test_a_file_from_other_code_or_configuration_is_ignored(cache):
    ours, theirs = Checkpoint.of("demo", {"a": 1}, 1), Checkpoint.of("demo", {"a": 2}, 1)
    theirs.save({"step": 9})
    os.replace(theirs.path, ours.path)  # copied over by hand
    with pytest.warns(UserWarning, match="other code or configuration"):
        assert ours.load() is None


def test_resume_can_be_switched_off(cache, monkeypatch):
    ckpt = Checkpoint.of("demo", {"a": 1}, 1)
    ckpt.save({"step": 4})
    monkeypatch.setenv("UNLEARNLAB_RESUME", "0")
    assert ckpt.load() is None


def test_random_generators_resume_where_they_were():
    gen = torch.Generator().manual_seed(5)
    torch.manual_seed(7)
    saved = rng_state(gen)
    expected = (torch.rand(3), torch.rand(3, generator=gen))
    torch.manual_seed(0)
    gen.manual_seed(0)
    restore_rng(saved, gen)
    assert torch.equal(torch.rand(3), expected[0]) and torch.equal(torch.rand(3, generator=gen), expected[1])

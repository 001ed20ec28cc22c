"""The one disk cache: keys, a single build under concurrency, corrupt entries, read-only folders."""

import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest

from unlearnlab import cache


@dataclass(frozen=True)
class Config:
    lr: float = 0.01
    seed: int = 0


def _save(value: int) -> dict:
    return {"value": value}


def _load(payload: dict) -> int:
    return payload["value"]


def test_key_is_a_stable_hash_of_the_config_and_the_version():
    assert cache.key(Config(), 1) == "5948e36aa61efc06"  # sha256 of {"lr": 0.01, "seed": 0, "version": 1}
    assert cache.key({"seed": 0, "lr": 0.01}, 1) == "5948e36aa61efc06"  # a dict, in any order, hashes the same
    others = {cache.key(Config(lr=0.1), 1), cache.key(Config(seed=1), 1), cache.key(Config(), 2)}
    assert len(others) == 3 and "5948e36aa61efc06" not in others


def test_same_key_hits_and_a_changed_config_misses(tmp_path, monkeypatch):
    monkeypatch.setenv("UNLEARNLAB_CACHE", str(tmp_path))
    builds = []

    def get(config: Config) -> int:
        path = cache.entry_path("tests", f"value-{cache.key(config, 1)}")
        return cache.load_or_build(path, lambda: builds.append(config) or len(builds), _save, _load)

    assert get(Config()) == 1 and get(Config()) == 1  # the second call reads the file
    assert get(Config(lr=0.1)) == 2 and builds == [Config(), Config(lr=0.1)]
    assert sorted(p.name for p in (tmp_path / "tests").glob("*.pt")) == sorted(
        [f"value-{cache.key(Config(), 1)}.pt", f"value-{cache.key(Config(lr=0.1), 1)}.pt"]
    )
    assert list((tmp_path / "tests").glob(".*tmp")) == []  # written atomically: no temporary file left


def _build_slowly(log: Path) -> int:
    with log.open("a") as f:
        f.write(f"{os.getpid()}\n")
    time.sleep(1.0)  # long enough for the other process to find the entry missing and wait on the lock
    return os.getpid()


def _ask(path: Path, log: Path, start, results) -> None:
    start.wait()
    results.put(cache.load_or_build(path, lambda: _build_slowly(log), _save, _load))


def test_processes_asking_at_once_build_once(tmp_path):
    path, log = tmp_path / "entry.pt", tmp_path / "builds.log"
    context = multiprocessing.get_context("fork")
    start, results = context.Barrier(2), context.Queue()
    workers = [context.Process(target=_ask, args=(path, log, start, results)) for _ in range(2)]
    for worker in workers:
        worker.start()
    answers = [results.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
    assert [w.exitcode for w in workers] == [0, 0]
    builder = int(log.read_text())  # a single line: one build
    assert answers == [builder, builder]  # the other process read what the builder wrote


def test_a_corrupt_entry_is_reported_and_rebuilt(tmp_path):
    path = tmp_path / "entry.pt"
    path.write_bytes(b"this is not a torch file")
    with pytest.warns(UserWarning, match=f"unusable cache file {re.escape(str(path))}"):
        assert cache.load_or_build(path, lambda: 7, _save, _load) == 7
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cache.load_or_build(path, lambda: 8, _save, _load) == 7  # the rewritten file reads cleanly


# a fresh interpreter reads each entry named on its command line from a read-only cache, and may not build
READER = """
import sys
from pathlib import Path
from unlearnlab import cache

def never():
    raise AssertionError("a read-only cache must not build")

for name in sys.argv[1:]:
    try:
        print(cache.load_or_build(Path(name), never, dict, lambda payload: payload["value"]))
    except cache.ReadOnlyCacheError as err:
        print(f"ReadOnlyCacheError: {err}")
"""


def _read_only_prefix(folder: Path) -> list[str]:
    """A command prefix under which ``folder`` is read-only: chmod, else a read-only bind mount (bwrap, unshare)."""
    for sub in (folder, *folder.rglob("*")):
        if sub.is_dir():
            sub.chmod(0o555)
    if not os.access(folder, os.W_OK):
        return []
    for sub in (folder, *folder.rglob("*")):  # root ignores the mode bits
        if sub.is_dir():
            sub.chmod(0o755)
    if shutil.which("bwrap"):
        return ["bwrap", "--dev-bind", "/", "/", "--ro-bind", str(folder), str(folder), "--"]
    prefix = ["unshare", "--mount", "sh", "-c", 'mount --bind -o ro "$0" "$0" && exec "$@"', str(folder)]
    if shutil.which("unshare") and subprocess.run([*prefix, "true"], capture_output=True).returncode == 0:
        return prefix
    pytest.skip("running as root, with neither bwrap nor unshare to mount the cache read-only")


def test_a_read_only_cache_serves_its_entries_and_names_a_missing_one(tmp_path):
    folder = tmp_path / "cache" / "zoo"
    assert cache.load_or_build(folder / "present.pt", lambda: 7, _save, _load) == 7
    (folder / "corrupt.pt").write_bytes(b"this is not a torch file")
    before = sorted(p.name for p in folder.iterdir())
    prefix = _read_only_prefix(tmp_path / "cache")
    try:
        names = [str(folder / name) for name in ("present.pt", "missing.pt", "corrupt.pt")]
        ran = subprocess.run([*prefix, sys.executable, "-c", READER, *names], capture_output=True, text=True)
    finally:
        for sub in (tmp_path / "cache", folder):
            sub.chmod(0o755)
    assert ran.returncode == 0, ran.stderr
    present, missing, corrupt = ran.stdout.splitlines()
    assert present == "7"  # read without a lock file or any write
    assert missing.startswith("ReadOnlyCacheError: the cache entry missing.pt is missing")
    assert f"the cache folder {folder} is read-only" in missing
    assert corrupt.startswith("ReadOnlyCacheError: the cache entry corrupt.pt is unreadable (")
    assert sorted(p.name for p in folder.iterdir()) == before  # nothing written, no lock file either

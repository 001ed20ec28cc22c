"""Shared fixtures: the real MNIST files (from $UNLEARNLAB_DATA), loaded once per test session, and the tiny
course (tests/tiny_course.py) the grading tests build in a temporary folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import tiny_course

from unlearnlab import zoo
from unlearnlab.config import Profile, resolve
from unlearnlab.course import build as B
from unlearnlab.course import notebooks as nbs
from unlearnlab.course import referee
from unlearnlab.data import TensorData, load_mnist
from unlearnlab.lessons.catalog import LESSONS
from unlearnlab.training import pick_device

# a profile small enough for unit tests: a few hundred images, one epoch
TINY = Profile(name="tiny", train_subset=600, num_epochs=1, batch_size=64, lr=3e-3, finetune_epochs=1)


@pytest.fixture(scope="session")
def mnist_train() -> TensorData:
    return load_mnist(train=True, download=False)


@pytest.fixture(scope="session")
def mnist_test() -> TensorData:
    return load_mnist(train=False, download=False)


@pytest.fixture()
def small_train(mnist_train: TensorData) -> TensorData:
    """The first 512 training images (all ten classes)."""
    return mnist_train.subset(slice(0, 512))


# test files whose notebooks load zoo models: a session that collects one of them warms the zoo first
ZOO_USERS = ("test_notebooks.py", "test_course.py", "test_lectures.py", "test_browser.py")


@pytest.fixture(scope="session", autouse=True)
def cached_models(request: pytest.FixtureRequest) -> None:
    """Train every zoo model the notebooks load, once, before the first test of each worker.

    Every xdist worker warms at its start (a file lock per model): the first walks the notebooks in order, the
    second from the other end, so the two train different models at once and no notebook test waits on a lock.
    A session of unit tests only (no ZOO_USERS file collected) trains nothing.
    """
    if not any(item.nodeid.split("::")[0].rsplit("/", 1)[-1] in ZOO_USERS for item in request.session.items):
        return
    shift = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0")[2:] or 0)
    needed = [(), (6,), (0,)]
    for exclude in needed[shift % 3 :] + needed[: shift % 3]:
        zoo.get("cnn_bn", resolve("auto"), device=pick_device("auto"), exclude_classes=exclude)
    names = sorted(p.stem for p in (Path(__file__).resolve().parents[1] / "solutions").glob("[0-9]*.ipynb"))
    referee.warm_cache(names[::-1] if shift % 2 else names)


# the slowest tests (whole notebooks through the grader) start first, so the two workers finish together
SLOW_FIRST = ("test_notebooks.py", "test_course.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run whole-notebook tests, then the grader's end-to-end tests, then the unit tests (order kept within each)."""
    rank = {name: i for i, name in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0].rsplit("/", 1)[-1], len(rank)))


@pytest.fixture()
def course(tmp_path: Path) -> Path:
    """A course folder with the tiny solution and its exercise (submissions go to its ``submissions/``)."""
    (tmp_path / "solutions").mkdir()
    nbs.write(tiny_course.tiny_solution(), tmp_path / "solutions" / "99_tiny.ipynb")
    B.build(tmp_path / "solutions", tmp_path / "exercises")
    return tmp_path


def _submission(course: Path, name: str, edit) -> Path:
    """The tiny solution with ``edit(cells_by_id, nb)`` applied, saved as ``submissions/<name>.ipynb``."""
    nb = nbs.read(course / "solutions" / "99_tiny.ipynb")
    edit({c.id: c for c in nb.cells}, nb)
    path = course / "submissions" / f"{name}.ipynb"
    nbs.write(nb, path)
    return path


@pytest.fixture()
def refereed(monkeypatch):
    """A referee for the tiny notebook's function question, as the course's notebooks have: registered here and,
    through Dask's worker preload, in every grading worker the test starts."""
    import dask
    import distributed  # noqa: F401  (its config defaults load first: leaving the block below must keep them)

    monkeypatch.setitem(LESSONS, tiny_course.NAME, tiny_course.LESSON)
    with dask.config.set({"distributed.worker.preload": [tiny_course.__file__]}):
        yield tiny_course.__file__

"""The Dask engine: a real scheduler and workers on 127.0.0.1, what a worker lacks, a worker that dies, and grading
that gives the same points on a local cluster and on a cluster started by hand."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import _submission

from unlearnlab import engine as E
from unlearnlab.course import grade as G
from unlearnlab.course.sandbox import bwrap_works

TESTS = Path(__file__).resolve().parent
DASK = Path(sys.executable).with_name("dask")


class Cluster:
    """``dask scheduler`` and ``dask worker`` processes on 127.0.0.1, as a TA starts them by hand."""

    def __init__(self, folder: Path):
        self.folder, self.workers = folder, []
        self.file = folder / "scheduler.json"
        self.scheduler = self._start([DASK, "scheduler", "--host", "127.0.0.1", "--scheduler-file", self.file])
        deadline = time.monotonic() + 60
        while not (self.file.is_file() and self.file.stat().st_size):
            assert time.monotonic() < deadline, "the scheduler did not start"
            time.sleep(0.2)
        self.address = json.loads(self.file.read_text())["address"]

    def _start(self, command, **env):
        log = open(self.folder / f"{len(self.workers)}-{Path(command[1]).name}.log", "w")  # noqa: SIM115
        env = {**os.environ, "PYTHONPATH": str(TESTS), **env}  # the scheduler unpickles the tests' tasks too
        return subprocess.Popen(list(map(str, command)), stdout=log, stderr=log, env=env)

    def add_worker(self, name: str, *extra: str, **env: str) -> subprocess.Popen:
        """A single-threaded worker without a nanny (killing it kills it)."""
        command = [DASK, "worker", "--scheduler-file", self.file, "--nthreads", "1", "--no-nanny", "--name", name]
        worker = self._start([*command, *extra], **env)
        self.workers.append(worker)
        return worker

    def wait_for(self, client, n: int) -> None:
        client.wait_for_workers(n, timeout=60)

    def stop(self) -> None:
        for process in [*self.workers, self.scheduler]:
            process.kill()
            process.wait()


@pytest.fixture()
def by_hand(tmp_path):
    cluster = Cluster(tmp_path)
    yield cluster
    cluster.stop()


def test_what_a_worker_lacks_is_said_in_words():
    here = E.worker_report()
    assert E.lacks(here, here, sandbox=False) == []
    bare = {**here, "bwrap": False, "data_found": False, "cache_found": False, "unlearnlab": "0.0.1"}
    missing = E.lacks(bare, here, sandbox=True)
    assert [m.split(" ")[0] for m in missing] == ["bubblewrap", "the", "the", "unlearnlab"]
    assert E.lacks({**here, "bwrap": False}, here, sandbox=False) == []  # compare runs no student code


def test_an_unreachable_scheduler_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(E, "CONNECT_TIMEOUT", 2)
    with (
        pytest.raises(E.EngineError, match="cannot reach the Dask scheduler at tcp://127.0.0.1:9"),
        E.cluster("tcp://127.0.0.1:9"),
    ):
        pass


def test_a_worker_that_dies_has_its_tasks_run_elsewhere_once(by_hand):
    from distributed import Client

    for name in ("a", "b"):
        by_hand.add_worker(name)
    with Client(by_hand.address) as client:
        by_hand.wait_for(client, 2)
        from engine_tasks import slow_echo

        seen = []

        def kill_the_first_worker_to_finish(index, result):
            seen.append(index)
            if len(seen) == 1:  # its next task is under way: kill the process mid-task
                os.kill(result[1], 9)

        results = E.run_tasks(client, slow_echo, list(range(6)), on_result=kill_the_first_worker_to_finish)
    assert [item for item, _ in results] == list(range(6)) and sorted(seen) == list(range(6))
    assert len({pid for _, pid in results}) == 2  # the survivor took over the dead worker's tasks


def test_a_worker_without_the_cache_is_named_before_anything_runs(by_hand, tmp_path):
    from distributed import Client

    by_hand.add_worker("good")
    by_hand.add_worker("no-cache", UNLEARNLAB_CACHE=str(tmp_path / "missing"))
    with E.cluster(by_hand.address) as client:
        by_hand.wait_for(client, 2)
        with pytest.raises(E.EngineError, match=r"worker tcp://\S+ \(\S+\) lacks the model cache .*missing"):
            E.check_workers(client)
    assert isinstance(client, Client)


@pytest.mark.skipif(not bwrap_works(), reason="bubblewrap is missing (apt-get install bubblewrap): no sandbox to test")
def test_points_do_not_depend_on_the_engine(course, refereed, by_hand):
    def answer(q1):
        def edit(cells, nb):
            cells["q1-answer"].source = q1

        return edit

    _submission(course, "99_right", answer("def double(x):\n    return 2 * x"))
    _submission(course, "99_wrong", answer("def double(x):\n    return x + 2"))
    by_hand.add_worker("grader", "--preload", refereed)

    def grade(scheduler):
        rows = G.grade_all([course / "submissions"], course / "exercises", timeout=30, jobs=1, scheduler=scheduler)
        return [(r.submission, r.points, r.feedback, r.flags) for r in rows]

    local = grade("local")
    assert [points for _, points, _, _ in local] == [{"q1": 2, "q2": 3}, {"q1": 0, "q2": 3}]
    assert grade(by_hand.address) == local


def test_the_readmes_slurm_example_builds_its_cluster_configuration():
    pytest.importorskip("dask_jobqueue")
    readme = (TESTS.parent / "README.md").read_text()
    block = readme.split("<!-- slurm-example:begin -->")[1].split("<!-- slurm-example:end -->")[0]
    namespace = {"__name__": "readme_example"}  # not __main__: build the configuration, submit no job
    exec(block.strip().removeprefix("```python").removesuffix("```"), namespace)  # noqa: S102
    cluster = namespace["slurm_cluster"]()
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    assert "#SBATCH -p cpu" in script and "#SBATCH -t 04:00:00" in script
    assert "source /shared/unlearnlab/.venv/bin/activate" in script and "UNLEARNLAB_CACHE=/shared" in script
    assert "--nworkers 2" in script and "--nthreads 1" in script

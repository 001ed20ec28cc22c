"""Tasks for the engine tests, importable by the Dask workers those tests start (PYTHONPATH names this folder)."""

import os
import time


def slow_echo(item: int) -> tuple[int, int]:
    """The item and the worker's process id, after a second's work."""
    time.sleep(1.0)
    return item, os.getpid()

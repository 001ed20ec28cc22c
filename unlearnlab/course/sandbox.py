"""Run untrusted student code where it can touch nothing but its own folder (DESIGN.md section 5).

With bubblewrap (Debian's ``bubblewrap``), the process sees an allow-list of the file system, read-only: the
system's own folders (:data:`SYSTEM`), the Python environment, the installed package's own folder (not the checkout
around it, which holds the solutions), the data and the model cache; its own folder is the only writable one, and
``/tmp`` is an empty one of its own. Everything else (the course folder, home, the grader's folders, submissions)
does not exist for it. It gets its own PID namespace (it cannot see
or signal the grader, and everything it started dies with it), no capabilities, and runs as ``nobody``.
Without bubblewrap, code runs in a plain subprocess with a loud warning: isolation is then not guaranteed.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

NO_SANDBOX_WARNING = (
    "bubblewrap (bwrap) is not available: student code runs in a plain subprocess, which can read and write "
    "whatever the grader can. Install Debian's `bubblewrap` to isolate submissions."
)


@functools.cache
def bwrap_works() -> bool:
    """Whether bubblewrap is installed and can create the namespaces the sandbox needs on this machine."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return False
    probe = [bwrap, *_isolation_flags(), *_system_binds(), "--proc", "/proc", "--dev", "/dev", "true"]
    return subprocess.run(probe, capture_output=True, check=False).returncode == 0


SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/sys")


def _system_binds() -> list[str]:
    """Read-only binds of the system's folders that exist here (a merged-/usr link is bound as the link it is)."""
    binds = []
    for path in map(Path, SYSTEM):
        if path.is_symlink():
            binds += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            binds += ["--ro-bind", str(path), str(path)]
    return binds


def _isolation_flags() -> list[str]:
    # a user namespace in which it is `nobody`, with no capabilities; its own PID, IPC and UTS namespaces
    return [
        "--unshare-user",
        "--uid",
        "65534",
        "--gid",
        "65534",
        "--cap-drop",
        "ALL",
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--die-with-parent",
        "--new-session",
    ]


@dataclass(frozen=True)
class Sandbox:
    """What an untrusted process may see besides the system: ``writable`` is its own folder, ``readable`` paths are
    shown read-only, and a ``hidden`` folder inside a readable one is shown empty (the course folder, should a
    readable path lie inside it: the package installed in editable mode, the cache)."""

    writable: Path
    readable: tuple[Path, ...] = ()
    hidden: tuple[Path, ...] = ()

    def wrap(self, argv: Sequence[str]) -> list[str]:
        """``argv`` run inside the sandbox (or unchanged, with a warning, where bubblewrap does not work)."""
        if not bwrap_works():
            warnings.warn(NO_SANDBOX_WARNING, RuntimeWarning, stacklevel=2)
            return list(argv)
        cmd = [shutil.which("bwrap") or "bwrap", *_isolation_flags(), *_system_binds()]
        cmd += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
        for path in _existing(self.hidden):
            cmd += ["--tmpfs", str(path)]
        for path in _existing(self.readable):
            cmd += ["--ro-bind", str(path), str(path)]
        cmd += ["--bind", str(self.writable), str(self.writable), "--chdir", str(self.writable)]
        cmd += ["--setenv", "TMPDIR", "/tmp"]  # its own empty /tmp, whatever temp folder the grader uses
        return cmd + list(argv)


def _existing(paths: Sequence[Path]) -> list[Path]:
    """Resolved, existing, de-duplicated paths, parents before children (bind order matters)."""
    resolved = {Path(p).resolve() for p in paths if Path(p).exists()}
    return sorted(resolved, key=lambda p: len(p.parts))


def default_hidden(extra: Sequence[Path] = ()) -> tuple[Path, ...]:
    """Folders a submission must not read: the course (solutions, git history, runs), home and temp folders."""
    from .notebooks import course_root

    home = Path.home()
    return (course_root(), home, Path(tempfile.gettempdir()), Path("/tmp"), *extra)


def default_readable() -> tuple[Path, ...]:
    """What student code needs to run: the package, the Python environment, the data and the model cache."""
    from ..data import cache_dir, data_root

    package = Path(__file__).resolve().parents[1]
    return (package, Path(sys.prefix), Path(sys.base_prefix), data_root(), cache_dir())


def minimal_env(**extra: str) -> dict[str, str]:
    """The environment handed to student code: no grader secrets, tqdm off, the course's data and cache."""
    from ..data import cache_dir, data_root

    keep = ("PATH", "LANG", "LC_ALL", "OMP_NUM_THREADS", "CUDA_VISIBLE_DEVICES")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env.update(
        TQDM_DISABLE="1",
        PYTHONWARNINGS="ignore",
        UNLEARNLAB_DATA=str(data_root().resolve()),  # resolved: the sandbox binds the real folders, not links
        UNLEARNLAB_CACHE=str(cache_dir().resolve()),
        PYTHONDONTWRITEBYTECODE="1",
    )
    env.update(extra)
    return env


def run_group(cmd: Sequence[str], *, cwd: Path, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    """Run ``cmd`` in its own process group, killed as a whole when it ends or times out; never raises on failure."""
    proc = subprocess.Popen(
        list(cmd), cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc.pid)
        out, _ = proc.communicate()
        return subprocess.CompletedProcess(proc.args, -signal.SIGKILL, f"{out}\n[killed after {timeout:.0f} s]", None)
    finally:
        _kill_group(proc.pid)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, None)


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)

"""The files of a run folder: atomic writes, the folder lock, and the run's environment record.

Every file a run writes is replaced atomically (temporary file beside it, flush, fsync, ``os.replace``), so
a reader or a crash sees either the old or the new version, never a mix. A run folder is locked for the
whole run by an OS-level lock (``fcntl.flock``) on ``OUT/.lock``: a second run into the same folder is
refused while the first holds it, and the OS drops the lock when its holder dies, however it dies. The lock
file records the holder's pid, host, start time and command line; a lock file that still names a holder
after that holder died (``kill -9``, a crash, power loss) is detected and reported as stale, then taken
over. See ``docs/reliability.md``.

This module imports neither torch nor matplotlib at import time (the command line's error paths stay fast).
"""

from __future__ import annotations

import errno
import json
import os
import platform
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no flock; the pid record still detects most collisions
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = ".lock"

#: What a training run writes into its folder (besides the lock file and the checkpoint).
RUN_FILES = ("config.json", "log.jsonl", "log.csv", "result.json", "error.png")

#: The environment entries that a bit-exact resume needs unchanged (see :func:`environment`).
EXACT_RESUME_KEYS = ("torch", "threads", "cpu_capability", "device")


class RunLockedError(RuntimeError):
    """The run folder is locked by another live run."""


def atomic_write_bytes(path: str | Path, writer: Callable[[Any], None]) -> None:
    """Write a file atomically: ``writer(f)`` fills a temporary file beside ``path``, which is flushed,
    fsync'ed and renamed over ``path``. On any error the temporary file is removed and ``path`` keeps its
    previous content."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        with open(tmp, "wb") as f:
            writer(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, lambda f: f.write(text.encode()))


def atomic_savefig(save: Callable[[Path], Any], path: str | Path) -> Path:
    """Atomically produce ``path`` with ``save(tmp_path)`` (e.g. a matplotlib ``savefig``; the temporary
    name keeps the suffix, which matplotlib reads the format from)."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        save(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


class RunLock:
    """An exclusive lock on a run folder, held from :meth:`acquire` to :meth:`release` (or as a context
    manager). ``report(msg)`` receives the stale-lock notice (default: ``warnings.warn``).

    Raises :class:`RunLockedError` when another live process holds the folder; ``OSError`` when the folder
    cannot be created or the lock file cannot be opened.
    """

    def __init__(
        self, folder: str | Path, *, what: str = "run", report: Callable[[str], None] | None = None
    ) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_FILE
        self.what = what
        self.report = report
        self.stale: dict[str, Any] | None = None  # the dead holder's record, when the lock was stale
        self._fd: int | None = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        if self._fd is not None:
            raise RuntimeError(f"{self.path} is already held by this RunLock")
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError as exc:
                    if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                        raise RunLockedError(
                            f"cannot lock {self.path} ({exc.strerror}): the file system "
                            f"does not support file locks; use a local folder"
                        ) from exc
                    holder = _describe(_read_record(fd))
                    raise RunLockedError(
                        f"{self.folder} is in use by another {self.what} ({holder}); wait for it to finish "
                        f"or choose another output folder"
                    ) from None
            previous = _read_record(fd)
            if previous:
                self.stale = previous
                if fcntl is None and _pid_alive(previous):
                    raise RunLockedError(
                        f"{self.folder} is in use by another {self.what} ({_describe(previous)})"
                    )
                msg = (
                    f"stale lock {self.path} taken over: its holder ({_describe(previous)}) ended without "
                    f"releasing it (killed or crashed)"
                )
                if self.report is not None:
                    self.report(msg)
                else:
                    import warnings

                    warnings.warn(msg, RuntimeWarning, stacklevel=2)
            record = {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "command": sys.argv,
            }
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0)
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def release(self) -> None:
        """Empty the lock file (a clean release leaves no holder record) and drop the lock. The file itself
        stays: unlinking a flock'ed file lets two later runs lock two different files."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.ftruncate(fd, 0)
        finally:
            os.close(fd)  # closing the descriptor drops the flock


def _read_record(fd: int) -> dict[str, Any] | None:
    try:
        raw = os.pread(fd, 4096, 0).decode(errors="replace").strip()
    except OSError:
        return None
    if not raw:
        return None
    try:
        rec = json.loads(raw)
    except ValueError:
        return {"raw": raw[:200]}
    return rec if isinstance(rec, dict) else {"raw": raw[:200]}


def _describe(rec: dict[str, Any] | None) -> str:
    if not rec:
        return "holder unknown"
    if "pid" not in rec:
        return f"record {rec.get('raw', rec)!r}"
    cmd = rec.get("command")
    cmd_s = f", command {' '.join(map(str, cmd))[:120]!r}" if isinstance(cmd, list) else ""
    return f"pid {rec['pid']} on {rec.get('host', '?')}, started {rec.get('started', '?')}{cmd_s}"


def _pid_alive(rec: dict[str, Any]) -> bool:
    pid = rec.get("pid")
    if not isinstance(pid, int) or rec.get("host") != socket.gethostname():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def environment(device: str = "cpu") -> dict[str, Any]:
    """What a run's numbers depend on besides its configuration: library versions, the torch thread count
    and the CPU kernels torch dispatches to (``torch.backends.cpu.get_cpu_capability()``: AVX512, AVX2, …,
    whose reductions round differently). Bit-exact resume and reruns need :data:`EXACT_RESUME_KEYS` equal."""
    import numpy as np
    import torch

    from deeprelax import __version__

    env: dict[str, Any] = {
        "torch": str(torch.__version__),
        "threads": int(torch.get_num_threads()),
        "cpu_capability": str(torch.backends.cpu.get_cpu_capability()),
        "device": str(device),
        "numpy": str(np.__version__),
        "python": platform.python_version(),
        "deeprelax": str(__version__),
        "machine": platform.machine(),
        "host": socket.gethostname(),
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        env["cuda_device"] = str(torch.cuda.get_device_name(torch.device(device)))
        env["cuda"] = str(torch.version.cuda)
    return env


def environment_changes(saved: dict[str, Any] | None, now: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """The :data:`EXACT_RESUME_KEYS` whose values differ between ``saved`` and ``now``."""
    if not saved:
        return {}
    return {k: (saved.get(k), now.get(k)) for k in EXACT_RESUME_KEYS if saved.get(k) != now.get(k)}

"""One process per run directory at a time.

Two trainings writing into one run directory (two ``--overwrite`` runs, or ``--resume``
of a run that is still training) would each delete or overwrite the other's files. The
lock is an ``fcntl.flock`` on ``RUN_DIR/.lock``, which holds the owner's PID for the
error message. The kernel releases a flock when its process dies, even by SIGKILL, so a
lock file left behind by a dead process never blocks anyone (it is stale, and taken over).
The file itself stays in the run directory after the run.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from tweetcls.core.errors import UsageError

LOCK_FILE = ".lock"


class RunLock:
    """Hold ``run_dir``'s lock from ``acquire`` to ``release`` (or the end of the process)."""

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> "RunLock":
        self.run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise UsageError(f"run directory {self.run_dir} is in use by process {owner} (a training run or "
                             "resume); wait for it to finish or stop it, or choose another --run-name") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            # the file stays: unlinking it would let a process that opened it just before
            # lock a file nobody else can see any more
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

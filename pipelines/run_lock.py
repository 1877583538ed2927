"""One `segpipe run` per workdir at a time.

Everything a local run resumes from lives in its workdir (the embedded MLflow and Optuna
stores, the kfp outputs and cache, the trial checkpoints), so two runs sharing one would take
each other's running trials for interrupted ones. The lock is an OS advisory lock
(``fcntl.flock``) on ``<workdir>/run.lock``, held by the open file for the run's life: the
kernel drops it when the process ends, however it ends, so a killed run never leaves a stale
lock behind. The file keeps the holder's pid for the message the next run shows.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

LOCK_NAME = "run.lock"


class WorkdirError(OSError):
    """The workdir cannot be created or written (the message says which folder and why)."""


class WorkdirBusy(RuntimeError):
    """Another run holds the workdir's lock."""


def prepare_workdir(workdir: Path) -> None:
    """Create the workdir, or WorkdirError with the OS's reason."""
    try:
        workdir.mkdir(parents=True, exist_ok=True)  # an unwritable one fails opening the lock
    except OSError as err:
        reason = err.strerror or str(err)
        raise WorkdirError(f"cannot use {workdir}: {reason}") from None


@contextlib.contextmanager
def workdir_lock(workdir: Path) -> Iterator[None]:
    """Hold ``<workdir>/run.lock`` until the block ends, or WorkdirBusy naming the holder."""
    prepare_workdir(workdir)
    path = workdir / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as err:
        raise WorkdirError(f"cannot use {workdir}: {err.strerror or err}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise WorkdirBusy(
                f"another `segpipe run` is using the workdir {workdir} (pid {holder}); wait "
                f"for it to end or stop it, or give this config another workdir") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock; the file stays (unlinking it would race a waiter)

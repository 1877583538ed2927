"""Atomic writes: every artifact is written to a temporary sibling and renamed into place,
so a crash never leaves a half-written file or folder that a re-run would trust.

Files go through serving.atomic (the one implementation, which the packaged model carries);
folders and JSON are the data plane's own.

A folder's temporary sibling carries a marker file naming its target, host and process, so
a run killed before it could clean up (SIGKILL, power loss) leaves a folder that the next
run for the same target recognises as its own and removes once that process is gone.
Nothing without the marker, or owned by a live process, is ever touched.

Files and folders get the modes plain ``open()`` and ``mkdir()`` would give them (the user's
umask), not the private 0600/0700 of ``mkstemp``/``mkdtemp``."""

from __future__ import annotations

import glob
import json
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from serving.atomic import atomic_path, default_mode, signals_deferred, write_text

__all__ = ["atomic_dir", "atomic_path", "remove_stale_siblings", "scratch_beside",
           "signals_deferred", "write_json", "write_text"]

MARKER = ".segpipe-atomic-dir.json"


def _started(pid: int) -> str | None:
    """The process's start time (Linux), so a recycled pid is not taken for the owner."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _mark(folder: Path, target: Path) -> None:
    pid = os.getpid()
    (folder / MARKER).write_text(json.dumps({"target": target.name, "host": socket.gethostname(),
                                             "pid": pid, "started": _started(pid)}))


def _is_stale(folder: Path, target: Path) -> bool:
    try:
        owner = json.loads((folder / MARKER).read_text())
        pid = int(owner["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return False  # no marker of ours: not ours to remove
    if owner.get("target") != target.name or owner.get("host") != socket.gethostname():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, someone else's
    return owner.get("started") is not None and _started(pid) != owner["started"]


def remove_stale_siblings(path: str | os.PathLike[str]) -> list[Path]:
    """Remove temporary siblings of ``path`` left by killed runs for the same target."""
    target = Path(path)
    removed = []
    for sibling in target.parent.glob(f".{glob.escape(target.name)}.*"):
        if sibling.is_dir() and not sibling.is_symlink() and _is_stale(sibling, target):
            shutil.rmtree(sibling, ignore_errors=True)
            removed.append(sibling)
    return removed


@contextmanager
def atomic_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; on success it replaces ``path`` whole.
    Stale temporary siblings of earlier, killed runs for ``path`` are removed first."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_siblings(target)
    tmp = old = None
    try:
        with signals_deferred():  # a Ctrl-C as the folder is made must not leave it behind
            tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        os.chmod(tmp, default_mode(directory=True))  # mkdtemp's 0700 would hide the output
        _mark(tmp, target)
        yield tmp
        (tmp / MARKER).unlink(missing_ok=True)
        with signals_deferred():  # Ctrl-C between the two renames would leave no target
            if target.exists():
                old = target.with_name(f".{target.name}.old-{os.getpid()}")
                os.replace(target, old)
                _mark(old, target)
            os.replace(tmp, target)
    finally:
        # Also when a Ctrl-C deferred over the renames is raised as they end: the previous
        # results, already replaced, are not left behind as a hidden folder.
        for leftover in (tmp, old):
            if leftover is not None and leftover.exists():
                shutil.rmtree(leftover, ignore_errors=True)


@contextmanager
def scratch_beside(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a hidden, marked scratch folder beside ``path`` (``.<name>.scratch-*``),
    removed on leaving however the block ends; those of earlier, killed runs for ``path`` are
    removed first. For working data as large as the output's own (a source downloaded,
    extracted and tiled): it lands on the output's disk, not in the system's temp folder,
    which is often small and held in memory."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_siblings(target)
    tmp = None
    try:
        with signals_deferred():  # a Ctrl-C as the folder is made must not leave it behind
            tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.scratch-", dir=target.parent))
        _mark(tmp, target)
        yield tmp
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def write_json(path: str | os.PathLike[str], data: Any) -> None:
    """Write ``data`` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")


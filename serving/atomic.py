"""Atomic file writes: a temporary sibling renamed into place, so a crash never leaves a
half-written file. The one implementation: serving/ ships alone inside the MLflow model (no
components/), so components.atomic builds on this module rather than the other way round.

The renamed file gets the mode a plain ``open(path, "w")`` would give it (0666 less the
umask), not ``mkstemp``'s private 0600: masks, reports and requests are meant to be shared."""

from __future__ import annotations

import os
import signal
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process's umask, read without changing it where Linux allows (``/proc``); else
    set and restored under a lock (the umask is process-wide, so threads could race)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def default_mode(directory: bool = False) -> int:
    """The permission bits ``open()`` / ``mkdir()`` would give a new file / folder."""
    return (0o777 if directory else 0o666) & ~current_umask()


@contextmanager
def atomic_path(path: str | os.PathLike[str], suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success.

    ``suffix`` lets writers that pick a driver from the extension (rasterio, keras)
    see the right one, e.g. ``atomic_path(out, suffix=".tif")``.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = None
    try:
        with signals_deferred():  # a Ctrl-C as the file is made must not leave it behind
            fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.",
                                            suffix=suffix or target.suffix, dir=target.parent)
            tmp = Path(tmp_name)
            try:
                # A writer that truncates the file keeps this mode; one that recreates it
                # gets open()'s default, which is the same.
                os.fchmod(fd, default_mode())
            finally:
                os.close(fd)
        yield tmp
        os.replace(tmp, target)
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)


def write_text(path: str | os.PathLike[str], text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


@contextmanager
def signals_deferred() -> Iterator[None]:
    """SIGINT and SIGTERM arriving inside the block take effect when it ends: for a few
    steps that must happen together (two renames; making a temporary sibling and taking
    note of it for clean-up). Python handlers run in the main thread only, so elsewhere the
    block runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    kinds = (signal.SIGINT, signal.SIGTERM)
    previous = {kind: signal.signal(kind, lambda signum, _frame: caught.append(signum))
                for kind in kinds}
    try:
        yield
    finally:
        for kind, handler in previous.items():
            signal.signal(kind, signal.SIG_DFL if handler is None else handler)
        if caught:
            signal.raise_signal(caught[0])

"""A local run's own temporary folder, so a run leaves nothing in the system's /tmp.

kfp's local runner starts each task as ``sh -c 'program_path=$(mktemp -d); ...'`` and
writes the task's code to ``$program_path/ephemeral_component.py``, never removing it;
``kfp.local.init`` makes a ``kfp-workspace-*`` folder of its own; TensorFlow's autograph
writes ``__autograph_generated_file*.py`` modules it keeps. All of them honour ``TMPDIR``, so
the tasks get ``<workdir>/tmp/run-<pid>-*`` as theirs, and the folder goes when the run ends,
however it ends; one left by a run killed with SIGKILL is removed by the next run in that
workdir, once its process is gone, or when its pid is the new run's own (in a container,
``segpipe run`` may get the same pid every time; the workdir's lock, ``run_lock``, means no
live run but this one has a folder of that pid)."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

TEMP_DIR_NAME = "tmp"
_PREFIX = "run-"


def _owner(folder: Path) -> int | None:
    """The pid in a ``run-<pid>-*`` folder's name."""
    pid = folder.name[len(_PREFIX):].split("-", 1)[0]
    return int(pid) if folder.name.startswith(_PREFIX) and pid.isdigit() else None


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


@contextlib.contextmanager
def run_temp_folder(workdir: Path) -> Iterator[Path]:
    """A fresh ``<workdir>/tmp/run-<pid>-*`` folder, removed on leaving (with ``tmp`` when
    that is then empty); every other run's whose process is gone, or whose pid is ours (an
    earlier process of the same pid), is removed once it exists."""
    root = workdir / TEMP_DIR_NAME
    root.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f"{_PREFIX}{os.getpid()}-", dir=root))
    for other in root.iterdir():
        pid = _owner(other)
        if other != folder and pid is not None and (pid == os.getpid() or _gone(pid)):
            shutil.rmtree(other, ignore_errors=True)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        with contextlib.suppress(OSError):
            root.rmdir()  # only when empty

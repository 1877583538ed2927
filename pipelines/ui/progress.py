"""A run's progress from its files: the pipeline's tasks from the local runner's log, the
tail of the console, and what `segpipe submit` printed.

Logs grow for hours (TensorFlow and the executor are chatty), so the task log is followed:
each refresh reads only what was appended since the last one, whole lines only."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_STARTED = re.compile(r"Executing task '([^']+)'")
_FINISHED = re.compile(r"Task '([^']+)' finished with status (\w+)")
_PIPELINE = re.compile(r"Pipeline '([^']+)' finished with status (\w+)")
_RUN_FOLDER = re.compile(r"[\w-]+-\d{4}(-\d\d){5}-\d{6}")
_SUBMITTED = re.compile(r"^submitted run (\S+)\s*$")
#: The last line of a Python traceback: ``package.module.DataError: message``.
_EXCEPTION = re.compile(r"^\s*(?:[A-Za-z_][\w]*\.)*([A-Z]\w*(?:Error|Exception)): (.+)$")
_URL = re.compile(r"^(https?://\S+)\s*$")
#: Bytes of the console read for its tail: enough for the last screenful of lines.
TAIL_BYTES = 64 * 1024
SUCCESS = "SUCCESS"


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


@dataclass
class TaskStatus:
    """One pipeline task; a task run once per worker (tune-worker) counts each start. The
    local runner reports a ParallelFor's tasks finished once for the whole loop, so a task
    also counts as over once a later one has started (the pipeline is a chain)."""

    name: str
    started: int = 0
    statuses: list[str] = field(default_factory=list)
    followed: bool = False
    error: str | None = None  # the exception a failed task ended with, from its output

    @property
    def running(self) -> bool:
        return not self.followed and not self.failed and len(self.statuses) < self.started

    @property
    def failed(self) -> bool:
        return any(status != SUCCESS for status in self.statuses)

    def label(self, run_over: bool = False) -> str:
        """``run_over``: the run's command has ended, so a task still running was cut
        short."""
        if self.failed:
            return f"{self.name}: failed"
        times = f" ×{self.started}" if self.started > 1 else ""
        state = ("interrupted" if run_over else "running") if self.running else "done"
        return f"{self.name}{times}: {state}"


@dataclass
class TaskLog:
    """The tasks seen so far in one runner log, in order of first start."""

    path: Path
    offset: int = 0
    tasks: dict[str, TaskStatus] = field(default_factory=dict)
    pipeline_status: str | None = None
    last_exception: str | None = None

    def update(self) -> TaskLog:
        """Read what the log gained since the last call."""
        try:
            with open(self.path, "rb") as log:
                log.seek(self.offset)
                chunk = log.read()
        except FileNotFoundError:
            return self
        end = chunk.rfind(b"\n") + 1  # a partly written last line waits for the next call
        self.offset += end
        for line in strip_ansi(chunk[:end].decode(errors="replace")).splitlines():
            self._read(line)
        return self

    def _read(self, line: str) -> None:
        if match := _STARTED.search(line):
            for earlier in self.tasks.values():
                earlier.followed = earlier.followed or earlier.name != match[1]
            self._task(match[1]).started += 1
        elif match := _FINISHED.search(line):
            task = self._task(match[1])
            task.statuses.append(match[2])
            if match[2] != SUCCESS:
                task.error, self.last_exception = self.last_exception, None
        elif match := _EXCEPTION.match(line):
            self.last_exception = f"{match[1]}: {match[2]}"
        elif match := _PIPELINE.search(line):
            self.pipeline_status = match[2]

    def _task(self, name: str) -> TaskStatus:
        return self.tasks.setdefault(name, TaskStatus(name))

    @property
    def failed_task(self) -> TaskStatus | None:
        return next((t for t in self.tasks.values() if t.failed), None)


def newest_task_log(run_folder: Path) -> Path | None:
    """The local runner's log of the latest attempt (``<workdir>/logs/run-<time>.log``)."""
    logs = sorted((run_folder / "logs").glob("run-*.log"))
    return logs[-1] if logs else None


def kfp_run_name(run_folder: Path) -> str | None:
    """The local runner's name for the latest attempt: its folder under kfp-outputs/
    (``<pipeline>-<yyyy-mm-dd-hh-mm-ss-micro>``), made when the first task starts; other
    entries there (kfp's .kfp_cache, segpipe's step cache notes) are not runs."""
    root = run_folder / "kfp-outputs"
    names = sorted(p.name for p in root.iterdir() if p.is_dir()
                   and _RUN_FOLDER.fullmatch(p.name)) if root.is_dir() else []
    return names[-1] if names else None


def console_tail(path: Path, lines: int = 40) -> list[str]:
    """The last ``lines`` non-empty lines of the console, without colour codes."""
    try:
        with open(path, "rb") as console:
            console.seek(0, 2)
            size = console.tell()
            console.seek(max(0, size - TAIL_BYTES))
            text = console.read().decode(errors="replace")
    except FileNotFoundError:
        return []
    kept = [line.rstrip() for line in strip_ansi(text).splitlines() if line.strip()]
    if size > TAIL_BYTES and kept:
        kept = kept[1:]  # the first line read may be cut
    return kept[-lines:]


def error_lines(tail: list[str]) -> list[str]:
    """The command's own error message (`error: ...` to the end), if it printed one."""
    for index in range(len(tail) - 1, -1, -1):
        if tail[index].startswith("error: "):
            return tail[index:]
    return []


@dataclass(frozen=True)
class Submission:
    run_id: str
    url: str | None


def submission(console: Path) -> Submission | None:
    """What `segpipe submit` printed: ``submitted run <id>`` and the run's Kubeflow URL."""
    run_id = url = None
    for line in console_tail(console, lines=200):
        if match := _SUBMITTED.match(line):
            run_id = match[1]
        elif run_id and (match := _URL.match(line)):
            url = match[1]
    return Submission(run_id, url) if run_id else None

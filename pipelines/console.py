"""What a local run shows on the console: task progress and each step's own lines, while
the full task output (the executor's JSON, TensorFlow's start-up chatter, library warnings)
goes to the run's log file."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import sys
import threading
from collections.abc import Iterator
from typing import TextIO

from components.tracking import redact_url

# Kept in the log, not on the console: TensorFlow's start-up lines on a machine without a
# GPU, kfp's bookkeeping, MLflow's notices and links (the run's summary says what they say).
_CONSOLE_NOISE = ("absl::InitializeLog()", "cuda_platform.cc", "cudart_stub.cc",
                  "cuda_executor.cc", "cpu_feature_guard.cc", "computation_placer.cc",
                  "port.cc:", "This TensorFlow binary is optimized", "rebuild TensorFlow with",
                  "Streamed logs:", "has no outputs", "Cleaned up workspace",
                  "Successfully registered model", "Created version '",
                  # what MLflow prints when a run against a tracking server ends
                  "🏃 View run ", "🧪 View experiment at: ")
# A third-party library's Python warning ("/site-packages/x.py:74: UserWarning: ...").
_LIBRARY_WARNING = re.compile(r"site-packages/\S+:\d+: \w*Warning: ")
# MLflow's own log lines ("2026/11/29 18:22:38 INFO mlflow.store.db.utils: ...").
_MLFLOW_LOG = re.compile(r"^\s*\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \w+ mlflow")
# Optuna's INFO lines, but for those that say how a trial ended.
_OPTUNA_INFO = re.compile(r"^\s*\[I \d{4}-")
_TRIAL_ENDED = re.compile(r"\] Trial \d+ (finished with value|pruned)")
# What Python prints between two chained tracebacks.
_CHAINED_TRACEBACK = ("During handling of the above exception",
                      "The above exception was the direct cause")
# A step's own warnings, which the executor logs as "[KFP Executor <time> WARNING]: ...".
_EXECUTOR_WARNING = re.compile(r"\[KFP Executor [^\]]* (WARNING|ERROR)\]: ")
# Terminal colour and cursor sequences: kfp's local runner colours task names and states
# whatever its output is.
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def wants_colour(stream: TextIO) -> bool:
    """Colour only on a terminal, and never with NO_COLOR set (https://no-color.org)."""
    if os.environ.get("NO_COLOR"):
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError, OSError):  # no isatty, or a closed stream
        return False


def plain(text: str) -> str:
    """``text`` without terminal colour sequences."""
    return _ANSI.sub("", text)


class TaskOutputFilter(io.TextIOBase):
    """Stands in for stdout while kfp runs (its logger and the task output it streams both
    write there): every line to the log; to the console the task progress and the steps'
    own lines, without the executor's JSON dumps, Python tracebacks and bookkeeping. The
    log is plain text, and so is the console unless it is a terminal (``wants_colour``)."""

    def __init__(self, log: TextIO, console: TextIO, verbose: bool) -> None:
        self._log, self._console, self._verbose = log, console, verbose
        self._colour = wants_colour(console)
        self._state = threading.local()
        self._lock = threading.Lock()
        self._muted = False

    def mute(self) -> None:
        """The log only from now on: after an interruption, the tasks the runner still
        reports (stopped, retried, failed) would bury the line that says what happened."""
        self._muted = True

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        # A store's URL from the environment may hold a password (a task's error may
        # print it): neither the log nor the console shows it.
        text = redact_url(text)
        with self._lock:
            # kfp writes a log record or a task's line at once, escape sequences whole
            self._log.write(plain(text))
            self._log.flush()
            pending = getattr(self._state, "pending", "") + text
            *lines, self._state.pending = pending.split("\n")
            for line in lines:
                shown = self._verbose or self._shown(plain(line))
                if shown and not self._muted:
                    self._console.write((line if self._colour else plain(line)) + "\n")
            self._console.flush()
        return len(text)

    def _shown(self, line: str) -> bool:
        """Hide the executor's input/output JSON (from 'Got executor_input:' to the closing
        brace at the indentation of its opening one), its INFO lines, the outputs kfp lists
        after each task (up to the dashed separator) and the noise above; a step's own
        warnings stay. A traceback is hidden from its first line to its exception line
        (the first line back at its indentation): the run's last line names the failed
        step and that exception, and the log keeps the frames."""
        state = self._state
        stripped = line.strip()
        traceback_indent = getattr(state, "traceback_indent", None)
        if traceback_indent is not None:
            if _indent(line) <= traceback_indent and stripped:
                state.traceback_indent = None  # the exception line, the traceback's last
            return False
        if stripped.startswith(_CHAINED_TRACEBACK):
            return False
        if stripped == "Traceback (most recent call last):":
            state.traceback_indent = _indent(line)
            return False
        closing = getattr(state, "json_closing", None)
        if closing is not None:
            if line.rstrip() == closing:
                state.json_closing = None
            return False
        if getattr(state, "expect_json", False):
            state.expect_json = False
            if stripped.startswith("{"):
                indent = line[: len(line) - len(line.lstrip())]
                state.json_closing = indent + "}"
                return False
        if getattr(state, "in_outputs", False):
            state.in_outputs = not stripped.startswith("-----")
            return False
        if stripped.endswith("outputs:") and " - INFO - Task " in line:
            state.in_outputs = True
            return False
        if "[KFP Executor" in line:
            state.expect_json = "Got executor_input:" in line
            return bool(_EXECUTOR_WARNING.search(line))
        if getattr(state, "skip_next", False):  # the source line a library warning quotes
            state.skip_next = False
            return False
        if _LIBRARY_WARNING.search(line):
            state.skip_next = True
            return False
        if _MLFLOW_LOG.match(line) or stripped.startswith("-----"):
            return False
        if _OPTUNA_INFO.match(line) and not _TRIAL_ENDED.search(line):
            return False
        return bool(stripped) and not any(noise in line for noise in _CONSOLE_NOISE)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


@contextlib.contextmanager
def tee_task_output(log: TextIO, console: TextIO,
                    verbose: bool) -> Iterator[TaskOutputFilter]:
    original = sys.stdout
    sys.stdout = shown = TaskOutputFilter(log, console, verbose)  # type: ignore[assignment]
    try:
        yield shown
    finally:
        sys.stdout = original


@contextlib.contextmanager
def report_cache_hits() -> Iterator[None]:
    """kfp logs cache hits at INFO outside its own log context, where the root logger would
    drop them; show them, since a reused step is news to whoever expected a re-run."""
    class _CacheHits(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            return "cache hit" in record.getMessage()

    handler = logging.StreamHandler(sys.stdout)
    handler.addFilter(_CacheHits())
    handler.setFormatter(logging.Formatter("%(asctime)s - %(message)s (inputs unchanged; "
                                           "--no-cache re-runs it)",
                                           datefmt="%H:%M:%S"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(level)

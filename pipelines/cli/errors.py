"""How every ``segpipe`` command ends on an error: one line on stderr, no traceback."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

import typer


def interrupted(kept: str, signum: int = signal.SIGINT) -> typer.Exit:
    """How every command stopped by Ctrl-C (exit 130) or SIGTERM (143) ends: one line
    ``error: interrupted by SIGINT; <kept>``, where ``kept`` says what it left (nothing
    written to X; X unchanged; run again to resume)."""
    name = signal.Signals(signum).name
    return fail(f"interrupted by {name}; {kept}", 128 + signum)


def fail(problem: object, code: int = 2) -> typer.Exit:
    """Print ``error: <problem>`` and return the Exit to raise: code 2 for a command-line or
    config value that cannot be used (refused before any work), 1 for a failure of the
    store, the model, the server or the run."""
    typer.echo(f"error: {problem}", err=True)
    return typer.Exit(code)


@contextlib.contextmanager
def cleanup_on_sigterm() -> Iterator[None]:
    """SIGTERM (``kill``, a supervisor, a job's timeout) ends the command as an exception,
    exit code 143, so its ``finally`` blocks run (a scratch folder beside the output is
    removed) as they do for Ctrl-C; Python's default would end the process without them."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers belong to the main thread
        return

    def terminate(signum: int, _frame: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second one must not cut the cleanup
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)

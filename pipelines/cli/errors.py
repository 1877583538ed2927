"""How every ``segpipe`` command ends on an error: one line on stderr, no traceback."""

from __future__ import annotations

import typer


def fail(problem: object, code: int = 2) -> typer.Exit:
    """Print ``error: <problem>`` and return the Exit to raise: code 2 for a command-line or
    config value that cannot be used (refused before any work), 1 for a failure of the
    store, the model, the server or the run."""
    typer.echo(f"error: {problem}", err=True)
    return typer.Exit(code)

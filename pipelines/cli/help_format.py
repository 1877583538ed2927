"""Help rendering: flags show as flags.

Typer's rich help prints a type column for every option, flags included (``--tta <bool>``,
``--help <bool>``), as if they took a value. Its plain-text help leaves the column out for
flags; these command classes do the same for the rich one by giving each flag an empty
metavar (which the rich renderer prints instead of the type; click ignores a flag's
metavar everywhere else).

Docstrings are wrapped at 96 columns in the source; the rich renderer keeps those line
breaks and then wraps again at the terminal's width, leaving ragged half-lines on an
80-column terminal. Each paragraph is joined into one line so the renderer wraps it once."""

from __future__ import annotations

import inspect
from typing import Any

from typer.core import TyperCommand, TyperGroup


def _show_flags_as_flags(params: list[Any]) -> list[Any]:
    for param in params:
        if (getattr(param, "is_flag", False) or getattr(param, "count", False)) \
                and param.metavar is None:
            param.metavar = ""
    return params


def reflow(text: str | None) -> str | None:
    """Paragraphs (blank-line separated) of ``text`` each on one line."""
    if not text:
        return text
    paragraphs = inspect.cleandoc(text).split("\n\n")
    return "\n\n".join(" ".join(line.strip() for line in p.splitlines()) for p in paragraphs)


class _ReadableHelp:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.help = reflow(self.help)

    def get_params(self, ctx: Any) -> list[Any]:
        return _show_flags_as_flags(super().get_params(ctx))


class Command(_ReadableHelp, TyperCommand):
    pass


class Group(_ReadableHelp, TyperGroup):
    def invoke(self, ctx: Any) -> Any:
        """A command that does not say itself what Ctrl-C left still ends with the one
        'interrupted' line and exit code 130 (Typer's own: 130, silently)."""
        from pipelines.cli.errors import interrupted

        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            raise interrupted("stopped before it finished") from None

"""Help rendering: flags show as flags.

Typer's rich help prints a type column for every option, flags included (``--tta <bool>``,
``--help <bool>``), as if they took a value. Its plain-text help leaves the column out for
flags; these command classes do the same for the rich one by giving each flag an empty
metavar (which the rich renderer prints instead of the type; click ignores a flag's
metavar everywhere else)."""

from __future__ import annotations

from typing import Any

from typer.core import TyperCommand, TyperGroup


def _show_flags_as_flags(params: list[Any]) -> list[Any]:
    for param in params:
        if (getattr(param, "is_flag", False) or getattr(param, "count", False)) \
                and param.metavar is None:
            param.metavar = ""
    return params


class Command(TyperCommand):
    def get_params(self, ctx: Any) -> list[Any]:
        return _show_flags_as_flags(super().get_params(ctx))


class Group(TyperGroup):
    def get_params(self, ctx: Any) -> list[Any]:
        return _show_flags_as_flags(super().get_params(ctx))

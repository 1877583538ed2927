"""Command-line flags generated from options models.

A setting is defined once, in its step's pydantic model: the flag's name is the field's name
(``patch_size`` -> ``--patch-size``, or ``json_schema_extra={"flag": "--split"}`` on the
field), its help is the field's description and default, and its value is validated by the
model together with the config file's, so the CLI restates nothing. Values are read as
numbers, booleans, ``none``, JSON/YAML flow lists and mappings (``"[0.7, 0.15, 0.15]"``,
``"{255: 1}"``), or left as text; list fields take the flag once per item, or a comma-separated
list; mapping fields take it once per ``KEY=VALUE`` pair (``--class-alias tea=class_1``), or a
flow mapping."""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import typer
import yaml
from pydantic import BaseModel, ValidationError


@dataclass(frozen=True)
class Flag:
    section: str  # the options model's key, e.g. "tile"
    field: str  # e.g. "patch_size"
    name: str  # e.g. "--patch-size"
    kind: str  # "value", "list" or "mapping" (repeatable), or "switch" (--x and --no-x)

    @property
    def parameter(self) -> str:
        return f"{self.section}__{self.field}"

    @property
    def negative(self) -> str:
        """A switch's ``--no-x``, a flag of its own (see ``with_model_flags``)."""
        return f"--no-{self.name[2:]}"


def _kind(annotation: Any) -> str:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
    else:
        members = [annotation]
    if members == [bool]:
        return "switch"
    # Only a field that is nothing but a list repeats; a palette that may also be a word
    # ("auto") takes one value.
    if len(members) == 1 and typing.get_origin(members[0]) is list:
        return "list"
    if len(members) == 1 and typing.get_origin(members[0]) is dict:
        return "mapping"
    return "value"


def model_flags(sections: dict[str, type[BaseModel]]) -> list[Flag]:
    flags, seen = [], {}
    for section, model in sections.items():
        for field_name, field in model.model_fields.items():
            extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
            name = str(extra.get("flag") or "--" + field_name.replace("_", "-"))
            if name in seen:
                raise ValueError(f"{name} would stand for {seen[name]} and {section}."
                                 f"{field_name}; give one a json_schema_extra flag")
            seen[name] = f"{section}.{field_name}"
            flags.append(Flag(section, field_name, name, _kind(field.annotation)))
    return flags


def parse_value(text: str) -> Any:
    """A flag's text as the value a YAML config would hold ('#RRGGBB' stays text)."""
    stripped = text.strip()
    if stripped[:1] in ("[", "{"):
        return yaml.safe_load(stripped)
    lowered = stripped.lower()
    if lowered in ("none", "null"):
        return None
    if lowered in ("true", "false"):
        return lowered == "true"
    for cast in (int, float):
        try:
            return cast(stripped)
        except ValueError:
            pass
    if "," in stripped:
        return [parse_value(part) for part in stripped.split(",")]
    return text


def parse_mapping(flag: str, items: list[str]) -> dict | None:
    """A mapping flag's items (``KEY=VALUE`` pairs or flow mappings ``{key: value}``) as one
    mapping; ``none`` alone unsets the field. Keys and values of pairs stay text: the model
    reads them as its field's types. A key given twice with two values is refused."""
    if [item.strip().lower() for item in items] in (["none"], ["null"]):
        return None
    merged: dict = {}
    for item in items:
        text = item.strip()
        if text.startswith("{"):
            try:
                pairs = yaml.safe_load(text)
            except yaml.YAMLError:
                pairs = None
            if not isinstance(pairs, dict):
                raise typer.BadParameter(f"{flag} {item!r}: not a mapping ({{key: value}})")
        else:
            key, equals, value = text.partition("=")
            if not equals or not key.strip() or not value.strip():
                raise typer.BadParameter(f"{flag} {item!r}: expected KEY=VALUE (or a "
                                         f"mapping, {{key: value}})")
            pairs = {key.strip(): value.strip()}
        for key, value in pairs.items():
            if key in merged and merged[key] != value:
                raise typer.BadParameter(f"{flag}: {key} is given twice ({key}={merged[key]}, "
                                         f"{key}={value})")
            merged[key] = value
    return merged


def _help(model: type[BaseModel], field_name: str) -> str:
    field = model.model_fields[field_name]
    default = ("built in" if field.default_factory is not None
               else "unset" if field.default is None else repr(field.default))
    # Parentheses, not brackets: Rich would read "[default: ...]" as markup and drop it.
    return f"{field.description or field_name.replace('_', ' ')} (default: {default})"


def _metavar(annotation: Any) -> str:
    members = ([a for a in typing.get_args(annotation) if a is not type(None)]
               if typing.get_origin(annotation) in (typing.Union, types.UnionType)
               else [annotation])
    names = []
    for member in members:
        if typing.get_origin(member) is typing.Literal:
            names += [str(v) for v in typing.get_args(member)]
        elif member in (int, float, str):
            names.append({int: "INT", float: "NUMBER", str: "TEXT"}[member])
        elif typing.get_origin(member) in (list, tuple):
            names.append("LIST")
        elif typing.get_origin(member) is dict:
            names.append("MAPPING")
        else:
            names.append("VALUE")
    return "|".join(dict.fromkeys(names))


_OFF = "__off"  # the parameter of a switch's --no-x


def with_model_flags(sections: dict[str, type[BaseModel]]) -> Callable[[Callable], Callable]:
    """Give a Typer command one option per field of ``sections``' models (help grouped by
    section; a boolean field gets ``--x`` and ``--no-x``). The command receives the given
    ones as ``overrides``: ``{section: {field: value}}``, to merge over the config file
    before validating."""
    flags = model_flags(sections)

    def decorate(command: Callable) -> Callable:
        # Resolved in the command's own module: its string annotations would not resolve here.
        hints = typing.get_type_hints(command)
        signature = inspect.signature(command)
        own = [p.replace(annotation=hints.get(p.name, p.annotation))
               for p in signature.parameters.values() if p.name != "overrides"]
        generated, annotations = [], {k: v for k, v in hints.items() if k != "overrides"}
        for flag in flags:
            model = sections[flag.section]
            annotation = {"switch": bool | None, "list": list[str] | None,
                          "mapping": list[str] | None, "value": str | None}[flag.kind]
            field = model.model_fields[flag.field]
            panel = f"{flag.section} options"
            option = typer.Option(None, flag.name, help=_help(model, flag.field),
                                  metavar=None if flag.kind == "switch"
                                  else "KEY=VALUE" if flag.kind == "mapping"
                                  else _metavar(field.annotation),
                                  rich_help_panel=panel, show_default=False)
            generated.append(inspect.Parameter(flag.parameter, inspect.Parameter.KEYWORD_ONLY,
                                               default=option, annotation=annotation))
            annotations[flag.parameter] = annotation
            if flag.kind == "switch":
                # --no-x on a row of its own: as a --x/--no-x pair, the rich help gives every
                # option of the panel a column as wide as the longest --no-x, squeezing the
                # help text of all of them into a sliver.
                negative = typer.Option(None, flag.negative, help=f"{flag.name} off",
                                        rich_help_panel=panel, show_default=False)
                generated.append(inspect.Parameter(
                    flag.parameter + _OFF, inspect.Parameter.KEYWORD_ONLY, default=negative,
                    annotation=bool | None))
                annotations[flag.parameter + _OFF] = bool | None

        def wrapper(**kwargs: Any) -> Any:
            overrides: dict[str, dict[str, Any]] = {}
            for flag in flags:
                given = kwargs.pop(flag.parameter)
                if flag.kind == "switch" and kwargs.pop(flag.parameter + _OFF):
                    if given:
                        raise typer.BadParameter(f"give {flag.name} or {flag.negative}, "
                                                 "not both")
                    given = False
                if given is None or (flag.kind in ("list", "mapping") and not given):
                    continue
                if flag.kind == "list":
                    value: Any = []
                    for item in given:
                        parsed = parse_value(item)
                        value.extend(parsed if isinstance(parsed, list) else [parsed])
                elif flag.kind == "mapping":
                    value = parse_mapping(flag.name, given)
                elif flag.kind == "switch":
                    value = given
                else:
                    value = parse_value(given)
                overrides.setdefault(flag.section, {})[flag.field] = value
            return command(overrides=overrides, **kwargs)

        wrapper.__name__, wrapper.__doc__ = command.__name__, command.__doc__
        wrapper.__signature__ = signature.replace(parameters=own + generated)  # type: ignore[attr-defined]
        wrapper.__annotations__ = annotations
        return wrapper

    return decorate


def flag_names(sections: dict[str, type[BaseModel]]) -> dict[tuple[str, str], str]:
    """(section, field) -> its flag, to name the flag in a validation error."""
    return {(f.section, f.field): f.name for f in model_flags(sections)}


def flagged_problems(err: ValidationError, sections: dict[str, type[BaseModel]], origin: str,
                     *, section: str | None = None, prefix: str = "") -> list[str]:
    """One line per problem of ``err`` (as ``format_validation_error`` words it, from
    ``origin``), each followed by the flag that set the field: ``(--patch-size)``. ``err``
    is of ``section``'s model alone, or, without ``section``, of a model whose fields are
    the sections (the config's data section)."""
    from pipelines.config_file import format_validation_error

    names = flag_names(sections)
    lines = []
    for line, problem in zip(format_validation_error(origin, err, prefix).splitlines(),
                             err.errors(), strict=True):
        loc = tuple(str(part) for part in problem["loc"])
        flag = names.get((section, loc[0]) if section and loc else loc[:2])
        lines.append(f"{line} ({flag})" if flag else line)
    return lines


def setting_named(err: Exception, sections: dict[str, type[BaseModel]], *, as_flag: bool,
                  prefix: str = "") -> str:
    """A data error's message with the setting that would fix it (``SettingError``) named
    as this front end names it: its flag (``--vector-layer``), or its place in the config
    file (``data.ingest.vector_layer`` with ``prefix`` "data"); other errors as they are."""
    from components.raster import SettingError

    if not isinstance(err, SettingError):
        return str(err)
    owners = [s for s, model in sections.items() if err.field in model.model_fields]
    if len(owners) != 1:
        return str(err)
    if as_flag:
        flags = flag_names(sections)
        return err.named(flags[(owners[0], err.field)],
                         {field: flags[(owners[0], field)] for field in err.others})
    place = [p for p in (prefix, owners[0]) if p]
    return err.named(".".join([*place, err.field]),
                     {field: ".".join([*place, field]) for field in err.others})

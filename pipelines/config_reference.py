"""The configuration reference (docs/configuration.md), generated from the options models.

A setting is defined once, in the pydantic model of the step that uses it; this page is
printed from those models (field names, types, defaults, checks, descriptions), so it cannot
drift from the code. Regenerate it after changing a model::

    python -m pipelines.config_reference > docs/configuration.md

tests/pipelines/test_config_reference.py fails while the committed page is stale.
"""

from __future__ import annotations

import json
import types
import typing
from pathlib import Path
from typing import Any

import annotated_types
import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import to_jsonable_python

from components.tune_options import train_field_notes
from components.tune_space import SearchSpace, built_in_spaces
from pipelines.config import PipelineConfig

CONFIGS_DIR = Path(__file__).resolve().parent / "configs"
COMMAND = "python -m pipelines.config_reference > docs/configuration.md"

_INTRO = """\
# Configuration reference

<!-- Generated from the options models by `{command}`; do not edit by hand. -->

A run is described by one YAML file, validated when it is loaded: a typo or a bad value
is an error naming the file and the field
(`my.yaml: tuning.n_trials: Input should be greater than 0`), every section refuses keys it
does not know, and a key given twice in one mapping is an error naming its line. Each
section *is* the options model of the step that uses it (named below): the same fields,
defaults and checks apply to `segpipe run`, `segpipe submit` (one Kubeflow run-form
parameter per section), and, for the `data` sections, to `segpipe prepare`'s options
(`--patch-size` for `data.tile.patch_size`).

Relative local paths (`source`, `workdir`, a classes or palette file) resolve against the
config file's folder. Fields left out keep their defaults; `unset` is YAML `null`.
Start from one of the examples at the end of this page.
"""


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def type_name(annotation: Any) -> str:
    """A field's type as a config author reads it: ``int``, ``list of text``,
    ``scene | block``, ``number or unset``."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        members = [a for a in args if a is not type(None)]
        text = " or ".join(dict.fromkeys(type_name(m) for m in members))
        return f"{text} or unset" if len(members) < len(args) else text
    if origin is typing.Literal:
        return " \\| ".join(f"`{json.dumps(v) if not isinstance(v, str) else v}`"
                            for v in args)
    if origin in (list, tuple):
        if origin is tuple and args and args[-1] is not Ellipsis:
            return f"{len(args)} × {type_name(args[0])}"
        if not args:
            return "list"
        item = type_name(args[0])
        return f"list of ({item})" if " or " in item else f"list of {item}"
    if origin is dict:
        return f"mapping {type_name(args[0])} → {type_name(args[1])}" if args else "mapping"
    if _is_model(annotation):
        return annotation.__name__
    return {int: "int", float: "number", str: "text", bool: "true/false", Path: "path",
            type(None): "unset", typing.Any: "any"}.get(annotation, str(annotation))


_LONG_DEFAULT = 80  # characters; longer defaults are printed in full below the table


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "**required**"
    value = field.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        return "see below"
    value = to_jsonable_python(value)  # paths, tuples, models inside containers
    if value is None:
        return "unset"
    if value in ([], {}):
        return f"`{json.dumps(value)}`"
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    text = text.removesuffix("...").strip()
    if len(text) > _LONG_DEFAULT:
        return "in full below"
    return f"`{text}`".replace("|", "\\|")


_CHECKS = {annotated_types.Gt: ("gt", ">"), annotated_types.Ge: ("ge", "≥"),
           annotated_types.Lt: ("lt", "<"), annotated_types.Le: ("le", "≤")}


def _checks(field: FieldInfo) -> str:
    found = []
    for item in field.metadata:
        for kind, (attribute, sign) in _CHECKS.items():
            if isinstance(item, kind):
                found.append(f"{sign} {getattr(item, attribute)}")
        if isinstance(item, annotated_types.MinLen) and item.min_length:
            found.append("not empty" if item.min_length == 1 else f"length ≥ {item.min_length}")
        if isinstance(item, annotated_types.MaxLen):
            found.append(f"length ≤ {item.max_length}")
        pattern = getattr(item, "pattern", None)
        if pattern:
            found.append(f"matches `{pattern}`")
    return "; ".join(found)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


#: Sections whose fields another section's validator refuses: section -> field -> why.
FIELD_NOTES = {"tuning.train": train_field_notes}


def _table(model: type[BaseModel], path: str, sections: dict[str, type[BaseModel]]) -> str:
    rows = ["| field | type | default | description |", "| --- | --- | --- | --- |"]
    notes = FIELD_NOTES[path]() if path in FIELD_NOTES else {}
    for name, field in model.model_fields.items():
        dotted = f"{path}.{name}" if path else name
        description = field.description or ""
        if name in notes:
            description = f"{notes[name]}. {description}" if description else notes[name]
        if dotted in sections:
            description = f"{description} (section [`{dotted}`](#{_anchor(dotted)}))".strip()
        checks = _checks(field)
        if checks:
            description = f"{description} ({checks})" if description else f"({checks})"
        rows.append(f"| `{name}` | {type_name(field.annotation)} | {_default(field)} | "
                    f"{_cell(description) or '—'} |")
    return "\n".join(rows)


def _anchor(dotted: str) -> str:
    return dotted.replace(".", "").lower()  # GitHub's heading anchors drop the dots


def _is_section(annotation: Any) -> bool:
    """A nested model with a default for every field: a section of the file."""
    return _is_model(annotation) and not any(f.is_required()
                                             for f in annotation.model_fields.values())


def _section_model(annotation: Any) -> type[BaseModel] | None:
    """The section model a field holds, also when the field may be unset (``X | None``)."""
    if _is_section(annotation):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        models = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(models) == 1 and _is_section(models[0]):
            return models[0]
    return None


def sections() -> dict[str, type[BaseModel]]:
    """Every section of the config (nested options model), by dotted path, in file order."""
    found: dict[str, type[BaseModel]] = {}

    def walk(model: type[BaseModel], path: str) -> None:
        for name, field in model.model_fields.items():
            section = _section_model(field.annotation)
            if section is not None:
                dotted = f"{path}.{name}" if path else name
                found[dotted] = section
                walk(section, dotted)

    walk(PipelineConfig, "")
    return found


def _value_models(model: type[BaseModel]) -> list[type[BaseModel]]:
    """Models a section's fields hold that are not sections (a search space's dimensions)."""
    found: list[type[BaseModel]] = []

    def visit(annotation: Any) -> None:
        if _is_model(annotation) and not _is_section(annotation):
            if annotation not in found:
                found.append(annotation)
            return
        for arg in typing.get_args(annotation):
            visit(arg)

    for field in model.model_fields.values():
        visit(field.annotation)
    return found


def _doc(model: type[BaseModel]) -> str:
    doc = model.__doc__ or ""
    if not doc or doc.startswith(("Usage docs:", "!!! abstract")):  # pydantic's own
        return ""
    return " ".join(doc.replace("``", "`").split())


def _yaml_block(value: Any) -> str:
    return ("```yaml\n" + yaml.safe_dump(value, sort_keys=False, default_flow_style=None,
                                        width=96).rstrip() + "\n```")


#: Sections whose defaults depend on the machine: where each applies -> its value.
_BUILT_IN = {SearchSpace: built_in_spaces}


def render() -> str:
    """docs/configuration.md."""
    found = sections()
    parts = [_INTRO.format(command=COMMAND), "## Top level\n",
             _table(PipelineConfig, "", found)]
    described: set[type[BaseModel]] = set(found.values())
    for dotted, model in found.items():
        parts.append(f"\n## {dotted}\n")
        doc = _doc(model)
        parts.append(f"`{model.__module__}.{model.__name__}`" + (f": {doc}" if doc else "")
                     + "\n")
        parts.append(_table(model, dotted, found))
        for inner in _value_models(model):
            if inner in described:
                continue
            described.add(inner)
            inner_doc = _doc(inner)
            parts.append(f"\n### {inner.__name__} (inside `{dotted}`)\n")
            if inner_doc:
                parts.append(inner_doc + "\n")
            parts.append(_table(inner, "", {}))
        long = [name for name, field in model.model_fields.items()
                if _default(field) in ("in full below", "see below")
                and f"{dotted}.{name}" not in found]
        if long and model in _BUILT_IN:
            for where, value in _BUILT_IN[model]().items():
                parts.append(f"\nThe built-in `{dotted}` {where}:\n\n"
                             + _yaml_block(value.model_dump(mode="json", exclude_none=True)))
        elif long:
            defaults = model().model_dump(mode="json", exclude_none=True, include=set(long))
            parts.append(f"\nDefaults of `{dotted}` in full:\n\n" + _yaml_block(defaults))
    parts.append("\n## Examples\n")
    for path in sorted(CONFIGS_DIR.glob("*.yaml")):
        parts.append(f"`pipelines/configs/{path.name}`:\n\n```yaml\n"
                     f"{path.read_text().rstrip()}\n```\n")
    return "\n".join(parts).rstrip() + "\n"


if __name__ == "__main__":
    print(render(), end="")

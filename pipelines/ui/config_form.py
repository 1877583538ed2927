"""The Train page's form, generated from the pipeline config's models: one widget per field,
its kind, default, bounds, choices and help read from the options model that defines the
field, and the widgets' values turned back into the config mapping that
``pipelines.config.parse_config`` validates, with the same messages as a YAML file.

Streamlit-free, so the mapping from models to widgets and back is tested on its own."""

from __future__ import annotations

import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import annotated_types
import yaml
from pydantic import BaseModel, TypeAdapter
from pydantic.fields import FieldInfo

from pipelines.config_file import ConfigError, load_yaml

Kind = Literal["bool", "int", "float", "choice", "text", "yaml"]
FORM_ORIGIN = "form"


@dataclass(frozen=True)
class FormField:
    """One widget: ``path`` into the config (("data", "tile", "patch_size")), the widget
    ``kind``, the model's default in its JSON form, and what the model allows."""

    path: tuple[str, ...]
    kind: Kind
    default: Any
    optional: bool = False
    required: bool = False
    choices: tuple[Any, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    help: str | None = None

    @property
    def key(self) -> str:
        return ".".join(self.path)

    @property
    def label(self) -> str:
        return self.path[-1].replace("_", " ")

    def widget_default(self) -> Any:
        """What the widget starts with: YAML text for structured values, "" for an unset
        text."""
        if self.kind == "yaml":
            return "" if self.default is None else dump_flow(self.default)
        if self.kind == "text":
            return "" if self.default is None else str(self.default)
        return self.default


def dump_flow(value: Any) -> str:
    """One line of YAML flow style: ``[0.7, 0.15, 0.15]``, ``{ce: 0.5, dice: 0.5}``."""
    return yaml.safe_dump(value, default_flow_style=True, width=10_000).strip().removesuffix(
        "\n...").strip()


def _without_none(annotation: Any) -> tuple[Any, bool]:
    if get_origin(annotation) in (Union, types.UnionType):
        args = get_args(annotation)
        rest = tuple(a for a in args if a is not type(None))
        if len(rest) < len(args):
            return (rest[0] if len(rest) == 1 else Union[rest]), True  # noqa: UP007
    return annotation, False


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _kind(annotation: Any) -> Kind:
    if annotation is bool:
        return "bool"
    if annotation is int:
        return "int"
    if annotation is float:
        return "float"
    if get_origin(annotation) is Literal:
        return "choice"
    if isinstance(annotation, type) and issubclass(annotation, str | Path):
        return "text"
    return "yaml"  # lists, dicts, tuples, unions of them: typed as YAML


def _bounds(field: FieldInfo, kind: Kind) -> tuple[float | None, float | None]:
    """Inclusive bounds for a number widget; a strict float bound is left to validation."""
    low = high = None
    for item in field.metadata:
        if isinstance(item, annotated_types.Ge):
            low = item.ge
        elif isinstance(item, annotated_types.Le):
            high = item.le
        elif isinstance(item, annotated_types.Gt) and kind == "int":
            low = item.gt + 1
        elif isinstance(item, annotated_types.Lt) and kind == "int":
            high = item.lt - 1
    return low, high


def _json_default(field: FieldInfo) -> Any:
    default = field.get_default(call_default_factory=True)
    if default is None:
        return None
    return TypeAdapter(field.annotation).dump_python(default, mode="json")


def form_fields(model: type[BaseModel], prefix: tuple[str, ...] = (),
                skip: frozenset[str] = frozenset()) -> list[FormField]:
    """Every leaf field of ``model`` (nested option models walked into), in the models'
    order; a dotted path in ``skip`` (a field or a whole section) gets no widget."""
    fields: list[FormField] = []
    for name, field in model.model_fields.items():
        path = (*prefix, name)
        if ".".join(path) in skip:
            continue
        annotation, optional = _without_none(field.annotation)
        if _is_model(annotation) and not optional:
            fields += form_fields(annotation, path, skip)
            continue
        kind = _kind(annotation)
        choices = tuple(get_args(annotation)) if kind == "choice" else ()
        if kind == "bool" and optional:  # a checkbox has no "unset"
            kind, choices = "choice", (True, False)
        low, high = _bounds(field, kind) if kind in ("int", "float") else (None, None)
        fields.append(FormField(
            path=path, kind=kind, default=None if field.is_required() else _json_default(field),
            optional=optional, required=field.is_required(), choices=choices, minimum=low,
            maximum=high, help=field.description))
    return fields


class FormError(ValueError):
    """A widget's text is not YAML; the message names the field like a ConfigError does."""


def widget_value(field: FormField, raw: Any) -> Any:
    """A widget's value as the config wants it: YAML text parsed, an empty optional text
    None."""
    if field.kind == "yaml":
        text = (raw or "").strip()
        if not text:
            return None
        try:
            return load_yaml(text, f"{FORM_ORIGIN}: {field.key}")
        except ConfigError as err:
            raise FormError(str(err).splitlines()[0]) from None
    if field.kind == "text":
        text = (raw or "").strip()
        return None if not text and field.optional else text
    return raw


def set_path(mapping: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for part in path[:-1]:
        mapping = mapping.setdefault(part, {})
    mapping[path[-1]] = value


def get_path(mapping: dict[str, Any], path: tuple[str, ...], missing: Any = None) -> Any:
    for part in path:
        if not isinstance(mapping, dict) or part not in mapping:
            return missing
        mapping = mapping[part]
    return mapping


def config_mapping(fields: list[FormField], raw: dict[str, Any]) -> dict[str, Any]:
    """The config mapping from the widgets' values (``raw``: field key -> widget value):
    only what differs from the model's default goes in, so the written config stays short
    and the defaults stay defined in one place. Every YAML problem is reported at once."""
    mapping: dict[str, Any] = {}
    problems = []
    for field in fields:
        if field.key not in raw:
            continue
        try:
            value = widget_value(field, raw[field.key])
        except FormError as err:
            problems.append(str(err))
            continue
        if field.required or value != field.default:
            set_path(mapping, field.path, value)
    if problems:
        raise FormError("\n".join(problems))
    return mapping

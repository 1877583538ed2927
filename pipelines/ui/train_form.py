"""The Train page's form in Streamlit: the common fields up front, every other field of the
pipeline config in an expander per section, the search space edited per dimension. Returns
the config mapping for ``pipelines.config.parse_config``."""

from __future__ import annotations

import math
from typing import Any

import streamlit as st

from pipelines.config import PipelineConfig
from pipelines.ui import search_form
from pipelines.ui.config_form import (
    FormError,
    FormField,
    config_mapping,
    form_fields,
    set_path,
)

KEY = "segpipe.train.f."
#: Up front, with the words a user looks for; everything else sits in its section.
COMMON = {"source": "Source",
          "data.ingest.palette": "Palette", "data.tile.patch_size": "Patch size (px)",
          "data.split.strategy": "Split strategy", "tuning.n_trials": "Trials",
          "tuning.epochs": "Epochs per trial", "registry.model_name": "Model name"}
#: Set by the app, or replaced by another field, so not offered.
HIDDEN = {"workdir": "the run's folder under --workdir",
          "tuning.train.epochs": "tuning.epochs sets every trial's epochs",
          "tuning.train.architecture": "the search space picks each trial's architecture"}
#: Expanders in display order; a field goes to the longest prefix of its path.
SECTIONS = [("data.ingest", "Data: reading scenes and masks"), ("data.tile", "Data: tiles"),
            ("data.split", "Data: split"), ("tuning", "Tuning: the Optuna study"),
            ("tuning.train", "Training: fixed settings of every trial"),
            ("registry", "Registry and champion gate"),
            ("tracking", "Tracking: MLflow and Optuna stores"), ("", "Other")]
COLUMNS = 3


def all_fields() -> list[FormField]:
    skip = frozenset({*HIDDEN, ".".join(search_form.SEARCH_PATH)})
    return form_fields(PipelineConfig, skip=skip)


def _key(field: FormField) -> str:
    return KEY + field.key


def _number(value: Any, kind: str) -> Any:
    if value is None:
        return None
    return int(value) if kind == "int" else float(value)


def _float_step(default: Any) -> float:
    if not default:
        return 0.01
    return 10.0 ** math.floor(math.log10(abs(float(default))))


def widget(field: FormField, label: str | None = None) -> Any:
    """The field's widget, starting at the model's default."""
    key = _key(field)
    st.session_state.setdefault(key, field.widget_default())
    label = label or field.label
    help_ = field.help
    if field.kind == "bool":
        return st.checkbox(label, key=key, help=help_)
    if field.kind in ("int", "float"):
        kind = field.kind
        extra = ({"step": 1, "format": "%d"} if kind == "int"
                 else {"step": _float_step(field.default), "format": "%g"})
        return st.number_input(label, min_value=_number(field.minimum, kind),
                               max_value=_number(field.maximum, kind), key=key, help=help_,
                               placeholder="unset" if field.optional else None, **extra)
    if field.kind == "choice":
        options = list(field.choices) + ([None] if field.optional else [])
        return st.selectbox(label, options, key=key, help=help_,
                            format_func=lambda v: "unset" if v is None else str(v))
    if field.kind == "yaml":
        help_ = f"{help_ or ''} (YAML: a value, [list] or {{mapping}})".strip()
    return st.text_input(label, key=key, help=help_,
                         placeholder="unset" if field.optional else None)


def _grid(fields: list[FormField]) -> dict[str, Any]:
    values = {}
    columns = st.columns(COLUMNS)
    for index, field in enumerate(fields):
        with columns[index % COLUMNS]:
            values[field.key] = widget(field)
    return values


def _section(field: FormField) -> str:
    matching = [prefix for prefix, _ in SECTIONS
                if not prefix or field.key.startswith(prefix + ".")]
    return max(matching, key=len)


def _dimension(prefix: tuple[str, ...], spec: dict[str, Any], title: str) -> dict[str, Any]:
    """One searched dimension: its type, then the ParamSpec fields that type uses."""
    fields = search_form.spec_fields(prefix, spec)
    by_name = {field.path[-1]: field for field in fields}
    columns = st.columns([1.5, 2, 2.5, 2.5, 2, 2])
    columns[0].markdown(f"`{title}`")
    raw: dict[str, Any] = {}
    with columns[1]:
        raw[by_name["type"].key] = widget(by_name["type"], label=f"{title} type")
    shown = search_form.SHOWN.get(raw[by_name["type"].key], ())
    for column, name in zip(columns[2:], shown, strict=False):
        with column:
            raw[by_name[name].key] = widget(by_name[name], label=f"{title} {name}")
    return search_form.spec_value(fields, raw)


def _search_space(chosen: list[str]) -> dict[str, Any] | None:
    space = search_form.default_space()
    path = search_form.SEARCH_PATH
    st.caption("Each trial draws every dimension below; settings not searched take the "
               "fixed value of the Training section.")
    key = KEY + ".".join((*path, "training"))
    st.session_state.setdefault(key, list(space.training))
    searched = st.multiselect("Searched training settings", search_form.TRAINING_DIMENSIONS,
                              key=key)
    training = {dim: _dimension((*path, "training", dim), search_form.default_spec(dim, space),
                                dim) for dim in searched}
    models: dict[str, dict[str, Any]] = {}
    for architecture in chosen:
        defaults = space.models.get(architecture, {})
        key = KEY + ".".join((*path, "models", architecture))
        st.session_state.setdefault(key, list(defaults))
        dims = st.multiselect(f"Searched {architecture} parameters", list(defaults), key=key)
        models[architecture] = {
            dim: _dimension((*path, "models", architecture, dim),
                            defaults[dim].model_dump(mode="json", exclude_defaults=True),
                            f"{architecture}.{dim}") for dim in dims}
    return search_form.search_space_value(chosen, training, models)


def render() -> dict[str, Any]:
    """Draw the form; return the config mapping (FormError when a YAML field is not YAML)."""
    fields = all_fields()
    by_key = {field.key: field for field in fields}
    raw: dict[str, Any] = {}
    left, right = st.columns(2)
    with left:  # the data
        for key, label in COMMON.items():
            if key == "source" or key.startswith("data."):
                raw[key] = widget(by_key[key], label=label)
    with right:  # the study and the model
        arch_key = KEY + ".".join((*search_form.SEARCH_PATH, "architecture"))
        st.session_state.setdefault(arch_key,
                                    list(search_form.default_space().architecture.choices))
        chosen = st.multiselect("Architectures", search_form.architectures(), key=arch_key,
                                help="the study picks one per trial")
        for key, label in COMMON.items():
            if key not in raw:
                raw[key] = widget(by_key[key], label=label)
    rest = [field for field in fields if field.key not in COMMON]
    search_space = None
    for prefix, title in SECTIONS:
        in_section = [field for field in rest if _section(field) == prefix]
        if in_section:
            with st.expander(title):
                raw.update(_grid(in_section))
        if prefix == "tuning":
            with st.expander("Search space"):
                search_space = _search_space(chosen)
    mapping = config_mapping(fields, raw)
    if search_space is not None:
        set_path(mapping, search_form.SEARCH_PATH, search_space)
    return mapping


__all__ = ["FormError", "render"]

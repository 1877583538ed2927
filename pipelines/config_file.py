"""Reading a config file and reporting its problems: the part of pipelines/config.py that
`segpipe prepare` needs too, without the tuning section's models (which import TensorFlow)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError


class ConfigError(ValueError):
    """The config file is missing, not YAML, or does not validate; the message names the file
    and the field."""


def format_validation_error(origin: str, err: ValidationError, prefix: str = "") -> str:
    """One line per problem: ``origin: dotted.field.path: message`` (no ``origin: `` when
    ``origin`` is empty: the caller's own words say where the values came from)."""
    head = f"{origin}: " if origin else ""
    lines = []
    for problem in err.errors():
        parts = [prefix] if prefix else []
        where = ".".join(parts + [str(part) for part in problem["loc"]]) or "(top level)"
        # pydantic words a validator's own message "Value error, ..."; the message is the news
        message = problem["msg"].removeprefix("Value error, ")
        lines.append(f"{head}{where}: {message}")
    return "\n".join(lines)


class _DuplicateKey(yaml.MarkedYAMLError):
    pass


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML keeps the last of two equal keys in a mapping; a config file that says
    ``n_trials`` twice is a mistake either way, so it is refused with the key's line."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: set = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                if isinstance(key, list | dict):
                    continue  # unhashable: the base class reports it
                if key in seen:
                    raise _DuplicateKey(problem=f"duplicate key {key!r} in one mapping "
                                        "(keep one)", problem_mark=key_node.start_mark)
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str, origin: str) -> Any:
    """YAML text (a file's, or pasted in the web app) as data, a repeated key refused;
    ConfigError naming ``origin`` otherwise."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader)
    except _DuplicateKey as err:
        raise ConfigError(f"{origin}: line {err.problem_mark.line + 1}: {err.problem}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{origin}: not valid YAML: {err}") from None


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A config file's mapping, or ConfigError naming the file."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot read the config file: {err}") from None
    data = load_yaml(text, str(path))
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections, got {type(data).__name__}")
    return data

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
    """One line per problem: ``origin: dotted.field.path: message``."""
    lines = []
    for problem in err.errors():
        parts = [prefix] if prefix else []
        where = ".".join(parts + [str(part) for part in problem["loc"]]) or "(top level)"
        # pydantic words a validator's own message "Value error, ..."; the message is the news
        message = problem["msg"].removeprefix("Value error, ")
        lines.append(f"{origin}: {where}: {message}")
    return "\n".join(lines)


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A config file's mapping, or ConfigError naming the file."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot read the config file: {err}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections, got {type(data).__name__}")
    return data

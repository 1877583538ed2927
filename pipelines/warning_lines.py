"""segpipe's own warnings (a data quirk the user should know about: masks with an alpha band,
overlapping scenes, a relabelled class) read as one ``warning: <message>`` line on a
console, instead of Python's ``/path/components/ingest.py:283: IngestWarning: <message>``
followed by a line of our source. A library's warnings keep Python's format (the file and
line are how one finds what raised them)."""

from __future__ import annotations

import warnings

#: Top-level packages whose warning classes are ours.
_OURS = frozenset({"components", "pipelines", "serving", "segmodels"})
_python_format = warnings.formatwarning


def format_warning(message, category: type[Warning], filename: str, lineno: int,
                   line: str | None = None) -> str:
    if category.__module__.split(".")[0] in _OURS:
        return f"warning: {message}\n"
    return _python_format(message, category, filename, lineno, line)


def install() -> None:
    """Format warnings in this process as above (``segpipe`` commands and local-run tasks)."""
    warnings.formatwarning = format_warning

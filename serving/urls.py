"""The http(s) addresses a user gives (a model server, an MLflow UI, a Kubeflow host),
checked before any work: requests would fail on a bad one only at its first use, with a
traceback. Standard library only, so the web app's settings and ``segpipe --help`` import
it for free."""

from __future__ import annotations

from urllib.parse import urlsplit


class UrlError(ValueError):
    """An address that is not ``http(s)://host[:port][/path]``; the message names the field
    and the address (a ValueError, so a pydantic validator may raise it as it is)."""


def check_http_url(url: str, field: str, example: str | None = None) -> None:
    """Refuse ``url`` unless it is ``http(s)://host[:port][/path]``: a UrlError beginning
    ``"<field> <url>: "``, with ``example`` as a hint."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  raises ValueError for a port that is not a number
    except ValueError as exc:
        raise UrlError(f"{field} {url}: not a URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        hint = f", e.g. {example}" if example else ""
        raise UrlError(f"{field} {url}: must be http(s)://host:port{hint}")

"""Find the tracking store and make sure it has a registered model, creating nothing
(used by `segpipe ui`, `serve` and `predict`).

MLflow's own stores create their database or folder when opened, so a mistyped
``--tracking-uri`` would leave an empty store behind. Local stores are therefore looked at
directly (SQLite read-only, a file store's folders); database servers through SQLAlchemy's
inspector; tracking servers through the client, which only reads."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlparse


class StoreError(ValueError):
    """The tracking store or the model is not there; the message names where it looked."""


class NotAModelError(StoreError):
    """A local ``--model-uri`` that is no MLflow model: a wrong command-line value."""

_SQLITE = "sqlite:///"
_SERVER_SCHEMES = ("http", "https", "databricks")
_DATABASE_SCHEMES = ("postgresql", "mysql", "mssql")
_QUICK_HTTP = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "15"}
REGISTER_HINT = "register one first (`segpipe demo` or `segpipe run`)"


def resolve_tracking_uri(uri: str | None) -> str:
    """The URI to use (option, else $MLFLOW_TRACKING_URI, else MLflow's default), with a
    local path made absolute so the app does not depend on its working directory."""
    if not uri:
        uri = os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        import mlflow

        uri = mlflow.get_tracking_uri()
    if uri.startswith(_SQLITE):
        path, query = _sqlite_path(uri)
        if path == ":memory:":
            return uri
        return _SQLITE + str(Path(path).expanduser().absolute()) + query
    scheme = urlparse(uri).scheme
    if scheme in ("", "file"):
        return Path(_file_path(uri)).expanduser().absolute().as_uri()
    return uri


def _sqlite_path(uri: str) -> tuple[str, str]:
    """The database path of a ``sqlite:///`` URI and its query (``?timeout=60``), if any."""
    path, sep, query = uri[len(_SQLITE):].partition("?")
    return path, sep + query


def _file_path(uri: str) -> str:
    parsed = urlparse(uri)
    return parsed.path if parsed.scheme == "file" else uri


def count_registered_models(uri: str) -> int:
    """How many registered models the store at ``uri`` holds; StoreError when it cannot tell."""
    scheme = urlparse(uri).scheme.split("+")[0]
    if uri.startswith(_SQLITE):
        return _count_sqlite(Path(_sqlite_path(uri)[0]), uri)
    if scheme in ("", "file"):
        return _count_file_store(Path(_file_path(uri)), uri)
    if scheme in _DATABASE_SCHEMES:
        return _count_database(uri)
    if scheme in _SERVER_SCHEMES:
        return _count_server(uri)
    raise StoreError(f"tracking URI {uri}: unsupported scheme {scheme!r}")


def check_registered_models(uri: str) -> int:
    count = count_registered_models(uri)
    if count == 0:
        raise StoreError(f"no registered model in the tracking store {uri}: {REGISTER_HINT}")
    return count


def _count_sqlite(path: Path, uri: str) -> int:
    if not path.is_file():
        raise StoreError(f"no MLflow store at {path} (tracking URI {uri}): check the URI "
                      f"or {REGISTER_HINT}")
    try:
        with sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True) as db:
            tables = {row[0] for row in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
            if "registered_models" not in tables:
                return 0
            return int(db.execute("SELECT COUNT(*) FROM registered_models").fetchone()[0])
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path} is not an MLflow SQLite store: {exc}") from None


def _count_file_store(root: Path, uri: str) -> int:
    if not root.is_dir():
        raise StoreError(f"no MLflow store at {root} (tracking URI {uri}): check the URI "
                      f"or {REGISTER_HINT}")
    models = root / "models"
    if not models.is_dir():
        return 0
    return sum(1 for entry in models.iterdir() if (entry / "meta.yaml").is_file())


def _count_database(uri: str) -> int:
    import sqlalchemy

    engine = sqlalchemy.create_engine(uri)
    try:
        with engine.connect() as connection:
            if not sqlalchemy.inspect(connection).has_table("registered_models"):
                return 0
            return int(connection.execute(
                sqlalchemy.text("SELECT COUNT(*) FROM registered_models")).scalar_one())
    except sqlalchemy.exc.SQLAlchemyError as exc:
        raise StoreError(f"cannot read the tracking database {_redacted(uri)}: "
                      f"{str(exc).splitlines()[0]}") from None
    finally:
        engine.dispose()


@contextlib.contextmanager
def _quick_http() -> Iterator[None]:
    """One short try: MLflow's default retries a dead server for minutes before answering."""
    saved = {key: os.environ.get(key) for key in _QUICK_HTTP}
    os.environ.update(_QUICK_HTTP)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _count_server(uri: str) -> int:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    with _quick_http():
        try:
            return len(MlflowClient(tracking_uri=uri).search_registered_models(max_results=1))
        except MlflowException as exc:
            raise StoreError(f"cannot list registered models at {uri}: "
                             f"{str(exc).splitlines()[0]}") from None


def check_tracking_server(uri: str) -> None:
    """StoreError in one line naming ``uri`` (without its password) unless the MLflow
    tracking server there answers, within seconds: before a run's first task, MLflow's own
    retries take minutes to give up on a dead one. Other stores are not asked."""
    if urlparse(uri).scheme not in _SERVER_SCHEMES:
        return
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from pipelines.runner import os_reason

    with _quick_http():
        try:
            MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
        except MlflowException as exc:
            reason = os_reason(exc) or str(exc).splitlines()[0]
            raise StoreError(f"MLflow tracking server {_redacted(uri)} does not answer: "
                             f"{_redacted_in(reason, uri)}") from None


def _redacted_in(text: str, uri: str) -> str:
    """``text`` (an error that may quote ``uri``) without the URI's password."""
    password = urlparse(uri).password
    return text.replace(f":{password}@", ":***@") if password else text


def _redacted(uri: str) -> str:
    """A database URI without its password, for messages."""
    parsed = urlparse(uri)
    if parsed.password:
        return uri.replace(f":{parsed.password}@", ":***@")
    return uri


def check_model(model_uri: str, tracking_uri: str | None) -> str:
    """The tracking URI to load ``model_uri`` with, after checking, without creating anything,
    that the store is there and holds that registered model (``models:/name@alias`` or
    ``models:/name/version``) or logged model (``models:/m-<id>``); StoreError naming the
    store otherwise. Other URIs (a local folder, ``runs:/``) only get the store resolved."""
    uri = resolve_tracking_uri(tracking_uri)
    if not model_uri.startswith("models:/"):
        from serving.server import local_model_problem

        if problem := local_model_problem(model_uri):
            raise NotAModelError(problem)
        return uri
    count_registered_models(uri)  # the store is there (raises naming it otherwise)
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from serving.remote import logged_model_id

    client = MlflowClient(tracking_uri=uri)
    if model_id := logged_model_id(model_uri):
        try:
            client.get_logged_model(model_id)
        except MlflowException:
            raise StoreError(f"model {model_uri}: no logged model {model_id!r} in the "
                             f"tracking store {_redacted(uri)}") from None
        return uri
    reference = model_uri[len("models:/"):]
    if "@" in reference:
        (name, alias), version = reference.split("@", 1), None
    else:
        (name, _, version), alias = reference.partition("/"), None
    try:
        if alias is not None:
            client.get_model_version_by_alias(name, alias)
        else:
            client.get_model_version(name, version)
    except MlflowException:
        raise StoreError(_missing_model(client, model_uri, uri, name, alias,
                                        version)) from None
    return uri


def _missing_model(client, model_uri: str, uri: str, name: str, alias: str | None,
                   version: str | None) -> str:
    """Why ``model_uri`` does not resolve: no such registered model, or it has no such
    alias or version (naming the ones it has)."""
    from mlflow.exceptions import MlflowException

    try:
        registered = client.get_registered_model(name)
    except MlflowException:
        names = [m.name for m in client.search_registered_models(max_results=20)]
        known = ", ".join(names) if names else "none"
        return (f"model {model_uri} is not in the tracking store {uri} "
                f"(registered models: {known})")
    if alias is not None:
        aliases = ", ".join(sorted(registered.aliases)) or "none"
        return f"model {name!r} has no alias {alias!r} in {uri} (aliases: {aliases})"
    try:
        found = client.search_model_versions(f"name = '{name}'", max_results=1000)
        versions = ", ".join(str(v) for v in sorted(int(m.version) for m in found)) or "none"
    except MlflowException:
        versions = "unknown"
    return f"model {name!r} has no version {version!r} in {uri} (versions: {versions})"


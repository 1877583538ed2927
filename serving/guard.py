"""An ASGI middleware in front of MLflow's scoring app: POST /invocations requests are checked
before MLflow sees them, and every error it answers becomes a short JSON body.

MLflow 3.17's scoring server reads any body whole, echoes a body that is not JSON back in its
error, drops params the model signature does not declare (with only a log warning) and
prefixes the whole input data to the message of a param of the wrong type. Here:

- a body larger than the limit is refused with 413 from its Content-Length header, before a
  byte of it is read, or as soon as a body without one grows past the limit;
- a body not received within the request timeout is a 408;
- a body that is not JSON, not a JSON object, params that are not an object, params the model
  does not declare (named) and declared params of the wrong type are 400s;
- a dataframe request (``dataframe_split``/``dataframe_records``: the ``npy`` and ``image``
  routes) goes to ``dataframes``, the model's own predict (serving/server.py): MLflow would
  check its base64 column against the model's tensor signature and refuse it;
- any other request goes on to MLflow unchanged (the body it reads is the same bytes);
- every error answer, MLflow's own and those of unknown routes or methods included, is
  ``{"error_code", "message"}`` with a message of at most MAX_MESSAGE characters: no stack
  trace, no input echoed whole.

Only stdlib at import: serving/server.py imports this before it loads the model, whose own
packaged copy of serving/ must be the one that runs the model.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

ROUTE = "/invocations"
JSON_TYPE = "application/json"
#: Longest message of an error answer; a quote of client input inside it is shorter still.
MAX_MESSAGE = 300
#: Longest piece of client input quoted in the guard's own messages.
EXCERPT = 40
#: The error_code of an answer whose body had none (MLflow's plain-text 415 and 504, the
#: web framework's 404 and 405).
STATUS_CODES = {400: "BAD_REQUEST", 404: "ENDPOINT_NOT_FOUND", 405: "METHOD_NOT_ALLOWED",
                408: "REQUEST_TIMEOUT", 413: "REQUEST_TOO_LARGE",
                415: "UNSUPPORTED_MEDIA_TYPE", 504: "DEADLINE_EXCEEDED"}
#: What a 404 lists: MLflow's scoring app's routes.
ROUTES = "the routes are POST /invocations, GET /ping, /health and /version"
#: MLflow puts the whole input data before the error of a model that failed on it, or of an
#: input its signature refused.
_MLFLOW_ECHOES = (("Failed to predict data '", "\nError: "),
                  ("Failed to enforce schema of data '", "Error: "))
DATAFRAME_KEYS = ("dataframe_split", "dataframe_records")
#: What answers a dataframe request: the parsed JSON document -> (HTTP status, JSON body).
DataframeAnswer = Callable[[dict[str, Any]], tuple[int, bytes]]


class Refusal(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def excerpt(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= EXCERPT else f"{text[:EXCERPT]}... ({len(text)} characters)"


def error_body(status: int, message: str, error_code: str | None = None) -> bytes:
    if len(message) > MAX_MESSAGE:
        message = f"{message[:MAX_MESSAGE - 30]}... ({len(message)} characters)"
    code = error_code or STATUS_CODES.get(status, "INTERNAL_ERROR" if status >= 500
                                          else "BAD_REQUEST")
    return json.dumps({"error_code": code, "message": message}).encode()


def short_error(status: int, body: bytes) -> bytes:
    """Any error body -> ``{"error_code", "message"}``: MLflow's extra keys (stack_trace)
    dropped, its echo of the input data cut off, the message capped."""
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        parsed = None
    if isinstance(parsed, dict) and ("message" in parsed or "detail" in parsed):
        message = str(parsed.get("message", parsed.get("detail")))
        code = parsed.get("error_code")
    else:
        message, code = body.decode("utf-8", errors="replace").strip(), None
    for start, marker in _MLFLOW_ECHOES:
        if message.startswith(start) and marker in message:
            message = message.split(marker, 1)[1]
    return error_body(status, message, str(code) if code else None)


def check_params(params: Any, schema: Any) -> None:
    """Refuse params that are not an object, names ``schema`` (MLflow's ParamSchema, or
    None) does not declare and values MLflow would not accept for their declared type."""
    if params is None:
        return
    if not isinstance(params, dict):
        raise Refusal(400, f"params must be a JSON object, got {type(params).__name__}")
    if not params:
        return
    specs = {spec.name: spec for spec in schema.params} if schema is not None else {}
    if unknown := sorted(set(params) - set(specs)):
        takes = f"the model takes {', '.join(sorted(specs))}" if specs \
            else "the model takes no params"
        raise Refusal(400, f"unknown params {', '.join(excerpt(n) for n in unknown[:5])}; "
                           f"{takes}")
    from mlflow.exceptions import MlflowException
    from mlflow.types.schema import ParamSpec

    for name, value in params.items():
        spec = specs[name]
        try:
            ParamSpec.validate_param_spec(value, spec)
        except MlflowException:
            kind = getattr(spec.dtype, "name", str(spec.dtype))
            wanted = f"a list of {kind}" if spec.shape == (-1,) else f"a {kind}"
            raise Refusal(400, f"param {name} must be {wanted}, got {excerpt(value)}") from None


def check_body(body: bytes, schema: Any) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except UnicodeDecodeError as exc:
        raise Refusal(400, f"the request body is not UTF-8 text (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise Refusal(400, f"the request body is not valid JSON: {exc.msg} at line "
                           f"{exc.lineno} column {exc.colno} ({len(body)} bytes)") from None
    except RecursionError:
        raise Refusal(400, "the request body is JSON nested too deeply") from None
    if not isinstance(document, dict):
        raise Refusal(400, f"the request body must be a JSON object, got "
                           f"{type(document).__name__}")
    check_params(document.get("params"), schema)
    return document


class RequestGuard:
    """ASGI middleware: ``RequestGuard(mlflow_app, params_schema, max_body_bytes, timeout,
    dataframes)``."""

    def __init__(self, app: ASGIApp, params_schema: Any, max_body_bytes: int, timeout: float,
                 dataframes: DataframeAnswer | None = None):
        self.app, self.schema = app, params_schema
        self.max_body_bytes, self.timeout = max_body_bytes, timeout
        self.dataframes = dataframes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send = _shorten_errors(send, scope)
        if scope["path"] != ROUTE or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        try:
            mime_type = _mime_type(scope)
            if not mime_type:
                raise Refusal(415, f"the request has no Content-Type; send {JSON_TYPE}")
            body = await self._body(scope, receive)
            if body is None:
                return  # the client went away
            document = check_body(body, self.schema) if mime_type == JSON_TYPE else {}
        except Refusal as refusal:
            await _answer(send, refusal.status, error_body(refusal.status, refusal.message))
            return
        if (self.dataframes is not None and _plain_json(scope)
                and any(key in document for key in DATAFRAME_KEYS)):
            await _answer(send, *await self._dataframe_answer(document))
            return
        await self.app(scope, _replay(body, receive), send)

    async def _dataframe_answer(self, document: dict[str, Any]) -> tuple[int, bytes]:
        try:
            return await asyncio.wait_for(asyncio.to_thread(self.dataframes, document),
                                          self.timeout)
        except TimeoutError:
            return 504, error_body(504, f"the request took longer than {self.timeout:g} s "
                                        f"(the server's request timeout)")

    async def _body(self, scope: Scope, receive: Receive) -> bytes | None:
        declared = _header(scope, b"content-length")
        limit = self.max_body_bytes
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            raise Refusal(413, f"the request body has {declared} bytes, the limit is {limit}")
        try:
            return await asyncio.wait_for(_read_body(receive, limit), self.timeout)
        except TimeoutError:
            raise Refusal(408, f"the request body did not arrive within {self.timeout:g} s "
                               f"(the server's request timeout)") from None


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise Refusal(413, f"the request body is larger than the limit, {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body already read, as one message; then the client's own (its disconnect)."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replayed() -> Message:
        return pending.pop() if pending else await receive()

    return replayed


def _shorten_errors(send: Send, scope: Scope) -> Send:
    """Pass answers below 400 through untouched; hold an error answer whole and send its
    short JSON form instead (a 404 names the route asked for and the routes there are)."""
    held: dict[str, Any] = {}

    async def shortened(message: Message) -> None:
        if message["type"] == "http.response.start" and message["status"] >= 400:
            held["start"], held["body"] = message, []
            return
        if "start" not in held or message["type"] != "http.response.body":
            await send(message)
            return
        held["body"].append(message.get("body", b""))
        if not message.get("more_body", False):
            status = held["start"]["status"]
            body = short_error(status, b"".join(held["body"]))
            if status == 404 and json.loads(body)["message"] == "Not Found":  # no such route
                body = error_body(404, f"no route {scope['method']} "
                                       f"{excerpt(scope['path'])}; {ROUTES}")
            await _answer(send, status, body)

    return shortened


async def _answer(send: Send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", JSON_TYPE.encode()),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1").strip()
    return None


def _mime_type(scope: Scope) -> str:
    return (_header(scope, b"content-type") or "").split(";")[0].strip().lower()


def _plain_json(scope: Scope) -> bool:
    """``application/json`` with no parameter but charset=utf-8: what MLflow takes (it
    answers 415 to the rest, so those go on to it)."""
    parameters = (_header(scope, b"content-type") or "").split(";")[1:]
    return all(p.strip().lower().replace(" ", "") in ("charset=utf-8", "") for p in parameters)

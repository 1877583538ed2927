"""ASGI plumbing of the model server's request checks (serving/guard.py): reading a request's
headers, replaying its body, and answering: every error as ``{"error_code", "message"}``
with a message of at most MAX_MESSAGE characters, no stack trace and no input echoed whole,
a large answer in chunks. Stdlib only, as the guard."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

JSON_TYPE = "application/json"
#: Longest message of an error answer; a quote of client input inside it is shorter still.
MAX_MESSAGE = 300
#: Longest piece of client input quoted in the guard's own messages.
EXCERPT = 40
#: The error_code of an answer whose body had none (MLflow's plain-text 415 and 504, the
#: web framework's 404 and 405), and of the guard's own.
STATUS_CODES = {400: "BAD_REQUEST", 404: "ENDPOINT_NOT_FOUND", 405: "METHOD_NOT_ALLOWED",
                408: "REQUEST_TIMEOUT", 413: "REQUEST_TOO_LARGE",
                415: "UNSUPPORTED_MEDIA_TYPE", 503: "TEMPORARILY_UNAVAILABLE",
                504: "DEADLINE_EXCEEDED"}
#: What a 404 lists: MLflow's scoring app's routes.
ROUTES = "the routes are POST /invocations, GET /ping, /health, /version and /model"
#: MLflow puts the whole input data before the error of a model that failed on it, or of an
#: input its signature refused.
_MLFLOW_ECHOES = (("Failed to predict data '", "\nError: "),
                  ("Failed to enforce schema of data '", "Error: "))


class Refusal(Exception):
    """A request the guard answers itself with ``status`` and ``message``."""

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


def shorten_errors(send: Send, scope: Scope) -> Send:
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
            await answer(send, status, body)

    return shortened


async def answer(send: Send, status: int, body: bytes | Iterable[bytes]) -> None:
    """A JSON answer: one body, or chunks sent as they come (chunked transfer encoding), so a
    large answer is never copied whole once more."""
    if isinstance(body, bytes):
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", JSON_TYPE.encode()),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
        return
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", JSON_TYPE.encode())]})
    for chunk in body:
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


def replay(body: bytes, receive: Receive) -> Receive:
    """The body already read, as one message; then the client's own (its disconnect)."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replayed() -> dict[str, Any]:
        return pending.pop() if pending else await receive()

    return replayed


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1").strip()
    return None


def mime_type(scope: Scope) -> str:
    return (header(scope, b"content-type") or "").split(";")[0].strip().lower()


def plain_json(scope: Scope) -> bool:
    """``application/json`` with no parameter but charset=utf-8: what MLflow takes (it
    answers 415 to the rest, so those go on to it)."""
    parameters = (header(scope, b"content-type") or "").split(";")[1:]
    return all(p.strip().lower().replace(" ", "") in ("charset=utf-8", "") for p in parameters)

"""An ASGI middleware in front of MLflow's scoring app: POST /invocations requests are checked
before MLflow sees them, and every error it answers becomes a short JSON body.

MLflow 3.17's scoring server reads any body whole, echoes a body that is not JSON back in its
error, drops params the model signature does not declare (with only a log warning) and
prefixes the whole input data to the message of a param of the wrong type. Here:

- a request's body is read before it takes a turn, within a budget for bodies in flight
  (``at_once`` bodies of the largest size, serving/sizing.py body_budget_bytes; a body takes
  its bytes from it as they arrive, serving/body_budget.py): a slow upload holds the bytes it
  has sent, not a turn, nor what it declares. A chunk that would pass the budget waits for
  others to free theirs, and is a 503 saying so after the request timeout; a client that
  sends none of its body for ``body_timeout`` seconds is a 408 and dropped;
- then at most ``at_once`` requests (the model's own concurrency) are computed at a time
  (parsed, predicted, answered), the others wait their turn with their body, so what
  requests hold in memory is bounded by ``at_once`` times the limits below
  (serving/sizing.py); a request that gets no turn within the request timeout is a 503;
- a body larger than the limit is refused with 413 from its Content-Length header, before a
  byte of it is read, or as soon as a body without one grows past the limit; a body with a
  Content-Encoding (gzip, deflate, ...) is a 415 naming it;
- a body holding more JSON values (numbers, strings, lists, ...) than ``max_json_values`` is a
  413 before it is parsed: a value costs up to ~120 bytes parsed, so the body limit alone
  would let JSON numbers take 20 times the body's size;
- a body not received within the request timeout is a 408;
- a body that is not JSON, not a JSON object, params that are not an object, params the model
  does not declare (named) and declared params of the wrong type are 400s;
- an image file as the body is the same file in the ``image`` column, its query string
  params checked before it is read, its bytes counted as the base64 text they become;
  other content types, a form upload, no input or inputs that are no numbers are one line
  saying what is taken (serving/request_forms.py);
- a dataframe request (``dataframe_split``/``dataframe_records``: the ``npy`` and ``image``
  routes) goes to ``dataframes``, the model's own predict (serving/routes.py): MLflow would
  check its base64 column against the model's tensor signature and refuse it;
- any other request goes to ``invocations``, MLflow's own answer to /invocations (the same
  bytes), on a thread of the guard's: MLflow's route runs it on a thread it forgets when its
  timeout answers 504, so the turn would end while the prediction still holds its memory;
- every phase shares one deadline, the request's arrival + the request timeout: waiting for
  the budget, receiving the body, waiting for a turn and predicting together take at most
  the timeout (then a 503, 408, 503 or 504 as above and below);
- the prediction's deadline (that one, as ``time.monotonic()``) is put in
  ``deadline``, a ContextVar of the model's serving code, which stops predicting between two
  batches once it has passed: a request answered 504 stops taking the cores, and its turn
  ends when its thread does, not with the 504;
- every error answer, MLflow's own and those of unknown routes or methods included, is
  ``{"error_code", "message"}`` (serving/replies.py).

The body is held once: read into one buffer, decoded to text and freed, and the text freed once
parsed, so a dataframe request's peak is about twice its body (benchmarks/server_memory.py);
an image body is freed once encoded to base64, the text it becomes counted in its stead.

Only stdlib at import: serving/server.py imports this before it loads the model, whose own
packaged copy of serving/ must be the one that runs the model.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from serving.asgi import (
    JSON_TYPE,
    MAX_MESSAGE,
    Receive,
    Refusal,
    Scope,
    Send,
    answer,
    error_body,
    excerpt,
    header,
    plain_json,
    replay,
    short_error,
    shorten_errors,
)
from serving.body_budget import BodyBudget, Claim, declared_size, read_body
from serving.json_body import check_body, check_params, decode_body, mlflow_body, nan_params
from serving.request_forms import (
    check_head,
    check_inputs,
    image_document,
    image_limit,
    image_limit_note,
)
from serving.sizing import body_budget_bytes

__all__ = ["DATAFRAME_KEYS", "JSON_TYPE", "MAX_MESSAGE", "ROUTE", "Refusal", "RequestGuard",
           "check_body", "check_params", "error_body", "excerpt", "short_error"]

ASGIApp = Callable[[Scope, Receive, Send], Any]

ROUTE = "/invocations"
DATAFRAME_KEYS = ("dataframe_split", "dataframe_records")
#: What answers a dataframe request: the parsed JSON document -> (HTTP status, JSON body as
#: bytes or as chunks of bytes).
DataframeAnswer = Callable[[dict[str, Any]], tuple[int, bytes | Iterable[bytes]]]
#: What answers any other request, as MLflow's /invocations route: (body, Content-Type) ->
#: (HTTP status, body).
InvocationsAnswer = Callable[[bytes, str], tuple[int, bytes]]
#: uvicorn's own logger: its lines go where uvicorn's do.
_logger = logging.getLogger("uvicorn.error")
#: JSON values nested deeper than this are refused by the parser (RecursionError), so a body
#: holds at most its commas plus this many plus one values.
_MAX_NESTING = 1000


class RequestGuard:
    """ASGI middleware: ``RequestGuard(mlflow_app, params_schema, max_body_bytes, timeout,
    dataframes, invocations=..., max_json_values=..., at_once=..., deadline=...)``;
    ``at_once`` and ``deadline`` None (a model whose serving code predates them): no turns,
    no deadline; ``invocations`` None: those requests go on to ``mlflow_app``."""

    def __init__(self, app: ASGIApp, params_schema: Any, max_body_bytes: int, timeout: float,
                 dataframes: DataframeAnswer | None = None, *,
                 invocations: InvocationsAnswer | None = None,
                 max_json_values: int | None = None, at_once: int | None = None,
                 deadline: contextvars.ContextVar | None = None,
                 body_timeout: float | None = None):
        self.app, self.schema = app, params_schema
        self.max_body_bytes, self.timeout = max_body_bytes, timeout
        self.dataframes, self.invocations = dataframes, invocations
        self.max_json_values, self.at_once, self.deadline = max_json_values, at_once, deadline
        self._turns = asyncio.Semaphore(at_once) if at_once else None
        #: Bytes of request bodies held or being read (serving/sizing.py body_budget_bytes).
        self.budget = BodyBudget(body_budget_bytes(at_once, max_body_bytes), at_once,
                                 timeout) if at_once else None
        self.body_timeout = body_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send = shorten_errors(send, scope)
        if scope["path"] != ROUTE or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        claim, turn, running = None, False, None
        # one deadline for every phase: waiting for the budget, reading, waiting for a turn
        # and computing all end at the request timeout after it arrived
        until = time.monotonic() + self.timeout
        try:
            try:
                content_type, params = check_head(scope, self.schema,
                                                  images=self.dataframes is not None)
                image = content_type != JSON_TYPE  # refuse_content_type: an image file
                # an image body is passed on in base64: that text is what the limit bounds,
                # and what its share of the budget counts
                limit, why = ((image_limit(self.max_body_bytes),
                               image_limit_note(self.max_body_bytes)) if image
                              else (self.max_body_bytes, ""))
                claim = Claim(self.budget, 4 / 3 if image else 1.0)
                declared_size(scope, limit, why)
                # read outside the turns, within the budget: a slow upload holds the bytes it
                # sent, not one of the turns the requests being computed need
                body = await read_body(receive, limit, claim, until, self.timeout,
                                       self.body_timeout, why)
                if body is None:
                    return  # the client went away
                if image and not body:
                    raise Refusal(400, "the request body is empty: send an image file")
                await self._take_turn(until)
                turn = True
            except Refusal as refusal:
                await answer(send, refusal.status, error_body(refusal.status, refusal.message))
                return
            held = [body]
            del body  # _invoke frees it as it goes
            running = await self._invoke(scope, receive, send, image, params, held, until)
        finally:
            if running is not None:  # answered 504: the turn ends with the prediction's thread
                running.add_done_callback(self._overrun_done(time.monotonic(), claim))
            elif claim is not None:  # None: refused by its head, before anything was held
                self._end(claim, turn)

    def _end(self, claim: Claim, turn: bool) -> None:
        """A request's work is over: its turn and its body's share of the budget are free."""
        if turn and self._turns is not None:
            self._turns.release()
        claim.release()

    def _overrun_done(self, answered: float,
                      claim: Claim) -> Callable[[asyncio.Future], None]:
        """What frees the turn of a request answered 504 once its thread has stopped."""
        def done(_: asyncio.Future) -> None:
            self._end(claim, True)
            _logger.info("a request answered 504 stopped computing %.1f s after its answer; "
                         "its turn is free", time.monotonic() - answered)

        return done

    async def _take_turn(self, until: float) -> None:
        if self._turns is None:
            return
        if not self._turns.locked():  # a free turn is taken at once, whatever time is left
            await self._turns.acquire()
            return
        try:
            await asyncio.wait_for(self._turns.acquire(), max(until - time.monotonic(), 0))
        except TimeoutError:
            raise Refusal(503, f"the server is busy: its {self.at_once} requests at a time "
                               f"left this one no turn within {self.timeout:g} s (the "
                               f"server's request timeout); try again later") from None

    async def _invoke(self, scope: Scope, receive: Receive, send: Send, image: bool,
                      params: dict[str, Any] | None, held: list[bytearray],
                      until: float) -> asyncio.Future | None:
        """Answer one request, its body ``held`` alone (``params``: an image body's); returns
        a prediction still running after its 504."""
        if image:  # its thread takes the body
            running = self._start(until, self._image, held, params)
            return await self._finish(running, send, until)
        body = held.pop()
        try:
            self._check_values(body)
            encoding = json.detect_encoding(body)
            text = decode_body(body)
            del body  # the text holds the request now
            document = check_inputs(check_body(text, self.schema))
            if (self.dataframes is not None and plain_json(scope)
                    and any(key in document for key in DATAFRAME_KEYS)):
                del text
                # a float NaN, as a model registered before the string "nan" takes it too
                running = self._start(until, self.dataframes, nan_params(document))
                del document  # the prediction holds it, and frees it when done
                return await self._finish(running, send, until)
            body = mlflow_body(document, text, encoding, self.max_body_bytes)
            del document, text
        except Refusal as refusal:
            await answer(send, refusal.status, error_body(refusal.status, refusal.message))
            return None
        return await self._mlflow(scope, receive, send, body, until)

    def _image(self, held: list[bytearray],
               params: dict[str, Any] | None) -> tuple[int, bytes | Iterable[bytes]]:
        """An image file body, answered as the same file in the dataframe column ``image``:
        on the request's thread, as encoding a large one takes seconds."""
        return self.dataframes(image_document(held, params))

    async def _mlflow(self, scope: Scope, receive: Receive, send: Send, body: bytes,
                      until: float) -> asyncio.Future | None:
        """MLflow's answer, on the guard's thread (or MLflow's app, without ``invocations``)."""
        if self.invocations is None:
            await self._forward(scope, receive, send, body, until)
            return None
        running = self._start(until, self.invocations, body,
                              header(scope, b"content-type") or "")
        del body
        return await self._finish(running, send, until)

    def _check_values(self, body: bytes | bytearray) -> None:
        """Every JSON value but the first of its container follows a comma, and containers
        nest at most _MAX_NESTING deep: the commas bound what parsing the body costs."""
        if self.max_json_values is None:
            return
        values = body.count(b",") + 1
        if values > self.max_json_values + _MAX_NESTING:
            raise Refusal(413, f"the request body holds {values} or more JSON values, the "
                               f"limit is {self.max_json_values}: send large images as base64 "
                               f".npy arrays or image files (dataframe columns 'npy' or "
                               f"'image'), not as JSON numbers")

    async def _forward(self, scope: Scope, receive: Receive, send: Send, body: bytes,
                       until: float) -> None:
        """To MLflow's app, under the deadline."""
        token = self.deadline.set(until) if self.deadline else None
        try:
            await self.app(scope, replay(body, receive), send)
        finally:
            if token is not None:
                self.deadline.reset(token)

    def _start(self, until: float, work: Callable[..., tuple[int, Any]],
               *args: Any) -> asyncio.Future:
        # The task copies this context, the deadline included, and its thread the task's.
        token = self.deadline.set(until) if self.deadline else None
        try:
            return asyncio.ensure_future(asyncio.to_thread(work, *args))
        finally:
            if token is not None:
                self.deadline.reset(token)

    async def _finish(self, running: asyncio.Future, send: Send,
                      until: float) -> asyncio.Future | None:
        done, _ = await asyncio.wait({running}, timeout=max(until - time.monotonic(), 0))
        status, body = running.result() if done else (504, b"")
        if status == 504:  # the prediction may stop at its deadline a moment before the wait
            body = error_body(504, f"the request took longer than {self.timeout:g} s (the "
                                   f"server's request timeout)")
        await answer(send, status, body)
        return None if done else running

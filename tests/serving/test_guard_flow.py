"""serving/guard.py's RequestGuard as the ASGI app uvicorn calls, in process, answering with
a plain function in place of MLflow's /invocations: bodies are read outside the compute
turns within a budget for bodies in flight, a stalled client is dropped after the body
timeout without holding a turn, and a body over the limit is refused before it is read."""

from __future__ import annotations

import asyncio
import contextvars
import json
import threading
import time

from serving.guard import RequestGuard
from serving.sizing import body_budget_bytes

LIMIT = 1000
BODY = b'{"inputs": [[1, 2], [3, 4]]}'


class Client:
    """One request as uvicorn hands it to the app: its head, its body as the test sends it,
    and the answer collected."""

    def __init__(self, declared: int | None, content_type: bytes | None = b"application/json",
                 query: bytes = b""):
        headers = [(b"content-type", content_type)] if content_type else []
        if declared is not None:
            headers.append((b"content-length", str(declared).encode()))
        self.scope = {"type": "http", "method": "POST", "path": "/invocations",
                      "headers": headers, "query_string": query}
        self.pieces: asyncio.Queue = asyncio.Queue()
        self.receives = 0
        self.messages: list[dict] = []
        self.answered = asyncio.Event()

    def send_body(self, data: bytes, more: bool = False) -> None:
        self.pieces.put_nowait({"type": "http.request", "body": data, "more_body": more})

    async def receive(self) -> dict:
        self.receives += 1
        return await self.pieces.get()

    async def send(self, message: dict) -> None:
        self.messages.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            self.answered.set()

    @property
    def status(self) -> int:
        return self.messages[0]["status"]

    @property
    def message(self) -> str:
        return json.loads(b"".join(m.get("body", b"") for m in self.messages[1:]))["message"]


def guard(answer, *, at_once: int, timeout: float, body_timeout: float,
          deadline: contextvars.ContextVar | None = None) -> RequestGuard:
    async def no_app(scope, receive, send):
        raise AssertionError("only /invocations is asked")

    return RequestGuard(no_app, None, max_body_bytes=LIMIT, timeout=timeout,
                        invocations=answer, max_json_values=1000, at_once=at_once,
                        body_timeout=body_timeout, deadline=deadline)


def test_a_stalled_upload_is_dropped_after_the_body_timeout_holding_no_turn():
    """One turn only: the stalled client is reading, not computing, so another request is
    answered while it stalls, and the stalled one gets a 408 naming the setting."""
    def answer(body: bytes, content_type: str) -> tuple[int, bytes]:
        return 200, b'{"predictions": []}'

    async def scenario() -> tuple[Client, Client, float]:
        app = guard(answer, at_once=1, timeout=30, body_timeout=0.5)
        stalled, fast = Client(len(BODY)), Client(len(BODY))
        stalled.send_body(BODY[:5], more=True)  # then nothing
        fast.send_body(BODY)
        started = time.monotonic()
        stalling = asyncio.create_task(app(stalled.scope, stalled.receive, stalled.send))
        await asyncio.sleep(0.05)
        await asyncio.wait_for(app(fast.scope, fast.receive, fast.send), 5)
        assert not stalled.answered.is_set()  # the fast one did not wait for it
        await asyncio.wait_for(stalling, 5)
        return stalled, fast, time.monotonic() - started

    stalled, fast, took = asyncio.run(scenario())
    assert fast.status == 200
    assert stalled.status == 408
    assert stalled.message == ("no part of the request body arrived for 0.5 s (the server's "
                               "body timeout, --body-timeout or $SERVING_BODY_TIMEOUT); the "
                               "client is dropped")
    assert 0.5 <= took < 5


def test_bodies_declared_large_and_stalling_hold_only_what_they_sent():
    """Two clients declaring bodies of the whole limit (the budget is 2 x the limit) and
    sending a few bytes of them: a small request is still read and answered meanwhile."""
    def answer(body: bytes, content_type: str) -> tuple[int, bytes]:
        return 200, b'{"predictions": []}'

    async def scenario() -> tuple[list[Client], Client, int]:
        app = guard(answer, at_once=2, timeout=30, body_timeout=30)
        stalling = [Client(LIMIT) for _ in range(2)]
        tasks = []
        for client in stalling:
            client.send_body(b'{"inputs": "', more=True)  # then nothing for now
            tasks.append(asyncio.create_task(app(client.scope, client.receive, client.send)))
        await asyncio.sleep(0.05)
        small = Client(len(BODY))
        small.send_body(BODY)
        await asyncio.wait_for(app(small.scope, small.receive, small.send), 10)
        held = app.budget.held
        for client in stalling:
            client.pieces.put_nowait({"type": "http.disconnect"})
        await asyncio.wait_for(asyncio.gather(*tasks), 10)
        assert app.budget.held == 0
        return stalling, small, held

    stalling, small, held = asyncio.run(scenario())
    assert small.status == 200
    assert held == 2 * len(b'{"inputs": "')  # what the two stalling ones sent, no more
    assert not any(client.messages for client in stalling)  # gone: nothing to answer


def test_a_body_that_would_pass_the_budget_waits_then_is_a_503_naming_it():
    """Two requests computing hold the whole budget (2 x the body limit) with their bodies:
    a third waits for it with its first chunk unkept, and is a 503 after the timeout. The
    two are answered 504 at the same timeout, but hold their bodies' share until their work
    stops; then the budget is free again."""
    release = threading.Event()

    def answer(body: bytes, content_type: str) -> tuple[int, bytes]:
        release.wait(10)
        return 200, b'{"predictions": []}'

    async def scenario() -> tuple[list[Client], Client, Client]:
        app = guard(answer, at_once=2, timeout=1.0, body_timeout=10)
        assert app.budget.total == body_budget_bytes(2, LIMIT) == 2 * LIMIT
        start = b'{"inputs": [[[[1]]]], "pad": "'  # a key MLflow ignores fills it up
        big = start + b"x" * (LIMIT - len(start) - 2) + b'"}'
        computing = [Client(len(big)) for _ in range(2)]
        tasks = []
        for client in computing:
            client.send_body(big)
            tasks.append(asyncio.create_task(app(client.scope, client.receive, client.send)))
        await asyncio.sleep(0.1)
        late = Client(len(BODY))
        late.send_body(BODY)
        await asyncio.wait_for(app(late.scope, late.receive, late.send), 5)
        assert late.receives == 1  # refused at its first chunk, no more of it read
        release.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 5)
        after = Client(len(BODY))
        after.send_body(BODY)
        # this phase asks only that the budget and the turns are free again: room for a
        # turn slow to come under load
        app.timeout = 30
        await asyncio.wait_for(app(after.scope, after.receive, after.send), 30)
        # `after` needs one of the two turns: the other 504'd thread may still be ending
        # under load, and frees its share when it does
        deadline = time.monotonic() + 10
        while app.budget.held and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert app.budget.held == 0
        return computing, late, after

    computing, late, after = asyncio.run(scenario())
    assert late.status == 503
    assert late.message.startswith("the server is busy: its request bodies in flight hold "
                                   "2000 bytes of its budget of 2000 (2 x the body limit), "
                                   "too much for this one's next 28 for 1 s")
    assert [c.status for c in computing] == [504, 504] and after.status == 200


def test_a_body_declared_over_the_limit_is_413_before_any_of_it_is_read():
    def answer(body: bytes, content_type: str) -> tuple[int, bytes]:
        raise AssertionError("never asked")

    async def scenario() -> Client:
        app = guard(answer, at_once=2, timeout=5, body_timeout=5)
        client = Client(LIMIT + 1)
        await asyncio.wait_for(app(client.scope, client.receive, client.send), 5)
        return client

    client = asyncio.run(scenario())
    assert client.status == 413 and client.receives == 0
    assert client.message == f"the request body has {LIMIT + 1} bytes, the limit is {LIMIT}"


def test_every_phase_of_a_request_shares_one_deadline_set_on_arrival():
    """The prediction's deadline is the request's arrival plus the timeout, however long its
    body took to come: the phases do not each get the whole timeout."""
    deadline: contextvars.ContextVar[float] = contextvars.ContextVar("deadline")
    seen: list[float] = []

    def answer(body: bytes, content_type: str) -> tuple[int, bytes]:
        seen.append(deadline.get())
        return 200, b'{"predictions": []}'

    async def scenario() -> tuple[Client, float, float]:
        app = guard(answer, at_once=2, timeout=30, body_timeout=30, deadline=deadline)
        client = Client(len(BODY))
        client.send_body(BODY[:5], more=True)
        arrived = time.monotonic()
        task = asyncio.create_task(app(client.scope, client.receive, client.send))
        await asyncio.sleep(0.3)
        sent = time.monotonic()  # the rest of the body, later
        client.send_body(BODY[5:])
        await asyncio.wait_for(task, 10)
        return client, arrived, sent

    client, arrived, sent = asyncio.run(scenario())
    assert client.status == 200
    assert arrived + 30 <= seen[0] < sent + 30

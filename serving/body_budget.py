"""Reading a request's body within a worker's budget for bodies in flight (serving/sizing.py
body_budget_bytes), for serving/guard.py.

A body takes its bytes from the budget as its chunks arrive, not what its Content-Length
declares: a client that declares a large body and trickles it holds the bytes it has sent,
never the budget other requests need. A chunk that would pass the budget waits (unread
further: the client is not read from meanwhile) for other bodies to free theirs, and is a 503
saying so at the request's deadline. What bodies hold stays within the budget, as before.

Stdlib only, as the guard.
"""

from __future__ import annotations

import asyncio
import math
import time

from serving.asgi import Receive, Refusal, Scope, header


class BodyBudget:
    """The bytes of request bodies read or being read, within ``total``; ``at_once`` and
    ``timeout`` (the request timeout) are only named in the 503's message."""

    def __init__(self, total: int, at_once: int, timeout: float):
        self.total, self.at_once, self.timeout = total, at_once, timeout
        self.held = 0
        self._freed = asyncio.Event()

    async def take(self, size: int, deadline: float) -> None:
        """Take ``size`` bytes, waiting until ``deadline`` (time.monotonic()) for other
        bodies to free them; a 503 saying so when they do not."""
        while self.held + size > self.total:
            try:
                await asyncio.wait_for(self._freed.wait(), max(deadline - time.monotonic(), 0))
            except TimeoutError:
                raise Refusal(503, f"the server is busy: its request bodies in flight hold "
                                   f"{self.held} bytes of its budget of {self.total} "
                                   f"({self.at_once} x the body limit), too much for this "
                                   f"one's next {size} for {self.timeout:g} s (the "
                                   f"server's request timeout); try again later") from None
        self.held += size

    def give(self, size: int) -> None:
        if not size:
            return
        self.held -= size
        self._freed.set()  # wakes every waiter, each checks again
        self._freed = asyncio.Event()


class Claim:
    """One request's share of the budget: the bytes of its body read so far (none without a
    budget), each counted ``weight`` times: an image body as the base64 text (4/3) it
    becomes before its model sees it, which is what a request's peak counts its body as."""

    def __init__(self, budget: BodyBudget | None, weight: float = 1.0):
        self.budget, self.size, self.weight = budget, 0, weight

    async def grow(self, size: int, deadline: float) -> None:
        if self.budget is not None:
            size = math.ceil(size * self.weight)
            await self.budget.take(size, deadline)
            self.size += size

    def release(self) -> None:
        if self.budget is not None:
            self.budget.give(self.size)
            self.size = 0


def declared_size(scope: Scope, limit: int, why: str = "") -> int | None:
    """The body's Content-Length; a 413 before a byte is read when it is over ``limit``
    (``why``: where that limit comes from, when it is not the server's)."""
    declared = header(scope, b"content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise Refusal(413, f"the request body has {declared} bytes, the limit is {limit}{why}")
    return None if declared is None else int(declared)


async def read_body(receive: Receive, limit: int, claim: Claim, deadline: float, timeout: float,
                    stall_timeout: float | None = None, why: str = "") -> bytearray | None:
    """The body in one buffer, grown in place (no list of chunks joined into a second copy),
    each chunk claimed from the budget before it is kept; None when the client went away.
    A 408 when none of it arrives for ``stall_timeout`` seconds or it is not all there by
    ``deadline`` (``timeout``, the request timeout, names it)."""
    body = bytearray()
    while True:
        left = deadline - time.monotonic()
        wait = left if stall_timeout is None else min(left, stall_timeout)
        try:
            message = await asyncio.wait_for(receive(), max(wait, 0))
        except TimeoutError:
            if stall_timeout is not None and wait == stall_timeout:
                raise Refusal(408, f"no part of the request body arrived for "
                                   f"{stall_timeout:g} s (the server's body timeout, "
                                   f"--body-timeout or $SERVING_BODY_TIMEOUT); the client is "
                                   f"dropped") from None
            raise Refusal(408, f"the request body did not arrive within {timeout:g} s (the "
                               f"server's request timeout)") from None
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        if len(body) + len(chunk) > limit:
            raise Refusal(413, f"the request body is larger than the limit, {limit} bytes{why}")
        await claim.grow(len(chunk), deadline)
        body += chunk
        if not message.get("more_body", False):
            return body

"""serving/remote.py's one line for a request that failed, against real sockets: a server
that takes the connection and closes it without answering, one that cuts its answer off,
and no server at all are three different lines."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest

from serving.remote import EndpointError, check_endpoint_reachable, endpoint_predict_fn

#: Half a chunked answer: a chunk of 5 bytes declared, 2 sent.
CUT_OFF = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
           b"Transfer-Encoding: chunked\r\n\r\n5\r\n{\"")


def read_request(connection: socket.socket) -> None:
    """Read one request whole (head, then its Content-Length of body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += connection.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    while len(body) < length:
        body += connection.recv(65536)


@contextmanager
def socket_server(answer: bytes) -> Iterator[str]:
    """A server on a free port that reads each request, sends ``answer`` and closes."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            connection.settimeout(10)
            with connection:
                read_request(connection)
                connection.sendall(answer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(10)
        listener.close()


def predict_once(url: str) -> str:
    with pytest.raises(EndpointError) as failed:
        endpoint_predict_fn(url, timeout=10)(np.zeros((1, 8, 8, 4), np.float32))
    return str(failed.value)


def test_a_server_closing_the_connection_unanswered_is_not_called_unreachable():
    with socket_server(b"") as url:
        message = predict_once(url)
        with pytest.raises(EndpointError) as ping:
            check_endpoint_reachable(url)
    for said in (message, str(ping.value)):
        assert "the server closed the connection without answering" in said, said
        assert "may have run out of memory (see its log)" in said
        assert "not reachable" not in said and "is the server running" not in said


def test_an_answer_cut_off_is_said_so():
    with socket_server(CUT_OFF) as url:
        message = predict_once(url)
    assert f"endpoint {url}/invocations: the answer was cut off (ChunkedEncodingError" in \
        message, message
    assert "could not be sent" not in message and "not reachable" not in message


def test_no_server_at_all_is_unreachable():
    with socket.create_server(("127.0.0.1", 0)) as listener:
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    assert "is not reachable (connection refused or host not found)" in predict_once(url)

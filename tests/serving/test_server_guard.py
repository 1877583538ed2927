"""serving/guard.py in front of MLflow's scoring app, on the session's real `segpipe serve`
process: bodies over the limit refused before they are read, bodies that are not JSON,
unknown and wrong-typed params refused with short 400s, every error a two-key JSON body
without the input echoed, and everything else answered by MLflow as before."""

from __future__ import annotations

import gzip
import io
import json
import re
import socket
import time
from urllib.parse import urlsplit

import numpy as np
import pandas as pd
import pytest
import requests

from serving.options import DEFAULT_MAX_JSON_VALUES
from tests.serving.conftest import BANDS, CLASSES, SERVER_MAX_REQUEST_MB
from tests.serving.server import REPO_ROOT

LEAKS = ("Traceback", "stack_trace", "site-packages", str(REPO_ROOT), "/tmp")


def post(server, body: bytes | str, content_type: str | None = "application/json"):
    headers = {"Content-Type": content_type} if content_type else {}
    return requests.post(f"{server.url}/invocations", data=body, headers=headers, timeout=120)


def assert_short_error(response: requests.Response, status: int, *phrases: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error_code", "message"}, body
    for phrase in phrases:
        assert phrase in body["message"], body
    assert len(response.text) < 600, response.text
    for leak in LEAKS:
        assert leak not in response.text
    return body


def tensor(height: int = 8, width: int = 8) -> list:
    return np.random.default_rng(0).integers(1, 1000, (1, height, width, BANDS)).tolist()


def test_unknown_params_are_400_naming_them_and_the_declared_ones(server):
    response = post(server, json.dumps({"inputs": tensor(), "params": {"ttta": True,
                                                                       "overlap": 0.25}}))
    body = assert_short_error(response, 400, "unknown params 'ttta'",
                              "the model takes nodata, output, overlap, pixel_size, resample, tta")
    assert body["error_code"] == "BAD_REQUEST"


def test_a_param_of_the_wrong_type_is_400_without_the_input_data(server):
    payload = json.dumps({"inputs": tensor(64, 64), "params": {"tta": "yes"}})
    response = post(server, payload)
    assert_short_error(response, 400, "param tta must be a boolean, got 'yes'")
    response = post(server, json.dumps({"inputs": tensor(), "params": {"overlap": [0.5] * 99}}))
    assert_short_error(response, 400, "param overlap must be a double, got [0.5, 0.5")
    response = post(server, json.dumps({"inputs": tensor(), "params": ["tta"]}))
    assert_short_error(response, 400, "params must be a JSON object, got list")


@pytest.mark.parametrize("body, phrase", [
    ('{"inputs": [[[[1, 2, 3, 4]' + ", 0" * 5000, "not valid JSON: Expecting"),
    ("not json at all " * 400, "not valid JSON: Expecting value at line 1 column 1"),
    (b'{"inputs": "\xff\xfe"}', "not UTF-8 text (byte 12)"),
    ("[1, 2, 3]", "must be a JSON object, got list"),
])
def test_a_body_that_is_not_a_json_object_is_a_short_400(server, body, phrase):
    response = post(server, body)
    assert_short_error(response, 400, phrase)
    text = body if isinstance(body, str) else body.decode("latin-1")
    assert text[:30] not in response.text


def test_mlflow_envelope_errors_come_back_short(server):
    """MLflow still answers what the guard lets through, in the guard's two-key form."""
    response = post(server, json.dumps({"instancez": "x" * 5000}))
    assert_short_error(response, 400)
    assert "x" * 50 not in response.text
    response = post(server, "a,b\n1,2\n", content_type="text/plain")
    assert_short_error(response, 415, "text/plain")
    response = post(server, json.dumps({"inputs": tensor()}), content_type=None)
    assert_short_error(response, 415, "no Content-Type")


def _raw_request(server, head: str, body: bytes = b"") -> str:
    """Send a request head and some body (maybe not all the request declares); return the
    answer."""
    address = urlsplit(server.url)
    with socket.create_connection((address.hostname, address.port), timeout=60) as sock:
        sock.sendall(head.encode() + b"\r\n")
        step = 64 * 1024
        try:
            for start in range(0, len(body), step):
                sock.sendall(body[start:start + step])
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed while we were still sending
        answer = _read_answer(sock)
    return answer.decode("latin-1")


def _read_answer(sock: socket.socket) -> bytes:
    """One HTTP answer from ``sock``: until it is complete or the server closes."""
    answer = b""
    while not _complete(answer):
        chunk = sock.recv(65536)
        if not chunk:
            break
        answer += chunk
    return answer


def _complete(answer: bytes) -> bool:
    head, separator, body = answer.partition(b"\r\n\r\n")
    if not separator:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return True


def test_a_body_declared_larger_than_the_limit_is_413_before_it_is_sent(server):
    head = ("POST /invocations HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            f"Content-Length: {10**10}\r\n")
    answer = _raw_request(server, head)
    assert answer.startswith("HTTP/1.1 413"), answer[:200]
    assert "10000000000 bytes, the limit is 8000000" in answer


def test_a_chunked_body_growing_past_the_limit_is_413_before_it_ends(server):
    limit = SERVER_MAX_REQUEST_MB * 10**6
    chunk = b"0" * 65536
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk)
                    for _ in range(limit // len(chunk) + 2))  # no final 0-chunk: unfinished
    head = ("POST /invocations HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\n")
    answer = _raw_request(server, head, body)
    assert answer.startswith("HTTP/1.1 413"), answer[:200]
    assert "larger than the limit, 8000000 bytes" in answer


def test_valid_requests_and_the_other_routes_answer_as_before(server):
    response = post(server, json.dumps({"inputs": tensor(12, 10),
                                        "params": {"tta": True, "output": "probabilities"}}))
    assert response.status_code == 200, response.text
    assert np.asarray(response.json()["predictions"]).shape == (1, 12, 10, CLASSES)
    for route in ("/ping", "/health"):
        assert requests.get(f"{server.url}{route}", timeout=10).status_code == 200
    version = requests.get(f"{server.url}/version", timeout=10)
    assert version.status_code == 200 and version.text[0].isdigit()
    assert_short_error(requests.get(f"{server.url}/invocations", timeout=10), 405,
                       "Method Not Allowed")


@pytest.mark.parametrize("method, route, status, phrase", [
    ("GET", "/foo", 404, "no route GET '/foo'; the routes are POST /invocations"),
    ("POST", "/", 404, "no route POST '/'"),
    ("POST", "/ping", 405, "Method Not Allowed"),
    ("DELETE", "/invocations", 405, "Method Not Allowed"),
])
def test_unknown_routes_and_methods_answer_the_two_key_error_body(server, method, route,
                                                                   status, phrase):
    response = requests.request(method, f"{server.url}{route}", timeout=10)
    body = assert_short_error(response, status, phrase)
    assert body["error_code"] == {404: "ENDPOINT_NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}[status]


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br"])
def test_a_compressed_body_is_a_415_naming_its_encoding(server, encoding):
    body = gzip.compress(json.dumps({"inputs": tensor()}).encode())
    response = requests.post(f"{server.url}/invocations", data=body, timeout=60,
                             headers={"Content-Type": "application/json",
                                      "Content-Encoding": encoding})
    body = assert_short_error(response, 415, f"the request body is '{encoding}'-encoded "
                                             f"(Content-Encoding); send it uncompressed")
    assert body["error_code"] == "UNSUPPORTED_MEDIA_TYPE"
    plain = requests.post(f"{server.url}/invocations", json={"inputs": tensor()}, timeout=60,
                          headers={"Content-Encoding": "identity"})
    assert plain.status_code == 200, plain.text


def test_a_body_of_too_many_json_values_is_413_before_it_is_parsed(server):
    """JSON numbers cost ~160 bytes each parsed: the body limit alone would let a request
    take 20 times its size in memory."""
    values = DEFAULT_MAX_JSON_VALUES + 2000
    body = '{"inputs": [' + ",".join(["0"] * values) + "]}"
    assert len(body) < SERVER_MAX_REQUEST_MB * 10**6
    response = post(server, body)
    assert_short_error(response, 413, f"the request body holds {values} or more JSON values, "
                                      f"the limit is {DEFAULT_MAX_JSON_VALUES}: send large "
                                      f"images as base64 .npy arrays")


def test_the_server_logs_what_memory_its_limits_allow(server):
    log = server.log_path.read_text()
    assert re.search(r"memory: up to [\d,]+ MB per worker \([\d,]+ MB with the model loaded "
                     r"\+ 2 request\(s\) at once of up to 8 MB, 2000000 JSON values and "
                     r"100000 pixels\); request bodies in flight, read or waiting their turn: "
                     r"up to 16 MB, within that figure", log), log[-3000:]


def test_large_string_answers_are_sent_in_pieces_as_mlflow_would_write_them():
    from mlflow.pyfunc.scoring_server import predictions_to_json

    from serving.routes import _records_json, request_frame

    long = "QUJD" * 3_000_000  # 12 MB: three pieces
    frame = pd.DataFrame({"mask": [long, "Zm9v"], "note": ['say "hi"\n', "é"]}, dtype=object)
    expected = io.StringIO()
    predictions_to_json(frame, expected)
    pieces = list(_records_json(frame))
    assert len(pieces) > 6
    assert b"".join(pieces) == expected.getvalue().encode()
    split = request_frame({"columns": ["npy"], "data": [[long]]}, "split")
    assert split["npy"][0] is long  # the request's own string, not a copy
    assert request_frame([{"npy": long}], "records")["npy"][0] is long
    for value, orient in (([1], "split"), ({"data": [], "rows": 1}, "split"), ({}, "records")):
        with pytest.raises((TypeError, ValueError)):
            request_frame(value, orient)


def test_slow_uploads_hold_no_turn_a_fast_request_is_answered_meanwhile(server):
    """Two clients that send their bodies slowly (a phone on a bad link) hold bytes of the
    budget for bodies in flight, not the server's two turns: a fast request is answered at
    once, and the slow ones are when their bodies have come."""
    address = urlsplit(server.url)
    body = json.dumps({"inputs": tensor()}).encode()
    head = ("POST /invocations HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    slow = [socket.create_connection((address.hostname, address.port), timeout=60)
            for _ in range(2)]
    try:
        for sock in slow:
            sock.sendall(head + body[:10])  # and then nothing for a while
        time.sleep(0.5)  # both are in: past their headers, reading their bodies
        started = time.monotonic()
        fast = requests.post(f"{server.url}/invocations", json={"inputs": tensor()},
                             timeout=30)
        assert fast.status_code == 200, fast.text
        assert time.monotonic() - started < 15
        for sock in slow:
            sock.sendall(body[10:])
            answer = _read_answer(sock)
            assert answer.startswith(b"HTTP/1.1 200"), answer[:300]
    finally:
        for sock in slow:
            sock.close()

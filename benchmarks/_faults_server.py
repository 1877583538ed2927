"""Fault cases of the model server: one real `segpipe serve` process on the tiny registered
model, sent what a careless or hostile client sends."""

from __future__ import annotations

import base64
import json
import socket
import time
from urllib.parse import urlsplit

import numpy as np
from _faults_common import LEAKS, Context, case

from tests.serving.conftest import CLASSES
from tests.serving.test_server import image_frame, pixels, plain_b64, strict_json
from tests.serving.test_server_errors import png_claiming, truncated_image


def _post(ctx: Context, body: str | bytes):
    import requests

    url = f"{ctx.server().url}/invocations"  # the server starts on first use, untimed
    started = time.perf_counter()
    response = requests.post(url, data=body, timeout=300,
                             headers={"Content-Type": "application/json"})
    return response, time.perf_counter() - started


def _error(ctx: Context, body: str | bytes, status: int, *needles: str) -> tuple[str, bool]:
    """Got/ok for a request that must be refused with ``status`` and a short two-key body."""
    response, seconds = _post(ctx, body)
    try:
        answer = response.json()
    except ValueError:
        answer = None
    message = answer.get("message", "") if isinstance(answer, dict) else response.text
    got = (f"{response.status_code} in {seconds:.2f} s, {len(response.text)} bytes: "
           f"{ctx.short(message, 200)}")
    ok = (response.status_code == status and isinstance(answer, dict)
          and set(answer) == {"error_code", "message"} and len(response.text) < 600
          and all(needle in message for needle in needles)
          and not any(leak in response.text for leak in (*LEAKS, "/tmp", str(ctx.root))))
    return got, ok


@case("server", "400 naming image 1 of 1 (cannot read pixels: truncated), no stack trace")
def serve_truncated_png(ctx: Context) -> tuple[str, bool]:
    return _error(ctx, json.dumps(image_frame(truncated_image(pixels(64, 64)))), 400,
                  "image 1 of 1: cannot read pixels")


@case("server", "200; inf, -inf and NaN pixels are 255; strict JSON (no NaN/Infinity tokens)")
def serve_inf_pixels(ctx: Context) -> tuple[str, bool]:
    image = pixels(20, 24).astype(np.float64)
    bad = {(3, 4, 0): np.inf, (5, 6, 2): -np.inf, (7, 8, 1): np.nan}
    for index, value in bad.items():
        image[index] = value
    response, seconds = _post(ctx, json.dumps({"inputs": [image.tolist()]}))  # Infinity tokens
    try:
        mask = np.asarray(strict_json(response.text)["predictions"][0])
    except (ValueError, KeyError, TypeError) as exc:
        return f"{response.status_code}: not strict JSON ({exc})", False
    at_bad = [int(mask[row, col]) for row, col, _ in bad]
    others = int((mask < CLASSES).sum())
    got = (f"{response.status_code} in {seconds:.2f} s, strict JSON; mask at the bad pixels "
           f"{at_bad}, {others} of {20 * 24 - 3} others a class")
    return got, response.status_code == 200 and at_bad == [255] * 3 and others == 20 * 24 - 3


@case("server", "400 'image 1 of 1 (50000x50000) has 2500000000' pixels, answered before "
                "decoding "
                "(within a second or so)")
def serve_png_claiming_50000x50000(ctx: Context) -> tuple[str, bool]:
    body = json.dumps(image_frame(base64.b64encode(png_claiming(50_000, 50_000)).decode()))
    return _error(ctx, body, 400, "image 1 of 1 (50000x50000) has 2500000000")


@case("server", "two images, each within max_pixels, together over it: 400 before any is "
                "predicted")
def serve_too_many_pixels_across_images(ctx: Context) -> tuple[str, bool]:
    limit = ctx.model()["max_pixels"]
    side = int((limit * 0.6) ** 0.5)  # one image is 60% of the limit, two are 120%
    image = plain_b64(pixels(side, side))
    alone, alone_s = _post(ctx, json.dumps(image_frame(image)))
    got, ok = _error(ctx, json.dumps(image_frame(image, image)), 400,
                     "the request's images have")
    return (f"{got} (one {side}x{side} image alone: {alone.status_code} in {alone_s:.2f} s)",
            ok and alone.status_code == 200)


@case("server", "400 naming the unknown param 'ttta' and the params the model takes")
def serve_unknown_param(ctx: Context) -> tuple[str, bool]:
    body = json.dumps({"inputs": [pixels(8, 8).tolist()], "params": {"ttta": True}})
    return _error(ctx, body, 400, "unknown params 'ttta'", "tta")


@case("server", "400 'not valid JSON' without the body quoted back")
def serve_invalid_json(ctx: Context) -> tuple[str, bool]:
    body = '{"inputs": [[[[1, 2, 3, 4]' + ", 12345" * 20_000
    got, ok = _error(ctx, body, 400, "not valid JSON")
    return got, ok and "12345, 12345" not in got


@case("server", "413 for a body declared larger than the limit, answered before any of it "
                "is sent")
def serve_oversized_body(ctx: Context) -> tuple[str, bool]:
    address = urlsplit(ctx.server().url)
    head = ("POST /invocations HTTP/1.1\r\nHost: faults\r\nContent-Type: application/json\r\n"
            f"Content-Length: {10**12}\r\n\r\n")
    started = time.perf_counter()
    with socket.create_connection((address.hostname, address.port), timeout=60) as sock:
        sock.sendall(head.encode())
        answer = b""
        while b"}" not in answer:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    seconds = time.perf_counter() - started
    text = answer.decode("latin-1")
    status_line = text.split("\r\n", 1)[0]
    body = text.partition("\r\n\r\n")[2]
    got = f"{status_line} in {seconds:.2f} s: {ctx.short(body, 200)}"
    return got, status_line.startswith("HTTP/1.1 413") and "the limit is" in body


"""serving/guard.py in process with a stand-in for the model's dataframe route: what an image
body holds while its model runs (its base64 text only, counted in the budget as that text),
its query string checked before any of its body is read, and params handed to the model in
the form every model takes (nodata "nan" as a float NaN)."""

from __future__ import annotations

import asyncio
import base64
import json
import math
import tracemalloc

import pytest

from serving.guard import RequestGuard
from serving.pyfunc import params_schema
from tests.serving.conftest import make_config
from tests.serving.test_guard_flow import Client

SCHEMA = params_schema(make_config())
LIMIT = 8_000_000


class Model:
    """The dataframe route's stand-in: records what it was handed, the Python memory traced
    and the budget held when it starts."""

    def __init__(self):
        self.documents: list[dict] = []
        self.traced: list[int] = []
        self.budget_held: list[int] = []
        self.app: RequestGuard | None = None

    def __call__(self, document: dict) -> tuple[int, bytes]:
        self.documents.append(document)
        if tracemalloc.is_tracing():
            self.traced.append(tracemalloc.get_traced_memory()[0])
        self.budget_held.append(self.app.budget.held)
        return 200, b'{"predictions": []}'


def served(model: Model, invocations=None) -> RequestGuard:
    async def no_app(scope, receive, send):
        raise AssertionError("only /invocations is asked")

    model.app = RequestGuard(no_app, SCHEMA, max_body_bytes=LIMIT, timeout=30,
                             dataframes=model,
                             invocations=invocations or (lambda b, t: (500, b"{}")),
                             max_json_values=10**6, at_once=1, body_timeout=5)
    return model.app


def ask(app: RequestGuard, client: Client, body: bytes | None) -> Client:
    """One request; ``body`` None: the client sends none of it (the guard must not wait)."""
    if body is not None:
        for start in range(0, max(len(body), 1), 2**20):
            client.send_body(body[start:start + 2**20], more=start + 2**20 < len(body))
    asyncio.run(asyncio.wait_for(app(client.scope, client.receive, client.send), 10))
    return client


def test_a_raw_image_holds_its_base64_text_alone_while_predicting_and_counts_it():
    """The raw bytes are freed once encoded, the text built once: while the model runs the
    request holds its base64 (as a JSON request of that text would) and at its peak twice
    that (serving/sizing.py, parsing); the budget counts the text, not the raw bytes."""
    model = Model()
    app = served(model)
    raw = bytes(3_000_000)
    text_size = len(base64.b64encode(raw))
    client = Client(len(raw), b"image/tiff")
    for start in range(0, len(raw), 2**20):
        client.send_body(raw[start:start + 2**20], more=start + 2**20 < len(raw))
    del raw
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        asyncio.run(asyncio.wait_for(app(client.scope, client.receive, client.send), 10))
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert client.status == 200
    held = model.traced[0] - base
    assert held < 1.1 * text_size, (held, text_size)
    assert peak < 2.1 * text_size, (peak, text_size)
    assert model.budget_held[0] >= text_size
    assert app.budget.held == 0


def test_nodata_nan_reaches_the_model_as_a_float_nan_on_both_dataframe_routes():
    """A model registered before the string "nan" refuses it, not a float NaN."""
    model = Model()
    npy = json.dumps({"dataframe_split": {"columns": ["npy"], "data": [["AAAA"]]},
                      "params": {"nodata": "NaN", "tta": True}}).encode()
    assert ask(served(model), Client(len(npy)), npy).status == 200
    assert ask(served(model), Client(3, b"image/png", b"nodata=nan"), b"png").status == 200
    for document in model.documents:
        nodata = document["params"]["nodata"]
        assert isinstance(nodata, float) and math.isnan(nodata), document
    assert model.documents[0]["params"]["tta"] is True


@pytest.mark.parametrize("content_type, query, status, phrase", [
    (b"image/tiff", b"tta=true&tta=false", 400, "param 'tta' is given twice"),
    (b"image/tiff", b"foo=1", 400, "unknown params 'foo'"),
    (b"image/tiff", b"pixel_size=1_0", 400, "param pixel_size must be a double, got '1_0'"),
    (b"application/json", b"output=probabilities", 400,
     'params of a JSON request go in its "params" key'),
    (None, b"", 415, "Content-Type image/tiff, image/png, image/jpeg"),
])
def test_what_the_head_tells_is_refused_before_any_of_the_body_is_read(content_type, query,
                                                                       status, phrase):
    """The client declares a body and sends none of it: the answer cannot wait for it."""
    app = served(Model())
    client = ask(app, Client(1000, content_type, query), None)
    assert client.status == status and phrase in client.message, client.message
    assert client.receives == 0


def test_an_empty_image_body_is_a_400_and_an_over_large_one_names_its_limit():
    app = served(Model())
    empty = ask(app, Client(0, b"image/png"), b"")
    assert (empty.status, empty.message) == (400, "the request body is empty: send an image "
                                                  "file")
    large = ask(app, Client(LIMIT, b"image/tiff"), None)
    assert large.status == 413 and "the limit is 6000000 (an image body's limit: 3/4 of the " \
        "server's body limit, 8000000, as it travels on to the model in base64)" in \
        large.message, large.message


def test_the_nan_rewrite_for_mlflow_is_no_larger_than_the_body_and_within_the_limit():
    """nodata "nan" on MLflow's route is written again as the NaN literal: non-ASCII text
    stays UTF-8 (not \\uXXXX, 2-6 times its bytes); a rewrite past the limit is a 413."""
    handed: list[bytes] = []

    def invocations(body: bytes, content_type: str) -> tuple[int, bytes]:
        handed.append(body)
        return 200, b'{"predictions": []}'

    padded = json.dumps({"inputs": [[[[1, 2, 3, 4]]]], "params": {"nodata": "nan"},
                         "pad": "é\u4e2d\U0001f600" * 100_000}, ensure_ascii=False).encode()
    client = ask(served(Model(), invocations), Client(len(padded)), padded)
    assert client.status == 200
    assert len(handed[0]) <= len(padded) and b"NaN" in handed[0]
    assert json.loads(handed[0])["pad"] == json.loads(padded)["pad"]
    longer = b'{"params": {"nodata": "nan"}, "inputs": [[[[' + b",".join(
        [b"1E5"] * 950_000) + b"]]]]}"
    refused = ask(served(Model(), invocations), Client(len(longer)), longer)
    assert refused.status == 413 and "its nodata \"nan\" written as NaN for MLflow" in \
        refused.message, refused.message
    assert len(handed) == 1

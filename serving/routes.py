"""The model server's own routes (serving/server.py): GET /model, and the answers
serving/guard.py runs on its threads for POST /invocations: MLflow's own for a tensor or CSV
request, the model's ``predict`` for a dataframe request. Imported by the server before the
model's packaged serving/ is let in (which may predate this module)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from serving.guard import error_body, excerpt
from serving.request_forms import INPUT_KEYS

#: Characters of an answer's string sent at a time.
_ANSWER_CHUNK = 4 * 2**20


def model_route(model, model_uri: str | None):
    """GET /model: which model this server runs, so a client can check it is the one it
    means (`segpipe predict --endpoint`): the URI the server was started with, the logged
    model's id and run, its serving config and the params it takes."""
    from fastapi.responses import JSONResponse

    config = getattr(model.unwrap_python_model(), "config", None)
    schema = model.metadata.get_params_schema()
    body = {"model_uri": model_uri, "model_uuid": model.metadata.model_uuid,
            "run_id": model.metadata.run_id,
            "serving_config": None if config is None else config.model_dump(mode="json"),
            "params": sorted(spec.name for spec in schema.params) if schema else []}

    async def describe() -> JSONResponse:
        return JSONResponse(body)

    return describe


def _failure(exc: Exception, request: str) -> tuple[int, bytes]:
    """The answer to a failed prediction: MLflow's errors keep their status and message (the
    guard shortens them); any other is a 500 whose traceback goes to the log only."""
    import logging

    from mlflow.exceptions import MlflowException

    if isinstance(exc, MlflowException):
        return exc.get_http_status_code(), exc.serialize_as_json().encode()
    logging.getLogger(__name__).error("the model failed on %s", request, exc_info=exc)
    return 500, error_body(500, "the model failed on this request; the server log has the "
                                "details")


def invocations_route(model):
    """MLflow's own answer to POST /invocations (its ``invocations``, what its route runs on a
    thread), for the guard to run on a thread it keeps: MLflow's route answers 504 at its
    timeout and forgets the thread, whose prediction still holds its memory until it stops.
    MLflow's errors are its own (the guard shortens them); any other failure is a 500 whose
    traceback goes to the log only."""

    from mlflow.pyfunc.scoring_server import invocations

    input_schema = model.metadata.get_input_schema()

    def answer(body: bytes, content_type: str) -> tuple[int, bytes]:
        try:
            result = invocations(body, content_type, model, input_schema)
        except Exception as exc:
            return _failure(exc, "a request")
        response = result.response
        return result.status, response.encode() if isinstance(response, str) else response

    return answer


def dataframe_route(python_model):
    """The answer to a dataframe request (the ``npy`` and ``image`` routes): parsed as
    MLflow's scoring server parses it and answered by the model's own ``predict``, without
    MLflow's check against the signature, whose (N, H, W, C) tensor cannot describe a column
    of base64 files. Answers are MLflow's ``{"predictions": [...]}``; errors are the model's
    own short ones."""
    import io

    import pandas as pd
    from mlflow.pyfunc.scoring_server import predictions_to_json

    def answer(document: dict) -> tuple[int, bytes]:
        keys = [key for key in document if key in INPUT_KEYS]  # others ignored, as MLflow does
        if len(keys) != 1:
            return 400, error_body(400, f"the request must hold one input, got "
                                        f"{', '.join(excerpt(key) for key in keys[:5])}")
        orient, params = keys[0].removeprefix("dataframe_"), document.get("params")
        try:
            frame = request_frame(document[keys[0]], orient)
        except Exception as exc:  # pandas raises a variety of types for malformed frames
            return 400, error_body(400, f"{keys[0]} is not a dataframe in {orient!r} "
                                        f"orientation ({type(exc).__name__})")
        del document  # the frame holds the request's strings now
        try:
            predictions = python_model.predict(None, frame, params)
        except Exception as exc:
            return _failure(exc, "a dataframe request")
        if isinstance(predictions, pd.DataFrame) and all(
                isinstance(value, str) for value in predictions.to_numpy().ravel()):
            return 200, _records_json(predictions)
        buffer = io.StringIO()
        predictions_to_json(predictions, buffer)
        return 200, buffer.getvalue().encode()

    return answer


def request_frame(value: Any, orient: str):
    """A request's dataframe, as MLflow's ``dataframe_from_parsed_json`` makes it (the same
    envelope checks), but holding the request's own strings: pandas 3 would copy each into
    Arrow memory, and again on every access (a 600 MB base64 string three times over)."""
    import pandas as pd

    if orient == "records":
        if not isinstance(value, list):
            raise TypeError(f"records must be a list, got {type(value).__name__}")
        return pd.DataFrame(data=value, dtype=object)
    if not isinstance(value, dict) or "data" not in value \
            or set(value) - {"columns", "data", "index"}:
        raise ValueError("split needs 'data', and 'columns' and 'index' at most besides")
    return pd.DataFrame(index=value.get("index"), columns=value.get("columns"),
                        data=value["data"], dtype=object)


def _records_json(frame) -> Iterator[bytes]:
    """``predictions_to_json(frame)`` for a frame of strings (base64 masks, probabilities),
    as chunks: a long string goes out piece by piece instead of being copied whole into the
    JSON text, then into its bytes."""
    yield b'{"predictions": ['
    for row, record in enumerate(frame.to_dict(orient="records")):
        yield b", {" if row else b"{"
        for key, (name, value) in enumerate(record.items()):
            yield f'{", " if key else ""}{json.dumps(name)}: "'.encode()
            for start in range(0, len(value), _ANSWER_CHUNK):
                yield json.dumps(value[start:start + _ANSWER_CHUNK])[1:-1].encode()
            yield b'"'
        yield b"}"
    yield b"]}"

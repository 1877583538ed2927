"""The model server: MLflow's scoring app (the one `mlflow models serve` runs: /invocations,
/ping, /health, /version) plus GET /model (which model it runs), behind serving/guard.py, on
uvicorn.

    python -m serving.server --model-uri models:/segpipe@champion [--host 127.0.0.1]
        [--port 5001] [--workers 1] [--timeout 600] [--max-request-mb 1000] ...

(the options, their defaults and environment variables: serving/options.py). `segpipe
serve`, the serving image and the Kubernetes Deployment all run this. The model is
downloaded once, by this process, into a temporary folder removed at exit; each uvicorn
worker loads it from there. The tracking store is MLflow's usual environment
(MLFLOW_TRACKING_URI).
"""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import sys
import tempfile
from collections.abc import Iterator
from typing import Any

# The server's own copies, imported before create_app() lets the model's packaged serving/
# in (which may predate them).
from serving import sizing
from serving.guard import RequestGuard, error_body, excerpt
from serving.options import (  # noqa: F401  the defaults others name the server by
    DEFAULT_HOST,
    DEFAULT_MAX_REQUEST_MB,
    DEFAULT_PORT,
    DEFAULT_TIMEOUT,
    DEFAULT_WORKERS,
    MLFLOW_UI_PORT,
    parse_args,
)

_MODEL_PATH_ENV = "SEGPIPE_SERVING_MODEL_PATH"
_MODEL_URI_ENV = "SEGPIPE_SERVING_MODEL_URI"
_MAX_REQUEST_ENV = "SEGPIPE_SERVING_MAX_REQUEST_BYTES"
_MAX_JSON_VALUES_ENV = "SEGPIPE_SERVING_MAX_JSON_VALUES"
_WORKERS_ENV = "SEGPIPE_SERVING_WORKERS"
_MEMORY_LIMIT_ENV = "SEGPIPE_SERVING_MEMORY_LIMIT_BYTES"
_BODY_TIMEOUT_ENV = "SEGPIPE_SERVING_BODY_TIMEOUT"
_TIMEOUT_ENV = "MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT"  # read by MLflow's app too
#: The input keys of MLflow's JSON request format.
_INPUT_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")
#: Characters of an answer's string sent at a time.
_ANSWER_CHUNK = 4 * 2**20


def create_app():
    """The app of one uvicorn worker (a factory: each worker process calls it)."""
    import warnings

    from serving.quiet import import_tensorflow_quietly

    import_tensorflow_quietly()  # before MLflow and the model import it, chattering
    from mlflow.environment_variables import MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT
    from mlflow.pyfunc import scoring_server

    # The model runs the serving/ and segmodels/ it was logged with (its code_paths, put
    # first on sys.path when it loads), as under `mlflow models serve`, not the copy this
    # server was started from: forget the latter's modules (the guard keeps its own).
    for name in [name for name in sys.modules if name.split(".")[0] == "serving"]:
        del sys.modules[name]
    # Held back: MLflow's advice to model authors about type hints, no concern of whoever
    # runs the server (recorded, since loading the model puts its own filters first).
    with warnings.catch_warnings(record=True) as caught:
        model = scoring_server.load_model_with_mlflow_config(os.environ[_MODEL_PATH_ENV])
    for warning in caught:
        if "type hints" not in str(warning.message):
            warnings.showwarning(warning.message, warning.category, warning.filename,
                                 warning.lineno)
    app = scoring_server.init(model)
    app.get("/model")(model_route(model, os.environ.get(_MODEL_URI_ENV)))
    python_model = model.unwrap_python_model()
    # A model logged before the server took turns and deadlines from its handler has
    # neither: its requests then go in at once and run to their end, as they did.
    handler = getattr(python_model, "handler", None)
    guard = RequestGuard(app, model.metadata.get_params_schema(),
                         max_body_bytes=int(os.environ[_MAX_REQUEST_ENV]),
                         timeout=float(MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT.get()),
                         dataframes=dataframe_route(python_model),
                         invocations=invocations_route(model),
                         max_json_values=int(os.environ[_MAX_JSON_VALUES_ENV]),
                         at_once=getattr(handler, "at_once", None),
                         deadline=getattr(handler, "deadline", None),
                         body_timeout=float(os.environ[_BODY_TIMEOUT_ENV]))
    _check_memory(guard, python_model.config.max_pixels)
    return guard


def _check_memory(guard: RequestGuard, max_pixels: int) -> None:
    """Log what this worker may take at most, and warn when the workers may need more than
    the memory limit (--memory-limit-mb, else the container's)."""
    import logging

    logger = logging.getLogger("uvicorn.error")
    if guard.at_once is None:
        logger.warning("memory: the model's serving code predates turns, so requests go in "
                       "all at once and their memory is not bounded; register it again")
        return
    at_once = guard.at_once
    loaded = sizing.resident_bytes()
    peak = sizing.worker_peak_bytes(loaded, at_once, guard.max_body_bytes,
                                    guard.max_json_values, max_pixels)
    detail = (f"{loaded / sizing.MB:,.0f} MB with the model loaded + {at_once} request(s) "
              f"at once of up to {guard.max_body_bytes / sizing.MB:,.0f} MB, "
              f"{guard.max_json_values} JSON values and {max_pixels} pixels")
    logger.info("memory: up to %s MB per worker (%s); request bodies in flight, read or "
                "waiting their turn: up to %s MB, within that figure",
                f"{peak / sizing.MB:,.0f}", detail, f"{guard.budget.total / sizing.MB:,.0f}")
    if os.environ.get(_MEMORY_LIMIT_ENV):
        limit, source = int(os.environ[_MEMORY_LIMIT_ENV]), "--memory-limit-mb"
    else:
        limit, source = sizing.container_memory_limit(), "the container's"
    if limit is not None:
        workers = int(os.environ.get(_WORKERS_ENV, "1"))
        if warning := sizing.memory_warning(peak, workers, limit, source, detail):
            logger.warning(warning)


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


def invocations_route(model):
    """MLflow's own answer to POST /invocations (its ``invocations``, what its route runs on a
    thread), for the guard to run on a thread it keeps: MLflow's route answers 504 at its
    timeout and forgets the thread, whose prediction still holds its memory until it stops.
    MLflow's errors are its own (the guard shortens them); any other failure is a 500 whose
    traceback goes to the log only."""
    import logging

    from mlflow.exceptions import MlflowException
    from mlflow.pyfunc.scoring_server import invocations

    input_schema = model.metadata.get_input_schema()

    def answer(body: bytes, content_type: str) -> tuple[int, bytes]:
        try:
            result = invocations(body, content_type, model, input_schema)
        except MlflowException as exc:
            return exc.get_http_status_code(), exc.serialize_as_json().encode()
        except Exception:
            logging.getLogger(__name__).exception("the model failed on a request")
            return 500, error_body(500, "the model failed on this request; the server log "
                                        "has the details")
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
    import logging

    import pandas as pd
    from mlflow.exceptions import MlflowException
    from mlflow.pyfunc.scoring_server import predictions_to_json

    def answer(document: dict) -> tuple[int, bytes]:
        keys = [key for key in document if key in _INPUT_KEYS]  # others ignored, as MLflow does
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
        except MlflowException as exc:
            return exc.get_http_status_code(), exc.serialize_as_json().encode()
        except Exception:
            logging.getLogger(__name__).exception("the model failed on a dataframe request")
            return 500, error_body(500, "the model failed on this request; the server log "
                                        "has the details")
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


def _download(model_uri: str, folder: str) -> str:
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        return mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=folder)
    except (MlflowException, OSError) as exc:
        message = getattr(exc, "message", None) or str(exc)
        message = " ".join(line.strip("# ") for line in message.splitlines() if line.strip())
        sys.exit(f"error: cannot fetch model {model_uri}: {message[:300]}")


def port_problem(host: str, port: int) -> str | None:
    """Why the server could not listen on ``host:port`` (in use, not allowed, no such
    interface), found by binding it as uvicorn will, before the model is fetched; None when
    it can."""
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                       flags=socket.AI_PASSIVE)
        bound = 0
        for family, kind, proto, _, address in addresses:
            with socket.socket(family, kind, proto) as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
                try:
                    sock.bind(address)
                except OSError as exc:
                    # a name's address on an interface this host lacks (::1 with IPv6 off)
                    # is skipped, as asyncio's server does; any other failure counts
                    if exc.errno != errno.EADDRNOTAVAIL or len(addresses) == 1:
                        raise
                    continue
                bound += 1
        if not bound:
            raise OSError(errno.EADDRNOTAVAIL, os.strerror(errno.EADDRNOTAVAIL))
    except (OSError, OverflowError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        return f"cannot listen on {host}:{port}: {reason}"
    return None


def local_model_problem(model_uri: str) -> str | None:
    """Why a local model folder (a path or ``file://``) is no MLflow model; None otherwise
    (other URIs, ``runs:/`` and ``models:/`` included, are MLflow's to resolve)."""
    from urllib.parse import urlparse

    scheme = urlparse(model_uri).scheme
    if scheme not in ("", "file"):
        return None
    path = urlparse(model_uri).path if scheme == "file" else model_uri
    if not os.path.exists(path):
        return f"model {model_uri}: no such folder"
    if not os.path.isfile(os.path.join(path, "MLmodel")):
        return f"model {model_uri}: not an MLflow model: no MLmodel file in {path}"
    return None


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    # Wrong values on the command line: refused (exit 2, as the parser's own refusals)
    # before the model is fetched and loaded.
    for problem in (port_problem(args.host, args.port), local_model_problem(args.model_uri)):
        if problem:
            print(f"error: {problem}", file=sys.stderr)
            sys.exit(2)
    import uvicorn

    # uvicorn shuts down on SIGINT/SIGTERM, then raises the signal again with the handler it
    # found: make that an exit that unwinds, so the model's temporary folder is removed.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _exit_on_signal)
    with tempfile.TemporaryDirectory(prefix="segpipe-serve-") as folder:
        os.environ[_MODEL_PATH_ENV] = _download(args.model_uri, folder)
        os.environ[_MODEL_URI_ENV] = args.model_uri
        os.environ[_MAX_REQUEST_ENV] = str(args.max_request_mb * 10**6)
        os.environ[_MAX_JSON_VALUES_ENV] = str(args.max_json_values)
        os.environ[_WORKERS_ENV] = str(args.workers)
        if args.memory_limit_mb is not None:
            os.environ[_MEMORY_LIMIT_ENV] = str(args.memory_limit_mb * 10**6)
        os.environ[_TIMEOUT_ENV] = str(args.timeout)
        os.environ[_BODY_TIMEOUT_ENV] = str(args.body_timeout)
        uvicorn.run("serving.server:create_app", factory=True, host=args.host, port=args.port,
                    workers=args.workers)


if __name__ == "__main__":
    main()

"""The model server: MLflow's scoring app (the one `mlflow models serve` runs: /invocations,
/ping, /health, /version) plus GET /model (which model it runs), behind serving/guard.py, on
uvicorn.

    python -m serving.server --model-uri models:/segpipe@champion [--host 127.0.0.1]
        [--port 5001] [--workers 1] [--timeout 600] [--max-request-mb 1000]

`segpipe serve`, the serving image and the Kubernetes Deployment all run this. The model is
downloaded once, by this process, into a temporary folder removed at exit; each uvicorn
worker loads it from there. The tracking store is MLflow's usual environment
(MLFLOW_TRACKING_URI).
"""

from __future__ import annotations

import argparse
import errno
import os
import signal
import socket
import sys
import tempfile

# The guard's own copy, imported before create_app() lets the model's packaged serving/ in.
from serving.guard import RequestGuard, error_body, excerpt

DEFAULT_HOST = "127.0.0.1"
#: MLflow's own default for `mlflow ui` / `mlflow server`.
MLFLOW_UI_PORT = 5000
#: Beside MLflow's UI, not on it.
DEFAULT_PORT = MLFLOW_UI_PORT + 1
DEFAULT_WORKERS = 1
#: Seconds per request (MLflow's default, 60, is too short for large images).
DEFAULT_TIMEOUT = 600
#: Largest request body in MB (10**6 bytes): room for a base64 .npy request at the default
#: pixel limit (64 MP x 4 uint16 bands = 683 MB in base64).
DEFAULT_MAX_REQUEST_MB = 1000

_MODEL_PATH_ENV = "SEGPIPE_SERVING_MODEL_PATH"
_MODEL_URI_ENV = "SEGPIPE_SERVING_MODEL_URI"
_MAX_REQUEST_ENV = "SEGPIPE_SERVING_MAX_REQUEST_BYTES"
_TIMEOUT_ENV = "MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT"  # read by MLflow's app too
#: The input keys of MLflow's JSON request format.
_INPUT_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m serving.server", description=__doc__
                                     .split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--model-uri", required=True,
                        help="models:/NAME@ALIAS, runs:/ URI or local model folder")
    parser.add_argument("--host", default=DEFAULT_HOST,
                        help="interface to bind; 0.0.0.0 exposes it to the network")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--workers", type=_positive, default=DEFAULT_WORKERS,
                        help="uvicorn worker processes, each with its own copy of the model")
    parser.add_argument("--timeout", type=_positive, default=DEFAULT_TIMEOUT,
                        help="seconds per request, receiving the body included")
    parser.add_argument("--max-request-mb", type=_positive, default=DEFAULT_MAX_REQUEST_MB,
                        help="largest request body in MB, refused (413) before it is read")
    return parser


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


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
    return RequestGuard(app, model.metadata.get_params_schema(),
                        max_body_bytes=int(os.environ[_MAX_REQUEST_ENV]),
                        timeout=float(MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT.get()),
                        dataframes=dataframe_route(model.unwrap_python_model()))


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


def dataframe_route(python_model):
    """The answer to a dataframe request (the ``npy`` and ``image`` routes): parsed as
    MLflow's scoring server parses it and answered by the model's own ``predict``, without
    MLflow's check against the signature, whose (N, H, W, C) tensor cannot describe a column
    of base64 files. Answers are MLflow's ``{"predictions": [...]}``; errors are the model's
    own short ones."""
    import io
    import logging

    from mlflow.exceptions import MlflowException
    from mlflow.pyfunc.scoring_server import predictions_to_json
    from mlflow.utils.proto_json_utils import dataframe_from_parsed_json

    def answer(document: dict) -> tuple[int, bytes]:
        keys = [key for key in document if key in _INPUT_KEYS]  # others ignored, as MLflow does
        if len(keys) != 1:
            return 400, error_body(400, f"the request must hold one input, got "
                                        f"{', '.join(excerpt(key) for key in keys[:5])}")
        orient = keys[0].removeprefix("dataframe_")
        try:
            frame = dataframe_from_parsed_json(document[keys[0]], pandas_orient=orient)
        except Exception as exc:  # pandas raises a variety of types for malformed frames
            return 400, error_body(400, f"{keys[0]} is not a dataframe in {orient!r} "
                                        f"orientation ({type(exc).__name__})")
        buffer = io.StringIO()
        try:
            predictions_to_json(python_model.predict(None, frame, document.get("params")),
                                buffer)
        except MlflowException as exc:
            return exc.get_http_status_code(), exc.serialize_as_json().encode()
        except Exception:
            logging.getLogger(__name__).exception("the model failed on a dataframe request")
            return 500, error_body(500, "the model failed on this request; the server log "
                                        "has the details")
        return 200, buffer.getvalue().encode()

    return answer


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
    args = build_parser().parse_args(argv)
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
        os.environ[_TIMEOUT_ENV] = str(args.timeout)
        uvicorn.run("serving.server:create_app", factory=True, host=args.host, port=args.port,
                    workers=args.workers)


if __name__ == "__main__":
    main()

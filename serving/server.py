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
import os
import signal
import socket
import sys
import tempfile

# The server's own copies, imported before create_app() lets the model's packaged serving/
# in (which may predate them).
from serving import sizing
from serving.guard import RequestGuard
from serving.options import (  # noqa: F401  the defaults others name the server by
    DEFAULT_HOST,
    DEFAULT_MAX_REQUEST_MB,
    DEFAULT_PORT,
    DEFAULT_TIMEOUT,
    DEFAULT_WORKERS,
    MLFLOW_UI_PORT,
    parse_args,
)
from serving.routes import dataframe_route, invocations_route, model_route

_MODEL_PATH_ENV = "SEGPIPE_SERVING_MODEL_PATH"
_MODEL_URI_ENV = "SEGPIPE_SERVING_MODEL_URI"
_MAX_REQUEST_ENV = "SEGPIPE_SERVING_MAX_REQUEST_BYTES"
_MAX_JSON_VALUES_ENV = "SEGPIPE_SERVING_MAX_JSON_VALUES"
_WORKERS_ENV = "SEGPIPE_SERVING_WORKERS"
_MEMORY_LIMIT_ENV = "SEGPIPE_SERVING_MEMORY_LIMIT_BYTES"
_BODY_TIMEOUT_ENV = "SEGPIPE_SERVING_BODY_TIMEOUT"
_TIMEOUT_ENV = "MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT"  # read by MLflow's app too


def create_app():
    """The app of one uvicorn worker (a factory: each worker process calls it)."""
    import warnings

    from serving import quick_exit
    from serving.quiet import import_tensorflow_quietly

    quick_exit.install()  # a stopped worker exits at once, not after a GC walk of TensorFlow

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
    from serving import quick_exit

    quick_exit.install()
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
    from serving import quick_exit

    quick_exit.exit_after(main)  # no native destructors racing the model's threads at exit

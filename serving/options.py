"""The model server's options (serving/server.py), each default defined here once.

Every option but ``--host`` may come from an environment variable instead (ENVIRONMENT), which
is how the serving image and the Kubernetes Deployment configure the server: a flag on the
command line wins over its variable, the variable over the default. ``segpipe serve`` passes
on only the flags it was given, so the same variables and defaults hold there.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping

DEFAULT_HOST = "127.0.0.1"
#: MLflow's own default for `mlflow ui` / `mlflow server`.
MLFLOW_UI_PORT = 5000
#: Beside MLflow's UI, not on it.
DEFAULT_PORT = MLFLOW_UI_PORT + 1
DEFAULT_WORKERS = 1
#: Seconds per request (MLflow's default, 60, is too short for large images: a 61 MP
#: request took 49 s on 2 cores without TTA, which is 8x the work).
DEFAULT_TIMEOUT = 600
#: Largest request body in MB (10**6 bytes): room for a base64 .npy request at the default
#: pixel limit (64 MP x 4 int16/uint16 bands = 683 MB in base64).
DEFAULT_MAX_REQUEST_MB = 1000
#: Most JSON values (numbers, strings, lists, ...) in a request body: about two 512 x 512
#: four-band images as JSON numbers (``{"inputs": ...}``), the route for small images. Each
#: parsed value takes up to 120 bytes, so JSON numbers would otherwise take ~20 times the
#: body limit in memory.
DEFAULT_MAX_JSON_VALUES = 2_000_000

#: Seconds the server waits for the next piece of a request body before it drops the client
#: (408): a stalled upload holds its share of the budget for bodies in flight that long, at
#: most, and never a compute turn. The whole body must still arrive within the timeout.
DEFAULT_BODY_TIMEOUT = 30

#: Option (argparse dest) -> its environment variable.
ENVIRONMENT = {"model_uri": "MODEL_URI", "port": "SERVING_PORT",
               "workers": "SERVING_WORKERS", "timeout": "SERVING_TIMEOUT",
               "body_timeout": "SERVING_BODY_TIMEOUT",
               "max_request_mb": "SERVING_MAX_REQUEST_MB",
               "max_json_values": "SERVING_MAX_JSON_VALUES",
               "memory_limit_mb": "SERVING_MEMORY_LIMIT_MB"}
#: Option -> its default (None: required, or none).
DEFAULTS = {"model_uri": None, "port": DEFAULT_PORT, "workers": DEFAULT_WORKERS,
            "timeout": DEFAULT_TIMEOUT, "body_timeout": DEFAULT_BODY_TIMEOUT,
            "max_request_mb": DEFAULT_MAX_REQUEST_MB,
            "max_json_values": DEFAULT_MAX_JSON_VALUES, "memory_limit_mb": None}


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def port(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a port number, got {text!r}") from None


#: Option -> how its text becomes its value (strings stay as they are).
_TYPES = {"port": port, "workers": positive, "timeout": positive, "body_timeout": positive,
          "max_request_mb": positive,
          "max_json_values": positive, "memory_limit_mb": positive}


def build_parser() -> argparse.ArgumentParser:
    """The parser; options left out stay None until ``parse_args`` fills them in."""
    parser = argparse.ArgumentParser(
        prog="python -m serving.server", allow_abbrev=False,
        description="The model server: MLflow's scoring app behind segpipe's request checks. "
                    "Each option but --host may come from the environment variable named in "
                    "its help instead.")

    def option(name: str, text: str, **kwargs) -> None:
        dest = name.removeprefix("--").replace("-", "_")
        default = DEFAULTS[dest]
        shown = f"; default {default}" if default is not None else ""
        parser.add_argument(name, type=_TYPES.get(dest), default=None,
                            help=f"{text} (${ENVIRONMENT[dest]}{shown})", **kwargs)

    option("--model-uri", "models:/NAME@ALIAS, runs:/ URI or local model folder")
    parser.add_argument("--host", default=DEFAULT_HOST,
                        help="interface to bind; 0.0.0.0 exposes it to the network")
    option("--port", "port to listen on")
    option("--workers", "uvicorn worker processes, each with its own copy of the model")
    option("--timeout", "seconds per request, from its arrival to its answer: receiving "
                        "the body, waiting for a turn and predicting together")
    option("--body-timeout", "seconds without any of a request body arriving before the "
                             "client is dropped (408)")
    option("--max-request-mb", "largest request body in MB, refused (413) before it is read")
    option("--max-json-values", "most JSON values in a request body, refused (413) before "
                                "it is parsed")
    option("--memory-limit-mb", "memory the server may take, in MB, checked at start against "
                                "what its limits allow (default: the container's limit)")
    return parser


def parse_args(argv: list[str] | None = None,
               environ: Mapping[str, str] | None = None) -> argparse.Namespace:
    """Flags, then their environment variables, then the defaults; a bad variable is a usage
    error naming it (exit code 2, as a bad flag)."""
    import os

    environ = os.environ if environ is None else environ
    parser = build_parser()
    args = parser.parse_args(argv)
    for dest, variable in ENVIRONMENT.items():
        if getattr(args, dest) is not None:
            continue
        text = environ.get(variable, "").strip()
        if not text:
            setattr(args, dest, DEFAULTS[dest])
            continue
        try:
            setattr(args, dest, _TYPES[dest](text) if dest in _TYPES else text)
        except argparse.ArgumentTypeError as exc:
            parser.error(f"{variable}={text!r}: {exc}")
    if args.model_uri is None:
        parser.error(f"--model-uri (or ${ENVIRONMENT['model_uri']}) is required")
    return args

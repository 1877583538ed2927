"""`segpipe serve`."""

from __future__ import annotations

import os
import sys

import typer

from pipelines.cli.errors import fail
from pipelines.cli.store import DEFAULT_MODEL_URI, use_store
from serving import options, server


def _server_default(dest: str) -> str:
    return f"default {options.DEFAULTS[dest]}, or ${options.ENVIRONMENT[dest]}"


def serve(
    model_uri: str = typer.Option(DEFAULT_MODEL_URI, "--model-uri",
                                  help="registered model, runs:/ URI or local model folder"),
    port: int | None = typer.Option(None, "--port", help=_server_default("port")),
    host: str = typer.Option(options.DEFAULT_HOST, "--host",
                             help="interface to bind; 0.0.0.0 exposes it to the network"),
    workers: int | None = typer.Option(None, "--workers", min=1,
                                       help=f"uvicorn worker processes "
                                            f"({_server_default('workers')})"),
    timeout: int | None = typer.Option(None, "--timeout", min=1,
                                       help=f"seconds per request: receiving the body, and "
                                            f"predicting ({_server_default('timeout')})"),
    body_timeout: int | None = typer.Option(
        None, "--body-timeout", min=1,
        help=f"seconds without any of a request body arriving before the client is dropped "
             f"(408) ({_server_default('body_timeout')})"),
    max_request_mb: int | None = typer.Option(
        None, "--max-request-mb", min=1,
        help=f"largest request body in MB, refused (413) before it is read "
             f"({_server_default('max_request_mb')})"),
    max_json_values: int | None = typer.Option(
        None, "--max-json-values", min=1,
        help=f"most JSON values in a request body, refused (413) before it is parsed "
             f"({_server_default('max_json_values')})"),
    memory_limit_mb: int | None = typer.Option(
        None, "--memory-limit-mb", min=1,
        help="memory the server may take in MB, checked at start against what its limits "
             "allow (default: the container's limit, or $SERVING_MEMORY_LIMIT_MB)"),
    tracking_uri: str | None = typer.Option(None, "--tracking-uri",
                                            help="MLflow tracking URI (default: environment)"),
) -> None:
    """Start the model server on a model (POST /invocations, GET /ping): MLflow's scoring
    server behind segpipe's request checks (serving/server.py). Options not given come from
    their SERVING_* environment variables (each option below names its own), else from the
    server's defaults; not the model: MODEL_URI, which the serving image reads, is ignored
    here, and --model-uri (or its default) names the model served."""
    flags = ["--model-uri", model_uri, "--host", host]
    for flag, value in (("--port", port), ("--workers", workers), ("--timeout", timeout),
                        ("--body-timeout", body_timeout),
                        ("--max-request-mb", max_request_mb),
                        ("--max-json-values", max_json_values),
                        ("--memory-limit-mb", memory_limit_mb)):
        if value is not None:
            flags += [flag, str(value)]
    try:
        settings = options.parse_args(flags)
    except SystemExit as exc:  # a bad SERVING_* variable, said by the server's own parser
        raise typer.Exit(int(exc.code or 2)) from None
    if problem := server.port_problem(host, settings.port):
        raise fail(problem, 2)
    use_store(model_uri, tracking_uri)
    typer.echo(f"serving {model_uri} on http://{host}:{settings.port}/invocations "
               f"(timeout {settings.timeout} s, {settings.workers} worker(s))", err=True)
    sys.stdout.flush()
    sys.stderr.flush()
    # Become the server so signals (Ctrl-C, SIGTERM from a supervisor) reach it directly.
    os.execve(sys.executable, [sys.executable, "-m", "serving.server", *flags],
              dict(os.environ))

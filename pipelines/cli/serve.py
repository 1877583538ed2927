"""`segpipe serve`."""

from __future__ import annotations

import os
import sys

import typer

from pipelines.cli.errors import fail
from pipelines.cli.store import DEFAULT_MODEL_URI, use_store
from serving import server


def serve(
    model_uri: str = typer.Option(DEFAULT_MODEL_URI, "--model-uri",
                                  help="registered model, runs:/ URI or local model folder"),
    port: int = typer.Option(server.DEFAULT_PORT, "--port"),
    host: str = typer.Option(server.DEFAULT_HOST, "--host",
                             help="interface to bind; 0.0.0.0 exposes it to the network"),
    workers: int = typer.Option(server.DEFAULT_WORKERS, "--workers", min=1,
                                help="uvicorn worker processes"),
    timeout: int = typer.Option(server.DEFAULT_TIMEOUT, "--timeout", min=1,
                                help="seconds per request; large images need more than "
                                     "MLflow's default 60"),
    max_request_mb: int = typer.Option(
        server.DEFAULT_MAX_REQUEST_MB, "--max-request-mb", min=1,
        help="largest request body in MB, refused (413) before it is read"),
    tracking_uri: str | None = typer.Option(None, "--tracking-uri",
                                            help="MLflow tracking URI (default: environment)"),
) -> None:
    """Start the model server on a model (POST /invocations, GET /ping): MLflow's scoring
    server behind segpipe's request checks (serving/server.py)."""
    if problem := server.port_problem(host, port):
        raise fail(problem, 2)
    use_store(model_uri, tracking_uri)
    command = [sys.executable, "-m", "serving.server", "--model-uri", model_uri,
               "--host", host, "--port", str(port), "--workers", str(workers),
               "--timeout", str(timeout), "--max-request-mb", str(max_request_mb)]
    typer.echo(f"serving {model_uri} on http://{host}:{port}/invocations "
               f"(timeout {timeout} s, {workers} worker(s))", err=True)
    sys.stdout.flush()
    sys.stderr.flush()
    # Become the server so signals (Ctrl-C, SIGTERM from a supervisor) reach it directly.
    os.execve(sys.executable, command, dict(os.environ))

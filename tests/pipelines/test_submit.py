"""`segpipe submit` against APIs that are not there or refuse: clear errors naming the host."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from pipelines.config import load_config
from pipelines.runner import SubmitError, submit

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("source: s3://bucket/scenes\n")
    return load_config(path), path


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_host_is_named(config):
    host = f"http://127.0.0.1:{closed_port()}"
    with pytest.raises(SubmitError, match=f"API at {host} is unreachable"):
        submit(host, config[0], timeout_s=5)


class _Refuse(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's naming
        self.send_response(401)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_refusing_api_asks_for_a_token(config):
    server = HTTPServer(("127.0.0.1", 0), _Refuse)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with pytest.raises(SubmitError, match=r"refused the request \(HTTP 401\).*KFP_TOKEN"):
            submit(host, config[0], timeout_s=5)
    finally:
        server.shutdown()
        server.server_close()


def test_cli_exits_non_zero_with_the_message(config):
    host = f"http://127.0.0.1:{closed_port()}"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run([sys.executable, "-m", "pipelines.cli", "submit", "--host", host,
                           "--config", str(config[1])], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert f"error: Kubeflow Pipelines API at {host} is unreachable" in done.stderr
    assert "Traceback" not in done.stderr

"""`segpipe submit` against APIs that are not there or refuse: clear errors naming the host."""

from __future__ import annotations

import json
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


class _FakePipelinesApi(BaseHTTPRequestHandler):
    """Just enough of the KFP v2beta1 REST API for one run submission; records requests."""

    requests: list[tuple[str, str, dict, dict]] = []

    def _reply(self, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):  # noqa: N802
        self.requests.append(("GET", self.path, dict(self.headers), {}))
        if "experiments" in self.path:
            return self._reply({"experiments": [], "total_size": 0})
        return self._reply({"multi_user": False})

    def do_POST(self):  # noqa: N802
        length = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(length) or b"{}")
        self.requests.append(("POST", self.path, dict(self.headers), body))
        if self.path.endswith("/experiments"):
            return self._reply({"experiment_id": "exp-1", **body})
        return self._reply({"run_id": "run-1", **body})

    def log_message(self, *args):
        pass


def test_submit_sends_the_config_as_run_parameters_and_the_token(config, monkeypatch):
    monkeypatch.setenv("KFP_TOKEN", "secret-token")
    _FakePipelinesApi.requests = []
    server = HTTPServer(("127.0.0.1", 0), _FakePipelinesApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        submitted = submit(host, config[0], experiment="field-trials")
    finally:
        server.shutdown()
        server.server_close()
    assert submitted.run_id == "run-1" and submitted.url.endswith("/runs/details/run-1")
    posts = {path.rsplit("/", 1)[-1]: body for method, path, _, body in
             _FakePipelinesApi.requests if method == "POST"}
    assert posts["experiments"]["display_name"] == "field-trials"
    run = posts["runs"]
    assert run["experiment_id"] == "exp-1"
    params = run["runtime_config"]["parameters"]
    assert params["source"] == "s3://bucket/scenes"
    # unset stores are left to the cluster's segpipe-endpoints ConfigMap
    assert params["tracking"] == {"mlflow_experiment": "segpipe"}
    assert params["tuning"]["n_trials"] == 20 and params["tile"]["patch_size"] == 256
    assert "secret-token" not in json.dumps(run)
    kubernetes = run["pipeline_spec"]["platform_spec"]["platforms"]["kubernetes"]
    assert "exec-tune-worker" in kubernetes["deploymentSpec"]["executors"]
    auth = {h.get("Authorization") or h.get("authorization")
            for _, _, h, _ in _FakePipelinesApi.requests}
    assert auth == {"Bearer secret-token"}

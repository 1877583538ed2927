"""`segpipe submit` against APIs that are not there, refuse or are something else: clear
errors naming the host, in seconds; and what a fake KFP API receives: parameters, token,
caching, images."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from pipelines.config import load_config
from pipelines.images import ComponentImages
from pipelines.runner import SubmitError, check_api, cluster_warnings, submit

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


def serve(handler: type[BaseHTTPRequestHandler]):
    server = HTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def stop(server: HTTPServer) -> None:
    server.shutdown()
    server.server_close()


def test_unreachable_host_is_named(config):
    host = f"http://127.0.0.1:{closed_port()}"
    with pytest.raises(SubmitError, match=f"API at {host} is unreachable"):
        submit(host, config[0])


class _Refuse(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's naming
        self.send_response(401)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_refusing_api_asks_for_a_token(config):
    server, host = serve(_Refuse)
    try:
        with pytest.raises(SubmitError, match=r"refused the request \(HTTP 401\).*KFP_TOKEN"):
            submit(host, config[0])
    finally:
        stop(server)


class _WebPage(BaseHTTPRequestHandler):
    """Some other web server (a UI, a proxy's landing page): HTTP 200 with HTML anywhere."""

    def do_GET(self):  # noqa: N802
        body = b"<!doctype html><html><body>Welcome</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def run_cli(*args: str, timeout: float = 300) -> tuple[subprocess.CompletedProcess, float]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "pipelines.cli", *args], cwd=REPO_ROOT,
                          env=env, capture_output=True, text=True, timeout=timeout)
    return done, time.monotonic() - started


def test_cli_says_within_seconds_that_a_host_is_unreachable(config):
    host = f"http://127.0.0.1:{closed_port()}"
    done, elapsed = run_cli("submit", "--host", host, "--config", str(config[1]))
    assert done.returncode == 1
    assert (f"error: Kubeflow Pipelines API at {host} is unreachable: Connection refused"
            in done.stderr)
    assert "Traceback" not in done.stderr
    assert elapsed < 10  # the check runs before the config's heavy imports and kfp's retries


def test_cli_says_within_seconds_that_a_web_page_is_not_a_kfp_api(config):
    server, host = serve(_WebPage)
    try:
        done, elapsed = run_cli("submit", "--host", host, "--config", str(config[1]))
    finally:
        stop(server)
    assert done.returncode == 1
    assert (f"error: {host} is not a Kubeflow Pipelines API: {host}/apis/v2beta1/healthz "
            "answered text/html") in done.stderr
    assert "Traceback" not in done.stderr
    assert elapsed < 10


def test_a_host_that_accepts_but_never_answers_is_reported_within_seconds():
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # the kernel completes connections; nobody reads or answers
        host = f"http://127.0.0.1:{silent.getsockname()[1]}"
        started = time.monotonic()
        with pytest.raises(SubmitError, match=f"API at {host} is unreachable: it took the "
                                              "connection but sent no answer"):
            check_api(host)
    assert time.monotonic() - started < 10


def test_a_json_api_that_is_not_kfp_is_refused():
    class _OtherApi(_WebPage):
        def do_GET(self):  # noqa: N802
            body = json.dumps({"status": "ok"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

    server, host = serve(_OtherApi)
    try:
        with pytest.raises(SubmitError, match="is not a Kubeflow Pipelines API"):
            check_api(host)
    finally:
        stop(server)


def test_local_paths_a_cluster_cannot_read_are_named(tmp_path, config):
    (tmp_path / "scenes").mkdir()
    path = tmp_path / "c.yaml"
    path.write_text("source: scenes\ntracking: {mlflow_tracking_uri: 'sqlite:///m.db', "
                    "optuna_storage: 'postgresql://db/optuna'}\n")
    warnings = cluster_warnings(load_config(path))
    assert [w.split(":")[0] for w in warnings] == ["source", "tracking.mlflow_tracking_uri"]
    assert f"{tmp_path / 'scenes'} is a path on this machine" in warnings[0]
    assert cluster_warnings(config[0]) == []  # s3:// source, stores from the cluster


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


def fake_submission(submitting) -> list[tuple[str, str, dict, dict]]:
    """Run ``submitting(host)`` against the fake API; the requests it received."""
    _FakePipelinesApi.requests = []
    server, host = serve(_FakePipelinesApi)
    try:
        submitting(host)
    finally:
        stop(server)
    return _FakePipelinesApi.requests


def run_request(requests) -> dict:
    (run,) = [body for method, path, _, body in requests
              if method == "POST" and path.endswith("/runs")]
    return run


def cached_tasks(run: dict) -> set[str]:
    """Every task, in every DAG of the submitted spec, that may reuse a cached result."""
    spec = run["pipeline_spec"]["pipeline_spec"]
    dags = [spec["root"]["dag"], *(c["dag"] for c in spec["components"].values() if "dag" in c)]
    return {name for dag in dags for name, task in dag["tasks"].items()
            if task.get("cachingOptions", {}).get("enableCache")}


def executor_images(run: dict) -> set[str]:
    executors = run["pipeline_spec"]["pipeline_spec"]["deploymentSpec"]["executors"]
    return {e["container"]["image"] for e in executors.values()}


def test_submit_sends_the_config_as_run_parameters_and_the_token(config, monkeypatch):
    monkeypatch.setenv("KFP_TOKEN", "secret-token")
    monkeypatch.delenv("SEGPIPE_IMAGE_REGISTRY", raising=False)
    monkeypatch.delenv("SEGPIPE_IMAGE_TAG", raising=False)
    submitted = []
    requests = fake_submission(
        lambda host: submitted.append(submit(host, config[0], experiment="field-trials")))
    assert submitted[0].run_id == "run-1" and submitted[0].url.endswith("/runs/details/run-1")
    posts = {path.rsplit("/", 1)[-1]: body for method, path, _, body in requests
             if method == "POST"}
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
    auth = {h.get("Authorization") or h.get("authorization") for _, _, h, _ in requests}
    assert auth == {"Bearer secret-token"}
    # the config's default cache: true keeps the data steps cached, nothing else
    assert cached_tasks(run) == {"ingest", "tile", "split", "normalize"}
    assert executor_images(run) == set(ComponentImages.resolve(environ={}).image(gpu)
                                       for gpu in (False, True))
    assert run["display_name"].startswith("segpipe-segmentation ")


def test_config_cache_false_turns_caching_off_in_every_dag(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("source: s3://bucket/scenes\ncache: false\n")
    run = run_request(fake_submission(lambda host: submit(host, load_config(path))))
    assert cached_tasks(run) == set()


def test_submit_runs_the_tasks_in_the_images_asked_for(config, monkeypatch):
    monkeypatch.setenv("SEGPIPE_IMAGE_REGISTRY", "registry.example.org:5000/team")
    monkeypatch.setenv("SEGPIPE_IMAGE_TAG", "from-env")
    images = ComponentImages.resolve(tag="2024.06-rc1")  # option over variable, per field
    run = run_request(fake_submission(lambda host: submit(host, config[0], images=images)))
    assert executor_images(run) == {
        "registry.example.org:5000/team/segpipe-component:2024.06-rc1",
        "registry.example.org:5000/team/segpipe-component-gpu:2024.06-rc1"}


@pytest.mark.slow  # a fresh interpreter importing TensorFlow and kfp: ~25 s on 2 busy cores
def test_cli_submit_no_cache_images_and_local_source_warning(tmp_path):
    """The command as a user runs it: --no-cache and --image-* reach the run request, and a
    local source is warned about (the run is still submitted)."""
    (tmp_path / "scenes").mkdir()
    path = tmp_path / "c.yaml"
    path.write_text("source: scenes\n")
    done = []
    requests = fake_submission(lambda host: done.append(run_cli(
        "submit", "--host", host, "--config", str(path), "--no-cache",
        "--image-registry", "registry.example.org/team", "--image-tag", "dev")[0]))
    assert done[0].returncode == 0, done[0].stderr
    assert "submitted run run-1" in done[0].stdout
    assert (f"warning: source: {tmp_path / 'scenes'} is a path on this machine; the "
            "cluster's tasks cannot read it") in done[0].stderr
    run = run_request(requests)
    assert cached_tasks(run) == set()
    assert executor_images(run) == {"registry.example.org/team/segpipe-component:dev",
                                    "registry.example.org/team/segpipe-component-gpu:dev"}

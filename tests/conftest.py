"""Shared fixtures. Tests build tiny rasters in temp dirs; the real tea-plantations chips are
read from ../shared/data when present."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from serving import quick_exit  # noqa: E402

quick_exit.install()  # pytest's own exit, after TensorFlow, MLflow and JAX: no GC walk

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def tea_plantations() -> Path:
    path = SHARED_DATA / "tea-plantations"
    if not path.is_dir():
        pytest.skip(f"{path} not present")
    return path


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Test files with a slow test first, the rest in their order: `make test`'s workers
    (pytest-xdist, one file at a time each) then start the long files together, instead of
    one of them running alone at the end."""
    slow = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow)  # stable: files stay whole, in order


def once_per_run(tmp_path_factory: pytest.TempPathFactory, name: str, make):
    """``make()``'s JSON result, computed by the first worker process that asks for it and
    read by the others (a session fixture is per worker under pytest-xdist)."""
    import fcntl
    import json

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # shared by the workers of this run
    result = root / f"{name}.json"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not result.is_file():
            partial = result.with_suffix(".partial")
            partial.write_text(json.dumps(make()))
            partial.replace(result)
        return json.loads(result.read_text())


@pytest.fixture(scope="session")
def jax_checks(tmp_path_factory) -> dict[str, dict]:
    """Every JAX-backend check of the suite, run once per test run in one interpreter
    (tests/jax_checks.py); skips where jax is not installed."""
    import importlib.util

    if importlib.util.find_spec("jax") is None:
        pytest.skip("jax not installed")
    from tests.jax_checks import run_jax_checks

    def run() -> dict[str, dict]:
        folder = tmp_path_factory.getbasetemp() / "jax-checks"
        folder.mkdir(exist_ok=True)
        return run_jax_checks(folder)

    return once_per_run(tmp_path_factory, "jax-checks", run)


@pytest.fixture(scope="session", autouse=True)
def _run_outside_the_repo(tmp_path_factory):
    """Run every test from a scratch folder, so nothing a library writes relative to the
    working directory (MLflow's ./mlruns default, say) lands in the repository."""
    previous = Path.cwd()
    os.chdir(tmp_path_factory.mktemp("cwd"))
    yield
    os.chdir(previous)


#: A request line of werkzeug's log (in colour on a terminal): its path.
_LOGGED_REQUEST = re.compile(r'"(?:\x1b\[[0-9;]*m)*(?:GET|HEAD|PUT|POST|DELETE) (\S+) HTTP/')


class MotoServer:
    """moto's standalone S3 server, one for a test module (starting one takes most of a
    second): each test empties it first (``moto_endpoint``). GDAL keeps what it read of an
    object by its URL for the whole process, so a module holds one content under one key;
    modules get servers of their own (other URLs)."""

    def __init__(self, url: str, log: Path):
        self.url, self.log = url, log

    def request_paths(self) -> list[str]:
        """The paths of the S3 requests the server has answered so far, in order (its own
        API's left out): werkzeug logs each request before it answers it."""
        paths = _LOGGED_REQUEST.findall(self.log.read_text(errors="replace"))
        return [path for path in paths if not path.startswith("/moto-api/")]

    def _post(self, path: str, body: str = "") -> None:
        from urllib.request import Request, urlopen

        request = Request(self.url + path, data=body.encode(), method="POST",
                          headers={"Content-Type": "text/plain"})
        urlopen(request, timeout=10).close()

    def reset(self) -> None:
        """No buckets, and any keys taken."""
        self._post("/moto-api/reset")
        self.check_keys_after(float("inf"))

    def check_keys_after(self, requests: float) -> None:
        """Answer the next ``requests`` requests whatever their keys, then check keys as S3
        does: the test keys are nobody's, so every later request is denied (403
        InvalidAccessKeyId), as when credentials expire."""
        self._post("/moto-api/reset-auth", str(requests))


@pytest.fixture(scope="module")
def moto_server(tmp_path_factory):
    """moto's standalone server on a free port of loopback, for a test module."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = Path(sys.executable).parent / "moto_server"
    command = [str(server)] if server.exists() else [sys.executable, "-m", "moto.server"]
    log = tmp_path_factory.mktemp("moto") / "requests.log"
    with open(log, "wb") as sink:
        proc = subprocess.Popen([*command, "-H", "127.0.0.1", "-p", str(port)],
                                stdout=sink, stderr=sink)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.fail("moto_server did not start")
                time.sleep(0.2)
        yield MotoServer(f"http://127.0.0.1:{port}", log)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def moto_endpoint(moto_server, monkeypatch):
    """An S3 endpoint: the session's moto server, emptied, over HTTP as a real one, with
    AWS_ENDPOINT_URL and test keys in the environment (subprocesses inherit them). It takes
    any keys."""
    moto_server.reset()
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    return moto_server.url


#: Requests ``moto_endpoint_checking_keys`` answers before it checks keys: a test's setup.
UNCHECKED_REQUESTS = 2


@pytest.fixture
def moto_endpoint_checking_keys(moto_endpoint, moto_server):
    """``moto_endpoint``, but after its first UNCHECKED_REQUESTS requests (creating a bucket and
    an object, say) it checks keys as S3 does: the test keys are nobody's, so every request is
    denied (403 InvalidAccessKeyId)."""
    moto_server.check_keys_after(UNCHECKED_REQUESTS)
    return moto_endpoint

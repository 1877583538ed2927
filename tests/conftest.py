"""Shared fixtures. Tests build tiny rasters in temp dirs; the real tea-plantations chips are
read from ../shared/data when present."""

from __future__ import annotations

import os
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


def _moto_server(monkeypatch, **server_env: str):
    """moto's standalone server on a free port of loopback (``server_env``: its settings),
    with AWS_ENDPOINT_URL and test keys in the environment (subprocesses inherit them)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = Path(sys.executable).parent / "moto_server"
    command = [str(server)] if server.exists() else [sys.executable, "-m", "moto.server"]
    proc = subprocess.Popen([*command, "-H", "127.0.0.1", "-p", str(port)],
                            env={**os.environ, **server_env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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
        url = f"http://127.0.0.1:{port}"
        monkeypatch.setenv("AWS_ENDPOINT_URL", url)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def moto_endpoint(monkeypatch):
    """An S3 endpoint: moto's standalone server on a free port, over HTTP as a real one, with
    AWS_ENDPOINT_URL and test keys in the environment (subprocesses inherit them). It takes
    any keys."""
    yield from _moto_server(monkeypatch)


#: Requests ``moto_endpoint_checking_keys`` answers before it checks keys: a test's setup.
UNCHECKED_REQUESTS = 2


@pytest.fixture
def moto_endpoint_checking_keys(monkeypatch):
    """``moto_endpoint``, but after its first UNCHECKED_REQUESTS requests (creating a bucket and
    an object, say) it checks keys as S3 does: the test keys are nobody's, so every request is
    denied (403 InvalidAccessKeyId)."""
    yield from _moto_server(monkeypatch, INITIAL_NO_AUTH_ACTION_COUNT=str(UNCHECKED_REQUESTS))

"""Start and stop a real scoring server on loopback for tests and benchmarks."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def child_env(**extra: str) -> dict[str, str]:
    """PATH with this interpreter's bin first (mlflow starts uvicorn by name), PYTHONPATH at
    the repo so children import the code under test."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(REPO_ROOT)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.update(extra)
    return env


class Server:
    def __init__(self, command: list[str], port: int, log_path: Path, env: dict[str, str]):
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115  closed in stop()
        self.process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT,
                                        env=env, cwd=REPO_ROOT, start_new_session=True)

    def wait_ready(self, timeout: float = 120.0) -> Server:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n"
                                   f"{self.log_path.read_text()[-3000:]}")
            try:
                if requests.get(f"{self.url}/ping", timeout=2).status_code == 200:
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.5)
        self.stop()
        raise TimeoutError(f"server not ready in {timeout} s:\n{self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            # Our own session: any child (mlflow's uvicorn, uvicorn's workers) goes with it.
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=20)
        self._log.close()


def mlflow_serve(model: str, port: int, log_path: Path, timeout_s: int = 120,
                 **env: str) -> Server:
    command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", model,
               "--env-manager", "local", "-p", str(port), "-h", "127.0.0.1",
               "-t", str(timeout_s)]
    return Server(command, port, log_path, child_env(**env))


def segpipe_serve(model: str, port: int, log_path: Path, timeout_s: int = 120,
                  max_request_mb: int | None = None, **env: str) -> Server:
    """`segpipe serve`, which becomes `python -m serving.server`: MLflow's scoring app behind
    serving/guard.py."""
    command = [sys.executable, "-m", "pipelines.cli", "serve", "--model-uri", model,
               "--port", str(port), "--timeout", str(timeout_s)]
    if max_request_mb is not None:
        command += ["--max-request-mb", str(max_request_mb)]
    return Server(command, port, log_path, child_env(**env))

"""infra/local/services.sh's own contract, without starting anything: `status` reports each
service and fails when they are down; unknown commands are refused."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "infra" / "local" / "services.sh"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run(*args: str, state: Path) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "SEGPIPE_SERVICES_DIR": str(state),
        "SEGPIPE_PG_PORT": str(_free_port()),
        "SEGPIPE_S3_PORT": str(_free_port()),
        "SEGPIPE_MLFLOW_PORT": str(_free_port()),
    }
    return subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=60
    )


def test_status_names_each_service_and_fails_when_down(tmp_path: Path) -> None:
    result = _run("status", state=tmp_path / "state")
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == ["postgres", "s3", "mlflow"]
    assert all("down" in line or "not installed" in line for line in lines), lines


def test_down_without_services_is_harmless_and_unknown_commands_fail(tmp_path: Path) -> None:
    assert _run("down", state=tmp_path / "state").returncode == 0
    refused = _run("restart", state=tmp_path / "state")
    assert refused.returncode != 0
    assert "usage" in refused.stderr


def test_up_without_the_dev_install_names_it_and_starts_nothing(tmp_path: Path,
                                                                monkeypatch) -> None:
    venv = tmp_path / "venv" / "bin"
    venv.mkdir(parents=True)
    (venv / "python").symlink_to(sys.executable)  # `make install`: no moto_server
    monkeypatch.setenv("SEGPIPE_VENV", str(venv.parent))
    result = _run("up", state=tmp_path / "state")
    assert result.returncode == 1
    assert "moto_server missing: run 'make install-dev'" in result.stderr
    assert not list((tmp_path / "state").glob("*.pid"))
    assert not (tmp_path / "state" / "postgres").exists()

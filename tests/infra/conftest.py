"""Fixtures for tests on the loopback services that infra/local/services.sh starts
(PostgreSQL, moto's S3 server, an MLflow tracking server on both). They skip, saying how to
start the services, when those are not up; with SEGPIPE_REQUIRE_SERVICES=1 (CI) they fail."""

from __future__ import annotations

import os
import urllib.request
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def services_env_path() -> Path:
    state = os.environ.get("SEGPIPE_SERVICES_DIR") or REPO_ROOT / ".segpipe" / "services"
    return Path(state) / "env"


def _read_env(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {key.strip(): value.strip() for key, value in pairs}


def _unavailable(reason: str) -> None:
    message = f"{reason}; start them with `infra/local/services.sh up`"
    if os.environ.get("SEGPIPE_REQUIRE_SERVICES") == "1":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def services_settings() -> dict[str, str]:
    path = services_env_path()
    if not path.is_file():
        _unavailable(f"loopback services are not up ({path} missing)")
    settings = _read_env(path)
    health = settings["MLFLOW_TRACKING_URI"] + "/health"
    try:
        with urllib.request.urlopen(health, timeout=5) as response:
            assert response.status == 200
    except OSError as error:
        _unavailable(f"MLflow server at {health} does not answer ({error})")
    return settings


@pytest.fixture
def services(services_settings: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict:
    """The services' settings in this process's environment, as a deployment would set them."""
    for key, value in services_settings.items():
        monkeypatch.setenv(key, value)
    return services_settings


@pytest.fixture
def s3_client(services: dict[str, str]):
    import boto3

    return boto3.client("s3", endpoint_url=services["AWS_ENDPOINT_URL"])

"""infra/local/pip-install's own contract, offline: a failure no retry can get past (a package
that does not exist, a bad requirement) fails at once with pip's own message; a failure on the
network (here a refused connection to a loopback index) is tried again."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "infra" / "local" / "pip-install"


def _run(*args: str, target: Path) -> tuple[subprocess.CompletedProcess, float]:
    # None of this machine's pip settings (config files, PIP_* variables: indexes, wheel
    # folders), so only the test's own index is asked; --target keeps the venv untouched.
    env = {key: value for key, value in os.environ.items() if not key.startswith("PIP_")}
    env.update(PIP_CONFIG_FILE=os.devnull, SEGPIPE_PIP_PAUSE_S="0")
    start = time.monotonic()
    result = subprocess.run(["bash", str(SCRIPT), sys.executable, "--target", str(target), *args],
                            capture_output=True, text=True, env=env, timeout=120)
    return result, time.monotonic() - start


@pytest.mark.parametrize(("requirement", "pip_says"), [
    ("segpipe-no-such-package", "No matching distribution found for segpipe-no-such-package"),
    # A name holding one of the network's marks is still a package that does not exist.
    ("segpipe-connection-timeout", "No matching distribution found for "
                                   "segpipe-connection-timeout"),
    ("segpipe-bad>=>1", "Invalid requirement: 'segpipe-bad>=>1'"),
])
def test_a_failure_the_network_did_not_cause_fails_at_once_with_pips_message(
        tmp_path, requirement, pip_says):
    result, seconds = _run("--no-index", requirement, target=tmp_path / "target")
    assert result.returncode != 0
    assert pip_says in result.stderr, result.stderr
    assert "not for the network: not trying again" in result.stderr
    assert "trying again in" not in result.stderr
    assert seconds < 30, f"took {seconds:.1f} s"


def test_a_failure_on_the_network_is_tried_again(tmp_path):
    with socket.socket() as sock:  # a loopback port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result, _ = _run("--retries", "1", "--timeout", "2", "--index-url",
                     f"http://127.0.0.1:{port}/simple", "segpipe-no-such-package",
                     target=tmp_path / "target")
    assert result.returncode != 0
    assert "Connection refused" in result.stderr, result.stderr  # pip's own lines shown
    assert result.stderr.count("pip install failed on the network (exit 1); trying again") == 3
    assert "failed 4 times; giving up" in result.stderr

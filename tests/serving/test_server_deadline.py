"""A request answered 504 stops computing, on a real `segpipe serve` process: the model stops
between two batches once the request's deadline has passed and says so in the server's log,
its CPU use ends, and the next request is served. Nothing here depends on how fast the
machine is: the request is far more work than its 1 s deadline on any machine, and the
checks wait for what the server says rather than timing it."""

from __future__ import annotations

import json
import os
import re
import shutil
import time

import numpy as np
import pytest
import requests

from tests.serving.conftest import BANDS
from tests.serving.server import free_port, segpipe_serve
from tests.serving.test_server import from_npy, npy_frame

pytestmark = pytest.mark.slow
STOPPED = re.compile(r"stopped a request past its deadline: the request's deadline passed: "
                     r"stopped after (\d+) of (\d+) batches")


@pytest.fixture(scope="module")
def quick_server(logged_model, tmp_path_factory):
    """The session's model with room for large requests (max_pixels 4 MP), served with a
    1 s request timeout and a 64 MB memory limit."""
    folder = tmp_path_factory.mktemp("deadline") / "model"
    shutil.copytree(logged_model["local_path"], folder)
    config_path = folder / "artifacts" / "serving_config.json"
    config = json.loads(config_path.read_text())
    config_path.write_text(json.dumps({**config, "max_pixels": 4_000_000}))
    server = segpipe_serve(str(folder), free_port(), folder.parent / "server.log", timeout_s=1,
                           max_request_mb=40, SERVING_MEMORY_LIMIT_MB="64",
                           MLFLOW_TRACKING_URI=logged_model["tracking_uri"]).wait_ready()
    yield server
    server.stop()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all its threads."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_for(pattern: re.Pattern, server, timeout: float = 180.0) -> re.Match:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if match := pattern.search(server.log_path.read_text()):
            return match
        time.sleep(0.2)
    raise AssertionError(f"no {pattern.pattern!r} in the log within {timeout} s:\n"
                         f"{server.log_path.read_text()[-3000:]}")


def test_a_request_answered_504_stops_computing_and_the_next_is_served(quick_server):
    url = f"{quick_server.url}/invocations"
    # 700 x 700 with 8 flips per window and windows every 8 px: ~66000 forward passes
    image = np.random.default_rng(0).integers(1, 1000, (700, 700, BANDS)).astype(np.uint16)
    response = requests.post(url, json={**npy_frame(image),
                                        "params": {"tta": True, "overlap": 0.75}}, timeout=120)
    assert response.status_code == 504, response.text
    assert response.json() == {"error_code": "DEADLINE_EXCEEDED", "message": "the request took "
                               "longer than 1 s (the server's request timeout)"}
    done, total = map(int, wait_for(STOPPED, quick_server).groups())
    assert done < total
    pid = quick_server.process.pid
    before = cpu_seconds(pid)
    time.sleep(3)
    assert cpu_seconds(pid) - before < 1.0, "the server still computes after the stop"
    # the abandoned request's turn ended with it: the next request is served
    small = np.random.default_rng(1).integers(1, 1000, (16, 16, BANDS)).astype(np.uint16)
    answer = requests.post(url, json=npy_frame(small), timeout=120)
    assert answer.status_code == 200, answer.text
    assert from_npy(answer.json()["predictions"][0]["mask"]).shape == (16, 16)
    assert "Traceback" not in quick_server.log_path.read_text()


def test_the_server_warns_when_its_limits_exceed_its_memory_limit(quick_server):
    log = quick_server.log_path.read_text()
    assert re.search(r"the server may need up to [\d,]+ MB \(1 worker\(s\) x [\d,]+ MB: "
                     r"[\d,]+ MB with the model loaded \+ 2 request\(s\) at once of up to 40 MB, "
                     r"2000000 JSON values and 4000000 pixels\), above the memory limit of 64 "
                     r"MB \(--memory-limit-mb\)", log), log[-3000:]

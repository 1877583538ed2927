"""A request's turn ends when its work does, on a real `segpipe serve` process: after a 504 on
the tensor route (MLflow's /invocations, JSON numbers), a following request does not start
until the timed-out predictions have stopped at their next batch, so what requests hold stays
within the memory bound the server logs. Observed by the order of the server's own log:
the stops are logged by the predictions' threads, and the following request's answer needs
its turn first. A small tensor (parsed at once) resampled 4x into one batch of 841 windows x 8
views makes the gap between a 504 and the end of its work long enough to see before the fix;
the assertions hold however fast the machine is."""

from __future__ import annotations

import json
import re
import shutil
import threading

import numpy as np
import pytest
import requests

from tests.serving.conftest import BANDS
from tests.serving.server import free_port, segpipe_serve

pytestmark = pytest.mark.slow
STOPPED = re.compile(r"a request answered 504 stopped computing [\d.]+ s after its answer")


@pytest.fixture(scope="module")
def long_batch_server(logged_model, tmp_path_factory):
    """The session's model with batches of 1024 windows, served with a 1 s request timeout."""
    folder = tmp_path_factory.mktemp("turns") / "model"
    shutil.copytree(logged_model["local_path"], folder)
    config_path = folder / "artifacts" / "serving_config.json"
    config = json.loads(config_path.read_text())
    config_path.write_text(json.dumps({**config, "max_pixels": 4_000_000, "batch_size": 1024}))
    server = segpipe_serve(str(folder), free_port(), folder.parent / "server.log", timeout_s=1,
                           max_request_mb=40,
                           MLFLOW_TRACKING_URI=logged_model["tracking_uri"]).wait_ready()
    yield server
    server.stop()


def test_after_a_504_on_the_tensor_route_the_next_request_waits_for_the_work_to_stop(
        long_batch_server):
    url = f"{long_batch_server.url}/invocations"
    image = np.random.default_rng(0).integers(1, 1000, (1, 64, 64, BANDS)).tolist()
    heavy = json.dumps({"inputs": image, "params": {"tta": True, "overlap": 0.75,
                                                    "pixel_size": 4.0}})
    answers: list[requests.Response] = []

    def send() -> None:
        answers.append(requests.post(url, data=heavy, timeout=120,
                                     headers={"Content-Type": "application/json"}))

    senders = [threading.Thread(target=send) for _ in range(2)]  # both of the turns
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join()
    assert [a.status_code for a in answers] == [504, 504], [a.text for a in answers]
    # not JSON: answered as soon as the request has a turn, without predicting anything. A
    # 503 (no turn within the server's 1 s timeout, under load) never started: ask again
    # until one gets its turn, so the order below is asserted however slow the machine is
    for _ in range(120):
        following = requests.post(url, data="not json", timeout=120,
                                  headers={"Content-Type": "application/json"})
        if following.status_code != 503:
            break
        assert "the server is busy" in following.json()["message"]
    log = long_batch_server.log_path.read_text()
    assert following.status_code == 400, following.text
    # one turn had to come free: one of the two predictions had stopped
    assert STOPPED.search(log), (
        f"the following request was answered before the timed-out predictions stopped:\n"
        f"{log[-3000:]}")

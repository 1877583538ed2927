"""Whether ImageNet encoder weights can be had: a file in Keras' cache, or a reachable
download host (real sockets on localhost stand for the host)."""

from __future__ import annotations

import socket

import pytest

from components.encoder_weights import host_reachable, imagenet_unavailable
from segmodels.encoders import cached_imagenet_weights


@pytest.fixture
def listening():
    """A host that answers: a socket listening on localhost."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()


@pytest.fixture
def closed():
    """A host that does not answer: a localhost port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        address = probe.getsockname()
    return address


@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    (tmp_path / "models").mkdir()
    return tmp_path


def test_host_reachable_tells_a_listening_port_from_a_closed_one(listening, closed):
    assert host_reachable(listening, timeout=2)
    assert not host_reachable(closed, timeout=2)


def test_cached_file_names_are_the_ones_keras_downloads(keras_home):
    assert cached_imagenet_weights("mobilenetv2", 0.35) is None
    cached = (keras_home / "models" /
              "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5")
    cached.touch()
    assert cached_imagenet_weights("mobilenetv2", 0.35) == cached
    assert cached_imagenet_weights("mobilenetv2", 1.0) is None  # another width, another file
    (keras_home / "models/efficientnetv2-b0_notop.h5").touch()
    assert cached_imagenet_weights("efficientnetv2b0") is not None


def test_imagenet_is_unavailable_offline_without_the_cached_files(keras_home, closed):
    why = imagenet_unavailable([("resnet50", 1.0), ("mobilenetv2", 0.5)], closed)
    assert "resnet50" in why and "mobilenetv2 (width 0.5)" in why
    assert f"{closed[0]}:{closed[1]}" in why


def test_imagenet_is_available_when_cached_or_downloadable(keras_home, closed, listening):
    (keras_home / "models/resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5").touch()
    assert imagenet_unavailable([("resnet50", 1.0)], closed) is None
    assert imagenet_unavailable([("mobilenetv2", 0.5)], listening) is None

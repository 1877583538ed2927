"""Whether ``encoder_weights: "imagenet"`` can be had on the machine that trains.

Keras downloads ImageNet weights on first use and caches them (segmodels.encoders
``cached_imagenet_weights``). On a machine without internet and without the cached file,
every trial asking for them would fail after building its model; so the tune step asks once,
before any trial: is each wanted file cached, else is the download host reachable (a TCP
connection with a short timeout)?"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterable

#: Where keras.applications downloads its weights from (their BASE_WEIGHTS_PATH).
IMAGENET_HOST = ("storage.googleapis.com", 443)
CONNECT_TIMEOUT_S = 3.0


def host_reachable(host: tuple[str, int] = IMAGENET_HOST,
                   timeout: float = CONNECT_TIMEOUT_S) -> bool:
    """A TCP connection to ``host`` opens within ``timeout`` seconds (name lookup included:
    it runs in a thread, since a resolver without a network may hang far longer)."""
    reached: list[bool] = []

    def connect() -> None:
        try:
            with socket.create_connection(host, timeout=timeout):
                reached.append(True)
        except OSError:
            pass

    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(reached)


def imagenet_unavailable(encoders: Iterable[tuple[str, float]],
                         host: tuple[str, int] = IMAGENET_HOST) -> str | None:
    """Why ImageNet weights of some ``(encoder, width)`` cannot be had here, or None when
    every one is cached or the download host answers."""
    from segmodels.encoders import cached_imagenet_weights  # Keras: only when asked

    missing = sorted({f"{name} (width {width})" if width != 1.0 else name
                      for name, width in encoders if cached_imagenet_weights(name, width) is None})
    if not missing or host_reachable(host):
        return None
    return (f"no cached weights for {', '.join(missing)} in Keras' cache (~/.keras/models or "
            f"$KERAS_HOME/models) and {host[0]}:{host[1]} cannot be reached to download them")

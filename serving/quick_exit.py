"""A process that has imported TensorFlow or MLflow spends seconds at exit in the
interpreter's last garbage collections, walking millions of objects whose memory the OS frees
anyway (~1 s after MLflow, 3-4 s after TensorFlow, measured on 2 cores). ``install`` freezes
the heap once every other exit handler has run: the final collections skip it. Module teardown
still releases what reference counts hold (files flush and close as before); only objects in
reference cycles keep their memory until the process is gone, which Python never promised to
finalize at exit anyway.

It lives in serving, which the MLflow model ships alone, so the scoring server uses it too;
the ``segpipe`` commands and the local runner's tasks install it as well."""

from __future__ import annotations

import atexit
import gc

_installed = False


def install() -> None:
    """Freeze the heap at exit, after the exit handlers registered later (atexit runs them
    last-in first-out): call it early, before the libraries that register their own."""
    global _installed
    if not _installed:
        atexit.register(gc.freeze)
        _installed = True

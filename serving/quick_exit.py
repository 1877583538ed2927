"""A process that has imported TensorFlow or MLflow spends seconds at exit in the
interpreter's last garbage collections, walking millions of objects whose memory the OS frees
anyway (~1 s after MLflow, 3-4 s after TensorFlow, measured on 2 cores). ``install`` freezes
the heap once every other exit handler has run: the final collections skip it. What is given
up: finalizers of objects left in reference cycles at exit (an unclosed file or raster writer
caught in a cycle is not flushed, a NamedTemporaryFile in one is not deleted). Python never
promised to run them at exit; objects freed by reference counts or module teardown flush and
close as before, and atexit handlers (MLflow's async logging, multiprocessing's finalizers)
all run first. So our code closes every file it writes explicitly (``with`` blocks, atomic
writes) and never relies on a ``__del__``.

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

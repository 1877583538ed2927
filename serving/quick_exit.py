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
the ``segpipe`` commands and the local runner's tasks install it as well.

``exit_after`` ends a process whose entry point we own (the ``segpipe`` commands, the
scoring server) without the C library's exit: once the command is done, its threads joined,
every atexit handler run and stdout/stderr flushed, ``os._exit``. Native libraries' static
destructors then never run, and with them goes a race: OpenVINO's TBB workers and
TensorFlow's thread pools are still alive while the main thread destroys the mutexes they
lock, which glibc catches as ``tpp.c: __pthread_tpp_change_priority: Assertion ... failed``
and aborts (exit 134) a command that had written its output. The exit code is the one the
interpreter would have given."""

from __future__ import annotations

import atexit
import gc
import os
import sys
import threading
from collections.abc import Callable
from typing import NoReturn

_installed = False
#: The interpreter's exit code when it cannot flush stdout at exit (Py_FinalizeEx fails).
FLUSH_FAILED = 120


def install() -> None:
    """Freeze the heap at exit, after the exit handlers registered later (atexit runs them
    last-in first-out): call it early, before the libraries that register their own."""
    global _installed
    if not _installed:
        atexit.register(gc.freeze)
        _installed = True


def exit_after(main: Callable[[], object]) -> NoReturn:
    """Run ``main`` and end the process as the interpreter would on its return (0) or its
    ``SystemExit``, but by ``os._exit`` once everything Python-side is done. Any other
    exception goes on as usual (traceback, exit 1)."""
    try:
        main()
        code = None
    except SystemExit as done:
        code = done.code
    _end(code)


def _exit_status(code: object) -> int:
    """What the interpreter makes of ``SystemExit(code)``: None is 0, an int is itself, and
    anything else is printed on stderr and exits 1."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def _end(code: object) -> NoReturn:
    status = _exit_status(code)
    # As the interpreter's own exit, in its order: non-daemon threads (threading's own
    # shutdown, which first stops concurrent.futures' pool workers, or they wait forever),
    # atexit handlers (MLflow's async logging, multiprocessing's finalizers,
    # logging.shutdown, the freeze above), then the standard streams.
    if threading.current_thread() is threading.main_thread():
        threading._shutdown()
    atexit._run_exitfuncs()
    for stream, failed_status in ((sys.stdout, FLUSH_FAILED), (sys.stderr, None)):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            # a closed pipe: the interpreter says so and exits 120 (not for stderr)
            if failed_status is not None:
                status = failed_status
    os._exit(status)

"""TensorFlow prints its start-up chatter (absl's "All log messages before
absl::InitializeLog()", oneDNN and CUDA notices, and on a machine without a GPU driver
"failed call to cuInit") straight to file descriptor 2 whatever TF_CPP_MIN_LOG_LEVEL says; a
command that needs TensorFlow imports it here first, and lets it look for devices, with that
descriptor pointed at /dev/null, so the console shows the command's own output only."""

from __future__ import annotations

import contextlib
import os
import sys


def import_tensorflow_quietly() -> None:
    if "tensorflow" in sys.modules or os.environ.get("KERAS_BACKEND", "tensorflow") != \
            "tensorflow":
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            with contextlib.suppress(ImportError):
                import tensorflow

                tensorflow.config.list_physical_devices()  # the CUDA probe, now
    finally:
        os.dup2(saved, 2)
        os.close(saved)

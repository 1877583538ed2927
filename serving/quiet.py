"""Quiet imports and opens.

TensorFlow prints its start-up chatter (absl's "All log messages before
absl::InitializeLog()", oneDNN and CUDA notices, and on a machine without a GPU driver
"failed call to cuInit") straight to file descriptor 2 whatever TF_CPP_MIN_LOG_LEVEL says; a
command that needs TensorFlow imports it here first, and lets it look for devices, with that
descriptor pointed at /dev/null, so the console shows the command's own output only.

rasterio warns NotGeoreferencedWarning on opening or writing a plain PNG/JPEG or a TIFF
without georeferencing, which are legitimate inputs here (the resolution notes tell the user
once); plain_images_quiet() ignores it for one block only, never with a global filter, so
libraries and users' code keep the warning elsewhere."""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from collections.abc import Iterator


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


@contextlib.contextmanager
def plain_images_quiet() -> Iterator[None]:
    """Ignore rasterio's NotGeoreferencedWarning inside the block. Warning filters are
    process-global: enter it once around a thread pool, not in its workers."""
    # Imported here: the CLI imports this module, and rasterio only where a command needs it.
    from rasterio.errors import NotGeoreferencedWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        yield

"""Processes that end through quick_exit.exit_after: the exit code the interpreter would give,
all output, every atexit handler, and none of the C library's exit-time teardown, where a
native library's static destructors can abort a finished command (exit 134) while its
threads still run. A test hook (a sitecustomize first on PYTHONPATH) stands in for such a
library: it registers abort() with the C library's exit, and an atexit handler that writes a
file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import rasterio

from tests.serving.conftest import write_scene
from tests.serving.server import REPO_ROOT, child_env

HOOK = '''
import atexit
import ctypes
import os

libc = ctypes.CDLL(None)
# Run by exit(), as static destructors are; never by os._exit.
libc.__cxa_atexit(libc.abort, None, None)


def _mark():
    with open(os.environ["SEGPIPE_TEST_ATEXIT_MARK"], "a") as mark:
        mark.write("atexit ran\\n")


atexit.register(_mark)
'''


def _run(tmp_path: Path, command: list[str], **env: str) -> subprocess.CompletedProcess:
    hook = tmp_path / "hook"
    hook.mkdir(exist_ok=True)
    (hook / "sitecustomize.py").write_text(HOOK)
    return subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env=child_env(PYTHONPATH=f"{hook}:{REPO_ROOT}",
                                        SEGPIPE_TEST_ATEXIT_MARK=str(tmp_path / "mark"),
                                        **env))


def test_the_hook_aborts_an_ordinary_exit(tmp_path):
    """The stand-in does fail a process that ends the ordinary way, after its atexit."""
    done = _run(tmp_path, [sys.executable, "-c", "print('done')"])
    assert done.returncode == -6, done.stderr  # SIGABRT: exit code 134 in a shell
    assert done.stdout == "done\n"
    assert (tmp_path / "mark").read_text() == "atexit ran\n"


def test_segpipe_predict_exits_0_with_its_output_and_atexit_handlers(logged_model, tmp_path):
    scene = write_scene(tmp_path / "scene.tif", 60, 80)
    mask = tmp_path / "mask.tif"
    segpipe = str(Path(sys.executable).parent / "segpipe")
    done = _run(tmp_path, [segpipe, "predict", str(scene), "--out", str(mask),
                           "--model-uri", logged_model["registered"]],
                MLFLOW_TRACKING_URI=logged_model["tracking_uri"])
    assert done.returncode == 0, done.stderr
    # stdout is a pipe (block-buffered): all of it came out before os._exit
    assert f"wrote {mask} (80x60)" in done.stdout
    assert done.stdout.rstrip().splitlines()[-1].lstrip().startswith("ignored:"), done.stdout
    with rasterio.open(mask) as written:
        assert written.read(1).shape == (60, 80)
    assert (tmp_path / "mark").read_text() == "atexit ran\n"

    refused = _run(tmp_path, [segpipe, "predict", str(scene), "--out", str(tmp_path / "n.tif"),
                              "--min-area", "5"])
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr == "error: --min-area shapes the polygons: add --polygons " \
                             "FILE.geojson\n"
    assert (tmp_path / "mark").read_text() == "atexit ran\n" * 2


@pytest.mark.parametrize(("main", "code", "stderr"), [
    ("print('out', end='')", 0, ""),
    ("print('out', end=''); raise SystemExit(130)", 130, ""),
    ("print('out', end=''); sys.exit('error: broken')", 1, "error: broken\n"),
    ("print('out', end=''); sys.exit(None)", 0, ""),
])
def test_exit_after_gives_the_interpreters_exit_code(tmp_path, main, code, stderr):
    program = ("import sys, threading, time\n"
               "from serving import quick_exit\n"
               "worker = threading.Thread(target=lambda: (time.sleep(0.3), open('joined', 'w')))\n"
               "worker.start()\n"
               f"quick_exit.exit_after(lambda: exec({main!r}))\n")
    done = _run(tmp_path, [sys.executable, "-c", program])
    assert (done.returncode, done.stdout, done.stderr) == (code, "out", stderr)
    assert (tmp_path / "mark").read_text() == "atexit ran\n"
    assert (tmp_path / "joined").exists()  # non-daemon threads end first, as at any exit

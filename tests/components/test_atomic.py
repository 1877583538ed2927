"""Atomic writes: a failed write leaves what was there, and no temporary sibling."""

from __future__ import annotations

import os
import stat

import pytest

from components.atomic import atomic_dir, atomic_path, write_json


def test_failed_file_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "stats.json"
    write_json(target, {"mean": [1.0]})
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert target.read_text() == '{\n  "mean": [\n    1.0\n  ]\n}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["stats.json"]


def test_suffix_reaches_the_temp_path_and_success_replaces(tmp_path):
    target = tmp_path / "sub" / "mask"
    with atomic_path(target, suffix=".tif") as tmp:
        assert tmp.suffix == ".tif" and tmp.parent == target.parent
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new"
    assert [p.name for p in target.parent.iterdir()] == ["mask"]


def test_failed_folder_write_keeps_the_old_folder(tmp_path):
    target = tmp_path / "dataset"
    with atomic_dir(target) as tmp:
        (tmp / "tiles.json").write_text("{}")
    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "partial").write_text("x")
        raise RuntimeError("killed")
    assert [p.name for p in target.iterdir()] == ["tiles.json"]
    assert [p.name for p in tmp_path.iterdir()] == ["dataset"]


@pytest.fixture
def umask_027():
    previous = os.umask(0o027)
    yield
    os.umask(previous)


def test_files_and_folders_get_the_users_umask_not_private_modes(tmp_path, umask_027):
    write_json(tmp_path / "stats.json", {})
    with atomic_dir(tmp_path / "dataset") as tmp:
        (tmp / "tiles.json").write_text("{}")
    # what open() and mkdir() give under umask 027, not mkstemp's 0600 / mkdtemp's 0700
    assert stat.S_IMODE((tmp_path / "stats.json").stat().st_mode) == 0o640
    assert stat.S_IMODE((tmp_path / "dataset").stat().st_mode) == 0o750


def test_an_interrupted_folder_write_keeps_the_old_folder_whole(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "metrics.json").write_text("old")
    with pytest.raises(KeyboardInterrupt), atomic_dir(target) as tmp:
        (tmp / "report.md").write_text("new")
        raise KeyboardInterrupt
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert sorted(p.name for p in target.iterdir()) == ["metrics.json"]


# The signal tests run their scenario in a fresh interpreter: a real SIGINT goes to the
# process's C-level handler, which a native library loaded by an earlier test in the same
# process (pytest-xdist workers run many files) may have replaced, ending the worker.
SIGNAL_SCENARIOS = {
    "swap": """
import os, signal, sys
from pathlib import Path
from components.atomic import signals_deferred
tmp = Path(sys.argv[1])
target, new = tmp / "out", tmp / "new"
target.mkdir(); (target / "metrics.json").write_text("old")
new.mkdir(); (new / "metrics.json").write_text("new")
try:
    with signals_deferred():
        os.replace(target, tmp / "old")
        signal.raise_signal(signal.SIGINT)
        os.replace(new, target)
except KeyboardInterrupt:
    print("interrupted")
assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
""",
    "atomic_dir_swap": """
import inspect, os, signal, sys
from pathlib import Path
from components import atomic
tmp = Path(sys.argv[1])
target = tmp / "out"
target.mkdir(); (target / "metrics.json").write_text("old")
code = inspect.unwrap(atomic.atomic_dir).__code__
lines, first = inspect.getsourcelines(code)
swap = first + next(i for i, line in enumerate(lines) if "os.replace(tmp, target)" in line)
sent = []
def local(frame, event, _arg):
    if event == "line" and frame.f_lineno == swap and not sent:
        sent.append(True)
        signal.raise_signal(signal.SIGINT)
    return local
sys.settrace(lambda frame, event, _arg: local if frame.f_code is code else None)
try:
    with atomic.atomic_dir(target) as new:
        (new / "metrics.json").write_text("new")
except KeyboardInterrupt:
    sys.settrace(None)
    assert sent, "the trace hook never reached the swap"
    print("interrupted")
""",
    "sibling": """
import signal, sys, tempfile
from pathlib import Path
from components import atomic
tmp, kind = Path(sys.argv[1]), sys.argv[2]
maker = tempfile.mkstemp if kind == "atomic_path" else tempfile.mkdtemp
sent = []
def local(frame, event, _arg):
    if event == "return" and not sent:
        sent.append(True)
        signal.raise_signal(signal.SIGINT)
    return local
sys.settrace(lambda frame, event, _arg: local if frame.f_code is maker.__code__ else None)
try:
    with getattr(atomic, kind)(tmp / "out"):
        pass
except KeyboardInterrupt:
    sys.settrace(None)
    assert sent, "the trace hook never saw the temporary sibling made"
    print("interrupted")
""",
}


def _run_scenario(name: str, *args: str) -> None:
    import subprocess
    import sys
    from pathlib import Path

    done = subprocess.run([sys.executable, "-c", SIGNAL_SCENARIOS[name], *args],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])})
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "interrupted", done.stdout


def test_a_signal_during_the_swap_takes_effect_after_it(tmp_path):
    """A real SIGINT raised inside the renames is held until both are done: the folder holds
    the new set whole, then Ctrl-C ends the program as it would have."""
    _run_scenario("swap", str(tmp_path))
    assert (tmp_path / "out" / "metrics.json").read_text() == "new"


def test_a_ctrl_c_held_over_the_swap_leaves_no_hidden_previous_folder(tmp_path):
    """Ctrl-C pressed while atomic_dir renames takes effect as the renames end: the new set
    stands whole and the previous one, already replaced, is removed, not left behind as a
    hidden sibling. The signal is sent from a trace hook at the second rename: a real SIGINT
    at the one moment a user cannot aim for."""
    _run_scenario("atomic_dir_swap", str(tmp_path))
    assert (tmp_path / "out" / "metrics.json").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.mark.parametrize("kind", ["atomic_dir", "scratch_beside", "atomic_path"])
def test_a_ctrl_c_as_the_temporary_sibling_is_made_leaves_nothing_behind(tmp_path, kind):
    """Ctrl-C the moment the temporary sibling exists, before the code holding it could
    note it for clean-up (mkdtemp/mkstemp returning): nothing is left beside the target.
    A user's poll for the sibling lands just there; a trace hook sends a real SIGINT as
    tempfile's function returns."""
    _run_scenario("sibling", str(tmp_path), kind)
    assert list(tmp_path.iterdir()) == []

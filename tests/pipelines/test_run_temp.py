"""A run's own temporary folder: gone when the run ends, and a killed run's removed by the
next one (also one of the same pid), while a live run's is left alone."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from pipelines.run_temp import run_temp_folder


def test_the_folder_goes_when_the_run_ends_even_by_an_error(tmp_path):
    with pytest.raises(RuntimeError), run_temp_folder(tmp_path) as temp:
        (temp / "program").mkdir()
        (temp / "program" / "ephemeral_component.py").write_text("")
        raise RuntimeError("a step failed")
    assert not temp.exists() and not (tmp_path / "tmp").exists()


def test_a_killed_runs_folder_is_removed_and_a_live_ones_kept(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    killed = tmp_path / "tmp" / f"run-{dead.stdout.strip()}-abc"
    live = tmp_path / "tmp" / f"run-{os.getppid()}-def"
    other = tmp_path / "tmp" / "not-a-run"
    for folder in (killed, live, other):
        folder.mkdir(parents=True)
    with run_temp_folder(tmp_path) as temp:
        assert temp.parent == tmp_path / "tmp" and temp.name.startswith(f"run-{os.getpid()}-")
        assert not killed.exists() and live.exists() and other.exists()
    assert live.exists() and not temp.exists()


def test_an_earlier_runs_folder_of_our_own_pid_is_removed(tmp_path):
    """In a container ``segpipe run`` can be pid 1 every time: a SIGKILLed run's folder
    has the next run's pid, and the workdir's lock says it is no live run's."""
    stale = tmp_path / "tmp" / f"run-{os.getpid()}-old"
    (stale / "kfp-workspace").mkdir(parents=True)
    with run_temp_folder(tmp_path) as temp:
        assert temp.exists() and temp != stale and not stale.exists()
    assert not (tmp_path / "tmp").exists()

"""serving.atomic: what a user finds on disk after a write (content, mode, no leftovers)."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest
import rasterio

from serving.atomic import atomic_path, current_umask, write_text


@pytest.fixture(params=[0o022, 0o077], ids=["umask-022", "umask-077"])
def umask(request):
    previous = os.umask(request.param)
    yield request.param
    os.umask(previous)


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_written_files_follow_the_umask(tmp_path, umask):
    write_text(tmp_path / "request.json", "{}")
    with atomic_path(tmp_path / "mask.tif") as tmp, rasterio.open(
            tmp, "w", driver="GTiff", width=4, height=4, count=1, dtype="uint8") as dst:
        dst.write(np.zeros((1, 4, 4), np.uint8))
    expected = 0o666 & ~umask  # 0644 with the usual umask: readable by the team
    assert mode(tmp_path / "request.json") == expected
    assert mode(tmp_path / "mask.tif") == expected
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mask.tif", "request.json"]


def test_umask_is_read_without_changing_it(umask):
    assert current_umask() == umask
    assert current_umask() == umask

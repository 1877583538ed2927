"""Broken and hostile input: zip bombs, truncated rasters, files that claim huge sizes, and
temporary folders left by a killed run."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from components.atomic import MARKER
from components.ingest import ingest_source
from components.ingest_options import IngestOptions
from components.prepare import PrepareOptions, prepare_dataset
from components.raster import DataError, write_array
from components.tile import TileOptions
from tests.components.conftest import UTM, make_image, make_labels, write_pair

REPO_ROOT = Path(__file__).resolve().parents[2]


def _zip_bomb(path: Path, mebibytes: int) -> None:
    """A real bomb: ``mebibytes`` of zeros, deflated to about a thousandth of that."""
    zeros = bytes(1 << 20)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf, \
            zf.open("scenes/a_image.tif", "w", force_zip64=True) as member:
        for _ in range(mebibytes):
            member.write(zeros)


def test_zip_bomb_is_refused_and_nothing_is_left_behind(tmp_path):
    archive = tmp_path / "bomb.zip"
    _zip_bomb(archive, 256)
    assert archive.stat().st_size < 1 << 20
    out = tmp_path / "out"
    with pytest.raises(DataError, match=r"bomb.zip: declares 268,435,456 bytes from .* more "
                       "than 200 times its size"):
        ingest_source(archive, out)
    assert not out.exists()
    with pytest.raises(DataError, match="declares 268,435,456 bytes, more than the 1,048,576 "
                       "allowed per member"):
        ingest_source(archive, out, IngestOptions(max_member_bytes=1 << 20))
    with pytest.raises(DataError, match="members declare 268,435,456 bytes in all, more than "
                       "the 1,000 allowed"):
        ingest_source(archive, out, IngestOptions(max_extract_bytes=1000,
                                                  max_compression_ratio=1e9))
    assert not out.exists()


def test_a_member_that_lies_about_its_size_is_stopped_while_extracting(tmp_path):
    archive = tmp_path / "liar.zip"
    _zip_bomb(archive, 8)
    data = bytearray(archive.read_bytes())
    central = data.find(b"PK\x01\x02")  # the central directory entry zipfile trusts
    data[central + 24:central + 28] = struct.pack("<I", 1000)  # declared size: 1000 bytes
    archive.write_bytes(bytes(data))
    assert zipfile.ZipFile(archive).infolist()[0].file_size == 1000
    out = tmp_path / "out"
    # zipfile stops reading at the declared size, so its CRC check may catch the lie first
    with pytest.raises(DataError, match="liar.zip: member 'scenes/a_image.tif' (inflates past "
                       "1,000 bytes|is damaged)"):
        ingest_source(archive, out)
    assert not out.exists()


def _half_written_geotiff(path: Path) -> None:
    rng = np.random.default_rng(0)
    with rasterio.open(path, "w", driver="GTiff", width=512, height=512, count=4,
                       dtype="uint16", crs=UTM, transform=from_origin(600000, 3000000, 2, 2),
                       tiled=True, blockxsize=256, blockysize=256, compress="zstd") as dst:
        dst.write(rng.integers(0, 1000, (4, 512, 512)).astype("uint16"))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_truncated_geotiff_is_a_clear_error_naming_the_source_file(tmp_path):
    src = tmp_path / "src"
    write_pair(src, "good", make_image(32), make_labels(32, (0, 1)))
    write_array(src / "cut_mask.tif", make_labels(512, (0, 1)), UTM,
                from_origin(600000, 3000000, 2, 2))
    _half_written_geotiff(src / "cut_image.tif")
    out = tmp_path / "ds"
    with pytest.raises(DataError) as err:
        prepare_dataset(src, out, PrepareOptions(tile=TileOptions(patch_size=32)))
    message = str(err.value)
    assert message.startswith(f"{src / 'cut_image.tif'}: cannot read pixels; the file is "
                              "truncated or corrupt")
    assert err.value.__cause__ is None and err.value.__suppress_context__
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


def _png(path: Path, width: int, height: int, rows: int) -> None:
    """A greyscale PNG that claims ``width`` x ``height`` but holds ``rows`` rows."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(
            ">I", zlib.crc32(kind + body))
    raw = zlib.compress(bytes((width + 1) * rows), 9)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(
        ">IIBBBBB", width, height, 8, 0, 0, 0, 0)) + chunk(b"IDAT", raw) + chunk(b"IEND", b""))


def test_a_png_claiming_huge_dimensions_is_refused_before_decoding(tmp_path):
    src = tmp_path / "src"
    _png(src / "images" / "huge.png", 50_000, 50_000, 64)
    _png(src / "masks" / "huge.png", 50_000, 50_000, 64)
    assert (src / "images" / "huge.png").stat().st_size < 100_000
    with pytest.raises(DataError, match=r"huge.png: 50000x50000 pixels \(2,500,000,000\) is "
                       r"more than max_pixels \(1,000,000,000\)"):
        ingest_source(src, tmp_path / "out")
    write_pair(tmp_path / "small", "a", make_image(64), make_labels(64))
    with pytest.raises(DataError, match="64x64 pixels .* more than max_pixels"):
        ingest_source(tmp_path / "small", tmp_path / "out", IngestOptions(max_pixels=4000))


def test_a_truncated_png_is_refused_although_gdal_reads_it_as_zeros(tmp_path):
    from PIL import Image

    src = tmp_path / "src"
    for sub in ("images", "masks"):
        (src / sub).mkdir(parents=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (64, 64, 3)).astype(np.uint8)).save(
        src / "images" / "a.png")
    Image.fromarray(make_labels(64, (0, 1))).save(src / "masks" / "a.png")
    data = (src / "images" / "a.png").read_bytes()
    (src / "images" / "a.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"a.png: PNG file is truncated inside a b'IDAT' chunk"):
        ingest_source(src, tmp_path / "out")


_KILLED_RUN = """
import os, signal, sys
from components.atomic import atomic_dir
with atomic_dir(sys.argv[1]) as tmp:
    (tmp / "tiles").mkdir()
    (tmp / "tiles" / "half.tif").write_bytes(b"x" * 1000)
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_the_next_run_removes_stale_temp_folders_it_owns_and_nothing_else(sample_source,
                                                                          tmp_path):
    out = tmp_path / "dataset"
    proc = subprocess.run([sys.executable, "-c", _KILLED_RUN, str(out)],
                          env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    assert proc.returncode == -9
    stale = [p for p in tmp_path.iterdir() if p.name.startswith(".dataset.")]
    assert len(stale) == 1 and (stale[0] / MARKER).exists()
    foreign = tmp_path / ".dataset.keep"  # looks alike, but has no marker of ours
    foreign.mkdir()
    live = tmp_path / ".dataset.live"  # ours, but its owner (this process) is alive
    live.mkdir()
    (live / MARKER).write_text(json.dumps({"target": "dataset", "host": os.uname().nodename,
                                           "pid": os.getpid(), "started": None}))
    other = tmp_path / ".other.x"  # another target's
    other.mkdir()
    (other / MARKER).write_text(json.dumps({"target": "other", "host": os.uname().nodename,
                                            "pid": 2 ** 22 + 7, "started": None}))
    prepare_dataset(sample_source, out, PrepareOptions(tile=TileOptions(patch_size=32)))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [".dataset.keep", ".dataset.live", ".other.x", "dataset", "sample"])
    assert not (out / MARKER).exists()

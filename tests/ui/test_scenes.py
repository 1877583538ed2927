"""Scenes are checked from their header, before any pixel is read."""

from __future__ import annotations

import os

import pytest
import rasterio

from pipelines.ui.scenes import inspect_scene, list_scenes, save_upload, scene_path
from pipelines.ui.settings import UiError
from tests.components.test_vrt_sources import write_vrt
from tests.ui.harness import write_scene


def test_a_good_scene_is_described(tmp_path):
    info = inspect_scene(write_scene(tmp_path / "upload.tif", 64), "field.tif", 4, 10_000)
    assert (info.width, info.height, info.bands, info.dtype) == (64, 64, 4, "uint16")
    assert info.crs == "EPSG:32644" and info.georeferenced
    assert info.describe() == "64×64 px, 4 bands, uint16, EPSG:32644"


def test_problems_name_the_users_file_not_the_temporary_one(tmp_path):
    three = write_scene(tmp_path / "upload.tif", 32, bands=3)
    with pytest.raises(UiError, match=r"^rgb\.tif: wrong band count: 3 bands, the model "
                                      r"expects 4$"):
        inspect_scene(three, "rgb.tif", 4, 10_000)
    grey = write_scene(tmp_path / "grey.tif", 32, bands=1)
    with pytest.raises(UiError, match=r"^grey\.tif: wrong band count: 1 band, the model "):
        inspect_scene(grey, "grey.tif", 4, 10_000)
    junk = tmp_path / "junk.tif"
    junk.write_bytes(b"PK\x03\x04 not an image")
    with pytest.raises(UiError, match=r"^notes\.tif: undecodable image, not a GeoTIFF, PNG "
                                      r"or JPEG \(17 bytes\)$"):
        inspect_scene(junk, "notes.tif", 4, 10_000)


def test_pixel_limit_is_checked_before_reading(tmp_path):
    # 40000 x 40000 x 4 uint16 would be 12.8 GB decoded; the file is sparse, nothing written.
    huge = tmp_path / "huge.tif"
    with rasterio.open(huge, "w", driver="GTiff", width=40_000, height=40_000, count=4,
                       dtype="uint16", tiled=True, compress="deflate", SPARSE_OK=True):
        pass
    assert huge.stat().st_size < 10_000_000
    with pytest.raises(UiError, match=r"huge\.tif: too many pixels: 40000×40000 = "
                                      r"1600000000, the limit is 100000000"):
        inspect_scene(huge, "huge.tif", 4, 100_000_000)


def test_uploads_are_saved_under_a_fixed_name(tmp_path):
    path = save_upload(b"bytes", "../../etc/Scene One.TIF", tmp_path / "up")
    assert path == tmp_path / "up" / "upload.tif" and path.read_bytes() == b"bytes"
    with pytest.raises(UiError, match="not a GeoTIFF, PNG or JPEG file name"):
        save_upload(b"MZ", "tool.exe", tmp_path / "up")


def test_data_folder_lists_scenes_and_nothing_outside(tmp_path):
    root = tmp_path / "data"
    (root / "b").mkdir(parents=True)
    (root / "a.tif").write_bytes(b"")
    (root / "b" / "c.JPG").write_bytes(b"")
    (root / "b" / "notes.txt").write_bytes(b"")
    outside = tmp_path / "secret.tif"
    outside.write_bytes(b"")
    os.symlink(outside, root / "link.tif")
    os.symlink(tmp_path, root / "loop")
    assert list_scenes(root) == ["a.tif", "b/c.JPG"]
    assert list_scenes(root, limit=1) == ["a.tif"]
    assert scene_path(root, "b/c.JPG") == (root / "b" / "c.JPG").resolve()
    for bad in ("../secret.tif", "link.tif", "b"):
        with pytest.raises(UiError, match="not a scene in the data folder"):
            scene_path(root, bad)


def test_label_masks_of_a_paired_dataset_are_not_listed(tmp_path):
    root = tmp_path / "data"
    for folder in ("images", "labels"):
        (root / folder).mkdir(parents=True)
    for name in ("a", "b"):
        write_scene(root / "images" / f"{name}.tif", 32, seed=1)
        write_scene(root / "labels" / f"{name}.tif", 32, bands=1, dtype="uint8")
    write_scene(root / "loose.tif", 32)  # no partner: still a scene
    assert list_scenes(root) == ["loose.tif", "images/a.tif", "images/b.tif"]
    # Where nothing pairs up, every raster is a scene.
    assert list_scenes(root / "labels") == ["a.tif", "b.tif"]


def test_an_upload_that_is_a_vrt_is_refused_whatever_its_name(tmp_path):
    secret = write_scene(tmp_path / "server_file.tif", 32)
    upload = tmp_path / "upload.tif"  # save_upload names it by the suffix the user gave
    write_vrt(upload, str(secret), relative=False)
    with pytest.raises(UiError, match=r"^field\.tif: a GDAL VRT is not accepted"):
        inspect_scene(upload, "field.tif", 4, 10_000)

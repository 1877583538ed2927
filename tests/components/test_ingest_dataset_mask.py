"""A GeoTIFF's own mask (GDAL's per-dataset mask: an internal one, as drone orthomosaics
carry around their black collar, or a ``.msk`` file beside it) marks no data in training as
in serving (serving/image_bands.py): its masked pixels are NaN in the prepared scene, the
ignore index in its label mask, and out of tiles and statistics."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasterio.enums import MaskFlags
from rasterio.transform import from_origin
from rasterio.windows import Window

from components.artifacts import SplitManifest, TileManifest
from components.ingest import ingest_source
from components.ingest_options import IngestOptions
from components.normalize import fit_normalization
from components.raster import open_raster
from components.tile import TileOptions, tile_scenes
from serving.image_bands import image_bands, read_pixels
from tests.band_stack import write_tif
from tests.components.conftest import make_labels

SIZE, PATCH, COLLAR = 32, 16, 8
#: Colour under the masked collar: beyond every valid pixel's, so statistics that counted
#: it would show it as their maximum.
HIDDEN = 250
#: How each masked image is written: GDAL's internal mask (plain, and JPEG in YCbCr as
#: orthomosaics are), and a ``.msk`` file beside the GeoTIFF.
MASKED = {"internal": ({"GDAL_TIFF_INTERNAL_MASK": True}, {}),
          "ortho": ({"GDAL_TIFF_INTERNAL_MASK": True},
                    {"compress": "jpeg", "photometric": "ycbcr"}),
          "sidecar": ({"GDAL_TIFF_INTERNAL_MASK": False}, {})}


def _collar() -> np.ndarray:
    """The masked pixels: the left COLLAR columns."""
    collar = np.zeros((SIZE, SIZE), bool)
    collar[:, :COLLAR] = True
    return collar


def _write_masked(path, rgb: np.ndarray, env: dict, creation: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.Env(**env), rasterio.open(
            path, "w", driver="GTiff", width=SIZE, height=SIZE, count=3, dtype="uint8",
            crs="EPSG:32650", transform=from_origin(600000.0, 3000000.0, 1.0, 1.0),
            **creation) as dst:
        dst.write(rgb)
        dst.write_mask(np.where(_collar(), 0, 255).astype(np.uint8))


def _source(root) -> dict[str, np.ndarray]:
    """One GeoTIFF per way of MASKED, and ``plain`` without a mask (its collar the same
    colour, which is data there); class-id GeoTIFF labels whose collar is class 1. The RGB
    of each."""
    rng = np.random.default_rng(0)
    rgb = {}
    for name in (*MASKED, "plain"):
        colours = rng.integers(1, 100, (3, SIZE, SIZE)).astype(np.uint8)
        colours[:, _collar()] = HIDDEN
        if name == "plain":
            write_tif(root / "images" / f"{name}.tif", colours)
        else:
            _write_masked(root / "images" / f"{name}.tif", colours, *MASKED[name])
        labels = make_labels(SIZE, (0, 1))
        labels[_collar()] = 1
        write_tif(root / "labels" / f"{name}.tif", labels[None])
        rgb[name] = colours
    return rgb


def test_the_written_masks_are_gdal_per_dataset_masks(tmp_path):
    """The fixtures are what the ingest reads: a mask of GDAL's own, where expected."""
    _source(tmp_path)
    assert (tmp_path / "images" / "sidecar.tif.msk").exists()
    assert not (tmp_path / "images" / "internal.tif.msk").exists()
    for name in MASKED:
        with rasterio.open(tmp_path / "images" / f"{name}.tif") as src:
            assert all(flags == [MaskFlags.per_dataset] for flags in src.mask_flag_enums)


@pytest.mark.parametrize("name", list(MASKED))
def test_pixels_a_geotiff_masks_are_no_data_in_its_scene(tmp_path, name):
    rgb = _source(tmp_path / "src")
    ingest_source(tmp_path / "src", tmp_path / "out", IngestOptions())
    scenes = tmp_path / "out" / "scenes"
    with open_raster(scenes / f"{name}_image.tif") as scene:
        assert scene.count == 3 and scene.dtypes == ("float32",) * 3
        pixels = scene.read()
    collar = _collar()
    assert np.isnan(pixels[:, collar]).all()  # no data in every band
    assert not np.isnan(pixels[:, ~collar]).any()
    if name != "ortho":  # JPEG is lossy
        np.testing.assert_array_equal(pixels[:, ~collar], rgb[name][:, ~collar])
    with rasterio.open(tmp_path / "src" / "images" / f"{name}.tif") as src:  # as served
        served = read_pixels(src, Window(0, 0, SIZE, SIZE), image_bands(src, 3))
    np.testing.assert_array_equal(np.isnan(served).any(axis=-1), collar)
    with open_raster(scenes / f"{name}_mask.tif") as mask:
        labels = mask.read(1)
    assert (labels[collar] == 255).all() and (labels[~collar] != 255).all()


def test_a_geotiff_without_a_mask_is_unchanged(tmp_path):
    rgb = _source(tmp_path / "src")
    ingest_source(tmp_path / "src", tmp_path / "out", IngestOptions())
    with open_raster(tmp_path / "out" / "scenes" / "plain_image.tif") as scene:
        assert scene.dtypes == ("uint8",) * 3
        np.testing.assert_array_equal(scene.read(), rgb["plain"])
    with open_raster(tmp_path / "out" / "scenes" / "plain_mask.tif") as mask:
        assert (mask.read(1) != 255).all()


def test_masked_pixels_are_left_out_of_tiles_and_statistics(tmp_path):
    _source(tmp_path / "src")
    (tmp_path / "src" / "images" / "plain.tif").unlink()  # its collar is data
    (tmp_path / "src" / "labels" / "plain.tif").unlink()
    ingest_source(tmp_path / "src", tmp_path / "out", IngestOptions())
    manifest = tile_scenes(tmp_path / "out", tmp_path / "out", TileOptions(patch_size=PATCH))
    for tile in manifest.tiles:
        assert tile.valid_fraction == (1 - COLLAR / PATCH if tile.window[0] == 0 else 1)
    every_tile = tmp_path / "out" / "all_train.json"
    SplitManifest(strategy="random", seed=0, ratios=(1.0, 0.0, 0.0), splits={
        "train": [t.id for t in TileManifest.load(tmp_path / "out" / "tiles.json").tiles],
        "val": [], "test": []}).save(every_tile)
    stats = fit_normalization(tmp_path / "out", every_tile, tmp_path / "out" / "stats.json")
    assert all(band.max < HIDDEN - 50 for band in stats.bands)
    assert stats.pixel_count == len(MASKED) * SIZE * (SIZE - COLLAR)

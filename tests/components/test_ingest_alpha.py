"""A PNG's alpha channel is transparency in training as in serving (serving/image_bands.py):
never a model band, its transparent pixels no data. A GeoTIFF's alpha-tagged 4th band stays
a band (GDAL tags it on every 8-bit 4-band GeoTIFF, RGB + near infrared included)."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasterio.enums import ColorInterp

from components.artifacts import SplitManifest, TileManifest, TrainedModelInfo
from components.dataset_paths import PreparedDataset
from components.ingest import ingest_source
from components.ingest_options import IngestOptions
from components.normalize import fit_normalization
from components.prepare import PrepareOptions, prepare_dataset
from components.raster import open_raster
from components.register import RegisterOptions, serving_config
from components.split import SplitOptions
from components.tile import TileOptions, tile_scenes
from serving.bands import band_dtype
from serving.image_bands import band_count_problem
from serving.inputs import dtype_warning
from tests.band_stack import write_tif
from tests.components.conftest import make_labels
from tests.logged_models import save_known_model

SIZE, PATCH, HOLE = 32, 16, 8
#: Colour under the transparent corner: beyond every opaque pixel's, so statistics that
#: counted it would show it as their maximum.
HIDDEN = 250

pytestmark = pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")


def _rgb(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(1, 100, (3, SIZE, SIZE)).astype(np.uint8)


def _write_png(path, bands: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", driver="PNG", width=SIZE, height=SIZE, count=len(bands),
                       dtype=bands.dtype.name) as dst:
        dst.write(bands)


def _png_source(root) -> dict[str, np.ndarray]:
    """``holed``: RGBA, its top-left HOLE px transparent (colour HIDDEN, labelled class 1);
    ``opaque``: RGBA, alpha 255 everywhere (as exports write it); ``plain``: RGB. Class-id
    PNG labels. The RGB of each."""
    rgb = {name: _rgb(seed) for seed, name in enumerate(("holed", "opaque", "plain"))}
    rgb["holed"][:, :HOLE, :HOLE] = HIDDEN
    for name, colours in rgb.items():
        alpha = np.full((1, SIZE, SIZE), 255, np.uint8)
        if name == "holed":
            alpha[0, :HOLE, :HOLE] = 0
        _write_png(root / "images" / f"{name}.png",
                   colours if name == "plain" else np.concatenate([colours, alpha]))
        labels = make_labels(SIZE, (0, 1))
        labels[:HOLE, :HOLE] = 1
        _write_png(root / "labels" / f"{name}.png", labels[None])
    return rgb


def test_an_rgba_png_is_ingested_as_its_rgb_bands_with_transparent_pixels_ignored(tmp_path):
    rgb = _png_source(tmp_path / "src")
    ingest_source(tmp_path / "src", tmp_path / "out", IngestOptions())
    scenes = tmp_path / "out" / "scenes"
    with open_raster(scenes / "holed_image.tif") as scene:
        assert scene.count == 3
        pixels = scene.read()
    hole = np.zeros((SIZE, SIZE), bool)
    hole[:HOLE, :HOLE] = True
    assert np.isnan(pixels[:, hole]).all()  # no data in every band
    np.testing.assert_array_equal(pixels[:, ~hole], rgb["holed"][:, ~hole])
    with open_raster(scenes / "holed_mask.tif") as mask:
        labels = mask.read(1)
    assert (labels[hole] == 255).all() and (labels[~hole] != 255).all()
    for name in ("opaque", "plain"):  # nothing transparent: the image's own type, unchanged
        with open_raster(scenes / f"{name}_image.tif") as scene:
            assert scene.dtypes == ("uint8",) * 3
            np.testing.assert_array_equal(scene.read(), rgb[name])


def test_transparent_pixels_are_left_out_of_tiles_and_statistics(tmp_path):
    _png_source(tmp_path / "src")
    ingest_source(tmp_path / "src", tmp_path / "out", IngestOptions())
    manifest = tile_scenes(tmp_path / "out", tmp_path / "out", TileOptions(patch_size=PATCH))
    assert manifest.bands == 3
    corner = next(t for t in manifest.tiles if t.scene == "holed" and t.window[:2] == (0, 0))
    assert corner.valid_fraction == 1 - (HOLE / PATCH) ** 2
    every_tile = tmp_path / "out" / "all_train.json"
    SplitManifest(strategy="random", seed=0, ratios=(1.0, 0.0, 0.0), splits={
        "train": [t.id for t in TileManifest.load(tmp_path / "out" / "tiles.json").tiles],
        "val": [], "test": []}).save(every_tile)
    stats = fit_normalization(tmp_path / "out", every_tile, tmp_path / "out" / "stats.json")
    assert len(stats.bands) == 3
    assert all(band.max < HIDDEN for band in stats.bands)
    assert stats.pixel_count == 3 * SIZE * SIZE - HOLE * HOLE


def test_a_model_prepared_from_rgba_pngs_takes_those_pngs_at_serving(tmp_path):
    """The band count training records is the one serving reads the same PNG with."""
    _png_source(tmp_path / "src")
    options = PrepareOptions(tile=TileOptions(patch_size=PATCH),
                             split=SplitOptions(strategy="block", block_size=PATCH))
    summary = prepare_dataset(tmp_path / "src", tmp_path / "ds", options)
    assert summary.bands == 3
    with rasterio.open(tmp_path / "src" / "images" / "holed.png") as png:
        assert band_count_problem(png, summary.bands) is None


def test_a_model_prepared_from_rgba_pngs_records_their_8_bit_type(tmp_path):
    """The tiles of the transparent scene are float32 (NaN marks its transparent pixels), but
    the model records uint8, what users send it: those same PNGs predict without a warning
    about their pixel type."""
    _png_source(tmp_path / "src")
    options = PrepareOptions(tile=TileOptions(patch_size=PATCH),
                             split=SplitOptions(strategy="block", block_size=PATCH))
    dataset = PreparedDataset(prepare_dataset(tmp_path / "src", tmp_path / "ds",
                                              options).dataset_dir)
    manifest = dataset.tile_manifest
    assert (manifest.dtype, manifest.source_dtype) == ("float32", "uint8")
    holed = next(t for t in manifest.tiles if t.scene == "holed")
    with open_raster(tmp_path / "ds" / "tiles" / f"{holed.id}_image.tif") as tile:
        assert tile.dtypes == ("float32",) * 3  # training reads the NaN it carries
    model = save_known_model(tmp_path / "model", classes=2, bands=3, patch_size=PATCH)
    config = serving_config(TrainedModelInfo.load(model / "model.json"), dataset,
                            RegisterOptions())
    assert config.input_dtype == "uint8"
    with rasterio.open(tmp_path / "src" / "images" / "holed.png") as png:
        assert dtype_warning(config, band_dtype(png), "holed.png") is None


def test_a_manifest_without_source_dtype_gives_its_tiles_type_to_the_model(tmp_path):
    """tiles.json written before source_dtype was recorded: the model records the tiles'
    type, as it did."""
    _png_source(tmp_path / "src")
    ingest_source(tmp_path / "src", tmp_path / "out", IngestOptions())
    manifest = tile_scenes(tmp_path / "out", tmp_path / "out", TileOptions(patch_size=PATCH))
    older = TileManifest.model_validate(manifest.model_dump(mode="json",
                                                            exclude={"source_dtype"}))
    assert (older.source_dtype, older.model_dtype) == (None, "float32")
    assert manifest.model_dtype == "uint8"


def test_a_four_band_byte_geotiff_keeps_its_alpha_tagged_band(tmp_path):
    """RGB + near infrared saved by GDAL's defaults: band 4 is tagged alpha, and is data
    (its 0 pixels are no transparency)."""
    root = tmp_path / "src"
    bands = np.concatenate([_rgb(0), _rgb(1)[:1]])
    bands[3, :HOLE, :HOLE] = 0
    path = write_tif(root / "images" / "rgbn.tif", bands)
    with rasterio.open(path) as src:
        assert src.colorinterp[3] == ColorInterp.alpha  # GDAL's default tag
    write_tif(root / "labels" / "rgbn.tif", make_labels(SIZE, (0, 1))[None])
    ingest_source(root, tmp_path / "out", IngestOptions())
    with open_raster(tmp_path / "out" / "scenes" / "rgbn_image.tif") as scene:
        assert scene.dtypes == ("uint8",) * 4
        np.testing.assert_array_equal(scene.read(), bands)
    with open_raster(tmp_path / "out" / "scenes" / "rgbn_mask.tif") as mask:
        assert (mask.read(1) != 255).all()


def test_a_png_transparent_colour_marks_the_pixels_matching_it_in_every_band(tmp_path):
    """A tRNS colour (GDAL: a nodata value per band) is one colour key, as serving reads it:
    a pixel matching it in one band is data."""
    from PIL import Image

    root = tmp_path / "src"
    colours = np.moveaxis(_rgb(0), 0, -1) + 40
    colours[:HOLE, :HOLE] = (10, 20, 30)
    colours[20] = (10, 0, 0)  # only red matches the key
    (root / "images").mkdir(parents=True)
    Image.fromarray(colours).save(root / "images" / "keyed.png", transparency=(10, 20, 30))
    _write_png(root / "labels" / "keyed.png", make_labels(SIZE, (0, 1))[None])
    ingest_source(root, tmp_path / "out", IngestOptions())
    with open_raster(tmp_path / "out" / "scenes" / "keyed_mask.tif") as mask:
        ignored = mask.read(1) == 255
    hole = np.zeros((SIZE, SIZE), bool)
    hole[:HOLE, :HOLE] = True
    np.testing.assert_array_equal(ignored, hole)

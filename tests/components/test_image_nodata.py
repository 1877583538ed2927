"""ingest.nodata: the value that marks no data in images that declare none (a mosaic
merged with 0 fill); an image's own tag wins and a differing one is reported."""

from __future__ import annotations

import json

import numpy as np
import pytest

from components.ingest import ingest_source
from components.ingest_options import IngestOptions
from components.prepare import PrepareOptions, prepare_dataset
from components.raster import SettingError, open_raster
from components.split import SplitOptions
from components.survey import IngestWarning
from components.tile import TileOptions
from tests.components.conftest import make_image, make_labels, write_pair

SIZE, PATCH = 128, 32


def _zero_filled_mosaic(folder, nodata=None):
    """One 128 px scene whose left quarter is 0 in every band (merge fill, no nodata tag),
    labelled background there, as rasterio.merge leaves it."""
    image, labels = make_image(SIZE), make_labels(SIZE, (0, 1))
    image[:, :, :PATCH] = 0
    labels[:, :PATCH] = 0
    return write_pair(folder, "mosaic", image, labels, nodata=nodata)


def _prepare(source, out, nodata):
    options = PrepareOptions(ingest=IngestOptions(nodata=nodata),
                             tile=TileOptions(patch_size=PATCH),
                             split=SplitOptions(strategy="block", block_size=PATCH))
    return prepare_dataset(source, out, options)


def test_zero_fill_declared_as_nodata_leaves_tiles_and_statistics(tmp_path):
    _zero_filled_mosaic(tmp_path / "src")
    summary = _prepare(tmp_path / "src", tmp_path / "declared", nodata=0)
    plain = _prepare(tmp_path / "src", tmp_path / "plain", nodata=None)

    tiles = sum(s.tiles for s in summary.splits.values())
    assert tiles == (SIZE // PATCH) * (SIZE // PATCH - 1)  # the 4 all-zero tiles dropped
    assert sum(s.tiles for s in plain.splits.values()) == tiles + SIZE // PATCH
    assert summary.nodata == 0 and plain.nodata is None
    stats = json.loads((tmp_path / "declared" / "stats.json").read_text())
    assert stats["nodata"] == 0
    assert min(band["min"] for band in stats["bands"]) >= 1  # the fill is not a pixel value
    plain_stats = json.loads((tmp_path / "plain" / "stats.json").read_text())
    assert min(band["min"] for band in plain_stats["bands"]) == 0
    with open_raster(tmp_path / "declared" / "scenes" / "mosaic_image.tif") as scene:
        assert scene.nodata == 0
        assert (scene.read(1)[:, :PATCH] == 0).all()
    with open_raster(tmp_path / "declared" / "scenes" / "mosaic_mask.tif") as mask:
        assert (mask.read(1)[:, :PATCH] == 255).all()  # invalid, not background


def test_an_images_own_nodata_wins_and_a_different_one_is_reported(tmp_path):
    _zero_filled_mosaic(tmp_path / "src", nodata=999)
    with pytest.warns(IngestWarning, match=r"mosaic_image\.tif declares nodata 999: an "
                                           r"image's own nodata wins, nodata 0 applies only"):
        ingest_source(tmp_path / "src", tmp_path / "out", IngestOptions(nodata=0))
    with open_raster(tmp_path / "out" / "scenes" / "mosaic_image.tif") as scene:
        assert scene.nodata == 999


def test_a_nodata_the_images_type_cannot_hold_is_refused_naming_the_file(tmp_path):
    _zero_filled_mosaic(tmp_path / "src")
    with pytest.raises(SettingError, match=r"mosaic_image\.tif: nodata -1 is not a uint16 "
                                           r"pixel value \(0\.\.65535\)"):
        ingest_source(tmp_path / "src", tmp_path / "out", IngestOptions(nodata=-1))
    assert not (tmp_path / "out").exists()


def test_float_images_take_nan_as_nodata(tmp_path):
    image = make_image(SIZE, dtype="float32")
    image[:, :PATCH] = np.nan
    write_pair(tmp_path / "src", "f", image, make_labels(SIZE, (0, 1)))
    ingest_source(tmp_path / "src", tmp_path / "out", IngestOptions(nodata=float("nan")))
    with open_raster(tmp_path / "out" / "scenes" / "f_image.tif") as scene:
        assert np.isnan(scene.nodata)

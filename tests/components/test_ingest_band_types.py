"""Images whose bands differ in type (a VRT stacking RGB bytes and a float32 DSM): prepared
in the bands' common type, their nodata read as for any image."""

from __future__ import annotations

import json

import numpy as np
import pytest

from components.dataset_paths import PreparedDataset
from components.ingest import ingest_source
from components.ingest_options import IngestOptions
from components.prepare import PrepareOptions, prepare_dataset
from components.raster import SettingError, open_raster
from components.split import SplitOptions
from components.survey import IngestWarning
from components.tile import TileOptions, tile_scenes
from tests.band_stack import rgb_dsm, write_stack_vrt, write_tif
from tests.components.conftest import make_labels

SIZE, PATCH = 32, 16


def _source(root, scenes: int = 1) -> list[np.ndarray]:
    """``root/images/sN.vrt`` (3 uint8 + 1 float32 band, from ``root/parts_sN``) with
    ``root/labels/sN.tif``; the stacks as float32."""
    stacks = []
    for i in range(scenes):
        _, stack = rgb_dsm(root / "images" / f"s{i}.vrt", root / f"parts_s{i}", SIZE, seed=i,
                           origin=(600000.0 + i * SIZE, 3000000.0))
        write_tif(root / "labels" / f"s{i}.tif", make_labels(SIZE, (0, 1))[None],
                  origin=(600000.0 + i * SIZE, 3000000.0))
        stacks.append(stack)
    return stacks


def test_a_vrt_of_byte_and_float32_bands_is_ingested_as_their_float32_stack(tmp_path):
    (stack,) = _source(tmp_path / "src")
    ingest_source(tmp_path / "src", tmp_path / "out", IngestOptions())
    with open_raster(tmp_path / "out" / "scenes" / "s0_image.tif") as scene:
        assert scene.dtypes == ("float32",) * 4
        np.testing.assert_array_equal(scene.read(), stack)
    with open_raster(tmp_path / "out" / "scenes" / "s0_mask.tif") as mask:
        np.testing.assert_array_equal(mask.read(1), make_labels(SIZE, (0, 1)))


def test_prepared_mixed_bands_record_float32_and_their_dsm_statistics(tmp_path):
    _source(tmp_path / "src", scenes=2)
    options = PrepareOptions(tile=TileOptions(patch_size=PATCH),
                             split=SplitOptions(strategy="block", block_size=PATCH))
    summary = prepare_dataset(tmp_path / "src", tmp_path / "ds", options)
    assert summary.bands == 4
    dataset = PreparedDataset(tmp_path / "ds")
    assert dataset.tile_manifest.dtype == "float32"
    assert dataset.tile_manifest.model_dtype == "float32"  # what the model records
    dsm = json.loads((tmp_path / "ds" / "stats.json").read_text())["bands"][3]
    assert 249.0 < dsm["mean"] < 251.0 and 0.3 < dsm["std"] < 1.0


def test_a_nodata_tag_on_mixed_bands_marks_pixels_nodata_in_every_band(tmp_path):
    root = tmp_path / "src"
    rgb = np.full((3, SIZE, SIZE), 7, np.uint8)
    dsm = np.full((1, SIZE, SIZE), 250.5, np.float32)
    rgb[:, :, :4], dsm[:, :, :4] = 0, 0.0  # no data in every band
    rgb[:, :4, 8:] = 0  # black roofs: the DSM is valid there
    files = [write_tif(root / "parts" / "rgb.tif", rgb), write_tif(root / "parts" / "dsm.tif", dsm)]
    write_stack_vrt(root / "images" / "s.vrt", files, nodata=0)
    write_tif(root / "labels" / "s.tif", np.ones((1, SIZE, SIZE), np.uint8))
    ingest_source(root, tmp_path / "out", IngestOptions())
    with open_raster(tmp_path / "out" / "scenes" / "s_image.tif") as scene:
        assert scene.dtypes == ("float32",) * 4 and scene.nodata == 0
    with open_raster(tmp_path / "out" / "scenes" / "s_mask.tif") as mask:
        labels = mask.read(1)
    assert (labels[:, :4] == 255).all()
    assert (labels[:, 4:] != 255).all()


def test_a_nodata_option_one_band_type_cannot_hold_is_refused_naming_the_band(tmp_path):
    _source(tmp_path / "src")
    with pytest.raises(SettingError, match=r"s0\.vrt: nodata -9999 is not a uint8 pixel value "
                                           r"\(0\.\.255\) of band 1 \(bands uint8, uint8, "
                                           r"uint8, float32"):
        ingest_source(tmp_path / "src", tmp_path / "out", IngestOptions(nodata=-9999))
    ingest_source(tmp_path / "src", tmp_path / "nan", IngestOptions(nodata=float("nan")))


@pytest.mark.parametrize("rgb_tag", [None, 0])
def test_a_dsm_tag_of_its_own_leaves_its_holes_out_of_statistics_and_tiles(tmp_path, rgb_tag):
    """RGB (untagged, or tagged 0) + a DSM tagged -9999, as the docs' stacking script
    writes them: the DSM's holes are no data, in the statistics and the masks."""
    root = tmp_path / "src"
    for i in range(2):
        grid = {"origin": (600000.0 + i * SIZE, 3000000.0)}
        rgb = np.random.default_rng(i).integers(1, 256, (3, SIZE, SIZE)).astype(np.uint8)
        dsm = np.full((1, SIZE, SIZE), 250.0, np.float32)
        dsm[:, :8] = -9999.0
        files = [write_tif(root / f"parts{i}" / "rgb.tif", rgb, nodata=rgb_tag, **grid),
                 write_tif(root / f"parts{i}" / "dsm.tif", dsm, nodata=-9999, **grid)]
        write_stack_vrt(root / "images" / f"s{i}.vrt", files, nodata=[rgb_tag, -9999])
        write_tif(root / "labels" / f"s{i}.tif", make_labels(SIZE, (0, 1))[None], **grid)
    options = PrepareOptions(tile=TileOptions(patch_size=PATCH),
                             split=SplitOptions(strategy="block", block_size=PATCH))
    prepare_dataset(root, tmp_path / "ds", options)
    dsm_stats = json.loads((tmp_path / "ds" / "stats.json").read_text())["bands"][3]
    assert dsm_stats["min"] == 250.0 and dsm_stats["mean"] == pytest.approx(250.0)
    tags = "none, none, none" if rgb_tag is None else "0, 0, 0"
    with pytest.warns(IngestWarning, match=rf"s0\.vrt declares nodata \({tags}, -9999\) and 1 "
                                           r"more: an image's own nodata wins, nodata 0 applies"):
        ingest_source(root, tmp_path / "out", IngestOptions(nodata=0))  # not to tagged images
    with open_raster(tmp_path / "out" / "scenes" / "s0_mask.tif") as mask:
        labels = mask.read(1)
    assert (labels[:8] == 255).all() and (labels[8:] != 255).all()
    with open_raster(tmp_path / "out" / "scenes" / "s0_image.tif") as scene:
        pixels = scene.read()
        assert scene.dtypes == ("float32",) * 4 and np.isnan(scene.nodata)
    assert np.isnan(pixels[:, :8]).all() and not np.isnan(pixels[:, 8:]).any()


def test_a_byte_vrt_tagged_per_band_is_prepared_as_floats_and_recorded_as_bytes(tmp_path):
    """Bands of one type tagged apart (RGB untagged, an 8-bit band tagged 0): the scene and
    its tiles are float32 to carry NaN, the model records uint8, what the VRT is read in."""
    root, grid = tmp_path / "src", {"origin": (600000.0, 3000000.0)}
    rgb = np.random.default_rng(0).integers(1, 256, (3, SIZE, SIZE)).astype(np.uint8)
    band = np.full((1, SIZE, SIZE), 7, np.uint8)
    band[:, :8] = 0
    files = [write_tif(root / "parts" / "rgb.tif", rgb, **grid),
             write_tif(root / "parts" / "band.tif", band, nodata=0, **grid)]
    write_stack_vrt(root / "images" / "s0.vrt", files, nodata=[None, 0])
    write_tif(root / "labels" / "s0.tif", make_labels(SIZE, (0, 1))[None], **grid)
    ingest_source(root, tmp_path / "out", IngestOptions())
    manifest = tile_scenes(tmp_path / "out", tmp_path / "out", TileOptions(patch_size=PATCH))
    assert (manifest.dtype, manifest.source_dtype, manifest.model_dtype) == \
        ("float32", "uint8", "uint8")

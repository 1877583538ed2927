"""Scene tiles read at another resolution: a scene's NaN holes stay out of the Lanczos kernels
as a numeric nodata's do (serving/resampled_read.py), so its tiles are those of the same scene
declaring -9999, as serving reads it."""

from __future__ import annotations

import numpy as np
import pytest

from components.dataset_paths import read_tile
from components.tile import TileOptions, tile_scenes
from tests.components.conftest import make_image, make_labels
from tests.components.test_tile import ingested


def _holed_scene(nodata: float) -> np.ndarray:
    """float32 64x64: a block of holes, an uncovered edge and scattered single holes."""
    image = make_image(64, dtype="float32")
    holes = np.zeros((64, 64), bool)
    holes[10:22, 20:34] = True
    holes[56:, :9] = True
    holes |= np.random.default_rng(3).random((64, 64)) < 0.02
    image[:, holes] = nodata
    return image


@pytest.mark.parametrize("options", [TileOptions(patch_size=16, scale=0.5, min_valid_fraction=0),
                                     TileOptions(patch_size=16, scale=0.7, min_valid_fraction=0)])
def test_a_nan_scene_resampled_gives_the_tiles_of_the_same_scene_declaring_a_number(
        tmp_path, options):
    manifests, tiles = {}, {}
    for name, nodata in (("nan", float("nan")), ("number", -9999.0)):
        root = ingested(tmp_path / name, _holed_scene(nodata), make_labels(64, (0, 1)), nodata)
        manifests[name] = tile_scenes(root, tmp_path / name / "ds", options)
        tiles[name] = {t.id: read_tile(tmp_path / name / "ds" / "tiles", t.id)
                       for t in manifests[name].tiles}
    assert manifests["nan"].scenes[0].width < 64 and len(tiles["nan"]) > 1
    assert [(t.id, t.valid_fraction, t.class_counts) for t in manifests["nan"].tiles] == \
        [(t.id, t.valid_fraction, t.class_counts) for t in manifests["number"].tiles]
    for tile_id, (image, mask) in tiles["number"].items():
        nan_image, nan_mask = tiles["nan"][tile_id]
        hole = image == -9999.0
        np.testing.assert_array_equal(np.isnan(nan_image), hole)
        np.testing.assert_array_equal(nan_image[~hole], image[~hole])
        np.testing.assert_array_equal(nan_mask, mask)

"""sample-data: deterministic, georeferenced, every class present, nodata border."""

from __future__ import annotations

import numpy as np
import rasterio

from components.artifacts import ClassMap
from components.sample_data import NODATA, generate_sample_dataset


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    a = generate_sample_dataset(tmp_path / "a", scenes=2, size=48, seed=7)
    b = generate_sample_dataset(tmp_path / "b", scenes=2, size=48, seed=7)
    c = generate_sample_dataset(tmp_path / "c", scenes=2, size=48, seed=8)
    for name in ("scene00_image.tif", "scene01_mask.tif", "classes.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    assert (a / "scene00_image.tif").read_bytes() != (c / "scene00_image.tif").read_bytes()


def test_scenes_are_georeferenced_with_classes_and_nodata(tmp_path):
    out = generate_sample_dataset(tmp_path, scenes=2, size=96, seed=0)
    classes = ClassMap.load(out / "classes.json")
    assert classes.names == ["bare_land", "vegetation", "water", "road", "building"]
    with rasterio.open(out / "scene01_image.tif") as img, \
            rasterio.open(out / "scene01_mask.tif") as msk:
        assert img.count == 4 and img.crs.to_epsg() == 32633 and img.nodata == NODATA
        assert img.transform.c == 500000.0 + 96 * 0.5  # beside scene00 on one grid
        image, mask = img.read(), msk.read(1)
    border = (image == NODATA).all(axis=0)
    assert border.any() and (mask[border] == 255).all() and (mask[~border] != 255).all()
    present = set(np.unique(mask[~border]))
    assert {0, 1, 3, 4} <= present
    dem = image[3][~border]
    assert dem[mask[~border] == 4].mean() > dem[mask[~border] == 0].mean() + 3  # raised

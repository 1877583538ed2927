"""serving.quiet.plain_images_quiet: rasterio's NotGeoreferencedWarning for a plain image is
ignored inside the block only; other warnings, and the same warning after it, still show."""

from __future__ import annotations

import warnings

import numpy as np
import rasterio
from rasterio.errors import NotGeoreferencedWarning

from serving.quiet import plain_images_quiet


def test_plain_image_warning_is_ignored_inside_the_block_only(tmp_path):
    path = tmp_path / "plain.png"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with plain_images_quiet():
            with rasterio.open(path, "w", driver="PNG", width=4, height=4, count=3,
                               dtype="uint8") as dst:
                dst.write(np.full((3, 4, 4), 7, np.uint8))
            with rasterio.open(path) as src:
                assert src.read().max() == 7
            warnings.warn("still shown", UserWarning, stacklevel=1)
        assert [w.category for w in caught] == [UserWarning]
        with rasterio.open(path):  # after the block: warned again
            pass
    assert [w.category for w in caught] == [UserWarning, NotGeoreferencedWarning]

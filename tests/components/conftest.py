"""Tiny rasters for data-plane tests, written into tmp dirs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rasterio.transform import Affine, from_origin

from components.raster import write_array
from components.sample_data import generate_sample_dataset

UTM = "EPSG:32650"


def make_image(size: int = 32, bands: int = 4, seed: int = 0, dtype: str = "uint16") -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(1, 1000, (bands, size, size)).astype(dtype)


def make_labels(size: int = 32, values: tuple[int, ...] = (0, 255)) -> np.ndarray:
    """Vertical stripes of ``values`` so every value is present."""
    cols = np.arange(size) * len(values) // size
    return np.broadcast_to(np.asarray(values, np.uint8)[cols], (size, size)).copy()


def write_pair(folder: Path, name: str, image: np.ndarray, mask: np.ndarray, *,
               crs: str | None = UTM, origin: tuple[float, float] = (600000.0, 3000000.0),
               pixel: float = 2.0, nodata: float | None = None, image_suffix: str = "_image",
               mask_suffix: str = "_mask", ext: str = ".tif") -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    transform = from_origin(*origin, pixel, pixel) if crs else Affine.identity()
    image_path = folder / f"{name}{image_suffix}{ext}"
    mask_path = folder / f"{name}{mask_suffix}{ext}"
    write_array(image_path, image, crs, transform, nodata)
    write_array(mask_path, mask, crs, transform)
    return image_path, mask_path


@pytest.fixture
def sample_source(tmp_path: Path) -> Path:
    """Three synthetic 64 px scenes on one UTM grid, with classes.json."""
    return generate_sample_dataset(tmp_path / "sample", scenes=3, size=64, seed=1)


@pytest.fixture
def binary_source(tmp_path: Path) -> Path:
    """images/ + labels/ like tea-plantations: 4-band int16, 0/255 masks, 4 chips in a row."""
    root = tmp_path / "binary"
    for i in range(4):
        image = make_image(32, seed=i, dtype="int16")
        mask = make_labels(32, (0, 255) if i % 2 else (255, 0))
        for sub, array in (("images", image), ("labels", mask)):
            (root / sub).mkdir(parents=True, exist_ok=True)
            write_array(root / sub / f"chip{i}.tif", array, UTM,
                        from_origin(600000.0 + i * 64.0, 3000000.0, 2.0, 2.0))
    return root

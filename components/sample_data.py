"""Deterministic synthetic aerial scenes: 4 bands (R, G, B, DEM) as float32 GeoTIFF in UTM
with a nodata border, and class-id masks. Classes differ in colour, texture and height, and
buildings cast shadows, so a small model can learn them but not from one band alone."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rasterio.crs import CRS
from rasterio.transform import from_origin

from components.artifacts import ClassInfo, ClassMap
from components.atomic import atomic_path
from components.raster import write_array

SAMPLE_CLASSES = (
    ("bare_land", "#A0785A"),
    ("vegetation", "#2E8B3A"),
    ("water", "#1F4E9A"),
    ("road", "#808080"),
    ("building", "#D24B3C"),
)
BARE, VEGETATION, WATER, ROAD, BUILDING = range(len(SAMPLE_CLASSES))
IGNORE = 255
NODATA = -9999.0
SAMPLE_CRS = "EPSG:32633"
PIXEL_SIZE = 0.5  # metres
# Mean R, G, B reflectance (0..1) and its per-pixel texture strength per class.
_CLASS_RGB = {
    BARE: ((0.55, 0.45, 0.33), 0.06),
    VEGETATION: ((0.18, 0.42, 0.16), 0.09),
    WATER: ((0.10, 0.20, 0.38), 0.02),
    ROAD: ((0.47, 0.47, 0.48), 0.03),
    BUILDING: ((0.70, 0.30, 0.25), 0.04),
}


def sample_class_map() -> ClassMap:
    return ClassMap(classes=[ClassInfo(id=i, name=n, color=c)
                             for i, (n, c) in enumerate(SAMPLE_CLASSES)], ignore_index=IGNORE)


def _smooth_field(rng: np.random.Generator, size: int, waves: int = 6) -> np.ndarray:
    """A smooth random field in about [-1, 1] from a few random plane waves."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    field = np.zeros((size, size), np.float32)
    for _ in range(waves):
        fx, fy = rng.uniform(-4, 4, 2)
        field += np.sin(2 * np.pi * (fx * xx + fy * yy) + rng.uniform(0, 2 * np.pi))
    return field / np.sqrt(waves / 2)


def _scene_labels(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Class-id map and a building-height map (metres)."""
    labels = np.full((size, size), BARE, np.uint8)
    labels[_smooth_field(rng, size) > 0.3] = VEGETATION
    labels[_smooth_field(rng, size, waves=3) > 1.1] = WATER
    yy, xx = np.mgrid[0:size, 0:size]
    road_width = max(2, size // 40)
    for _ in range(rng.integers(1, 4)):
        angle = rng.uniform(0, np.pi)
        offset = rng.uniform(0.2, 0.8) * size
        dist = np.abs((xx - size / 2) * np.sin(angle) - (yy - size / 2) * np.cos(angle)
                      - (offset - size / 2))
        labels[dist < road_width / 2] = ROAD
    heights = np.zeros((size, size), np.float32)
    for _ in range(rng.integers(size // 24 + 2, size // 12 + 4)):
        w, h = rng.integers(max(3, size // 30), max(5, size // 10), 2)
        x, y = rng.integers(0, size - w), rng.integers(0, size - h)
        if np.isin(labels[y:y + h, x:x + w], (WATER, ROAD)).any():
            continue
        labels[y:y + h, x:x + w] = BUILDING
        heights[y:y + h, x:x + w] = rng.uniform(4, 20)
    return labels, heights


def _scene_image(rng: np.random.Generator, labels: np.ndarray,
                 heights: np.ndarray) -> np.ndarray:
    size = labels.shape[0]
    rgb = np.zeros((3, size, size), np.float32)
    for cls, (mean, texture) in _CLASS_RGB.items():
        where = labels == cls
        for band in range(3):
            rgb[band][where] = mean[band]
        rgb[:, where] += texture * rng.standard_normal((3, int(where.sum())), np.float32)
    # Roof colours vary per building; a shared brightness field mimics illumination.
    rgb *= 1.0 + 0.08 * _smooth_field(rng, size, waves=2)
    # Shadows: pixels south-east of a building, lower than it, are darker.
    shift = max(1, size // 64)
    shadow_height = np.zeros_like(heights)
    shadow_height[shift:, shift:] = heights[:-shift, :-shift]
    rgb[:, (shadow_height > heights + 1)] *= 0.45
    rgb += 0.015 * rng.standard_normal(rgb.shape, np.float32)
    terrain = 120.0 + 6.0 * _smooth_field(rng, size, waves=2)
    terrain[labels == WATER] = terrain.min() - 1.0
    dem = terrain + heights + 0.2 * rng.standard_normal((size, size), np.float32)
    return np.concatenate([np.clip(rgb, 0, 1) * 10000.0, dem[None]]).astype(np.float32)


def _nodata_border(rng: np.random.Generator, size: int) -> np.ndarray:
    """A corner cut and a strip along one edge, like the edge of a satellite swath."""
    yy, xx = np.mgrid[0:size, 0:size]
    border = xx + yy < rng.integers(size // 8, size // 4)
    strip = rng.integers(1, max(2, size // 16))
    border[:, size - strip:] = True
    return border


def generate_sample_dataset(out: Path, scenes: int = 6, size: int = 256, seed: int = 0) -> Path:
    """Write ``scenes`` scene pairs ``sceneNN_image.tif``/``sceneNN_mask.tif`` and
    ``classes.json`` into ``out``. Scenes lie side by side on one UTM grid."""
    if scenes < 1 or size < 16:
        raise ValueError(f"sample-data needs scenes >= 1 and size >= 16 (got {scenes}, {size})")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    crs = CRS.from_string(SAMPLE_CRS)
    for index in range(scenes):
        rng = np.random.default_rng([seed, index])
        labels, heights = _scene_labels(rng, size)
        image = _scene_image(rng, labels, heights)
        border = _nodata_border(rng, size)
        image[:, border] = NODATA
        labels[border] = IGNORE
        transform = from_origin(500000.0 + index * size * PIXEL_SIZE, 4500000.0,
                                PIXEL_SIZE, PIXEL_SIZE)
        name = f"scene{index:02d}"
        with atomic_path(out / f"{name}_image.tif") as tmp:
            write_array(tmp, image, crs, transform, nodata=NODATA)
        with atomic_path(out / f"{name}_mask.tif") as tmp:
            write_array(tmp, labels, crs, transform, nodata=IGNORE)
    sample_class_map().save(out / "classes.json")
    return out

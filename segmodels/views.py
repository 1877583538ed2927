"""The training views of a tile, in numpy for every backend: the 8 rotations/reflections of
a crop window as flat pixel indices, and the photometric ranges of the colour jitter.
``components.train_augment`` (tf.data) and ``benchmarks/training_gpu.py`` (numpy on JAX
machines without TensorFlow) both build on these."""

from __future__ import annotations

import numpy as np

# Photometric ranges in z-score units (the bands are normalized before augmentation), drawn
# per sample. Scene-to-scene differences of multi-band rasters (illumination, haze, sensor
# calibration, season) are shifts and gains of a few tenths of a band's spread; larger jitter
# would blur spectral classes (water vs shadow, crop vs grass).
BRIGHTNESS = 0.2  # one additive shift for all bands, uniform in +-0.2
BAND_SHIFT = 0.05  # plus one per band, uniform in +-0.05 (calibration differences)
CONTRAST = 1.25  # gain about the band mean, log-uniform in [1/1.25, 1.25]
# Gamma-like bend of each band's 2-98 percentile range u in [0, 1]: u + a u (1 - u), a uniform
# in +-0.3. It moves mid-tones as far as gamma 0.8..1.25 does (up to ~8% of the range) and
# stays monotonic, for a fifth of the CPU of a per-pixel power.
TONE = 0.3
NOISE = 0.05  # pixel noise, its std uniform in [0, 0.05]
# Pixel noise comes from a few fixed Gaussian fields tiled over the crop: drawing fresh
# normals for every pixel costs more CPU than all the rest of the augmentation together.
NOISE_FIELDS, NOISE_SIDE = 8, 64

# columns of a batch's uniform draw; then one column per band for its shift
DRAWS = ("view", "row", "col", "tone", "contrast", "brightness", "noise_field", "noise_std")


def view_index_maps(tile: int, crop: int) -> np.ndarray:
    """(8, crop*crop) int32: for each of the 8 rotations/reflections of a crop x crop window
    at the tile's top-left corner, the flat tile pixel of every flat output pixel. A window
    at (row, col) adds ``row * tile + col``, so crop and view are one gather."""
    if not 1 <= crop <= tile:
        raise ValueError(f"crop must be in 1..{tile} (the tile size), got {crop}")
    rows, cols = np.divmod(np.arange(crop * crop, dtype=np.int32).reshape(crop, crop), crop)
    maps = []
    for flip in (False, True):
        for k in range(4):
            r, c = (np.rot90(a[:, ::-1] if flip else a, k) for a in (rows, cols))
            maps.append((r * tile + c).reshape(-1))
    return np.stack(maps).astype(np.int32)

"""The figures logged beside reports: what they draw stays within the range imshow takes."""

from __future__ import annotations

import logging

import numpy as np

from components.figures import close, overlay_figure


def test_an_overlay_of_a_bright_tile_and_a_white_class_draws_without_clipping(caplog):
    """The overlay blends the stretched image (0..1) with the class colours; a white class
    over the brightest pixels summed to just above 1 in float32, and matplotlib warned
    "Clipping input data to the valid range for imshow" once per tile."""
    image = np.random.default_rng(0).integers(0, 3000, (2, 16, 16, 4)).astype(np.int16)
    masks = np.ones((2, 16, 16), np.uint8)
    palette = np.array([[0, 0, 0], [255, 255, 255]], np.uint8)
    with caplog.at_level(logging.WARNING):
        fig = overlay_figure(image, masks, masks, palette, 255)
        fig.canvas.draw()
    close(fig)
    assert not [r for r in caplog.records if "Clipping" in r.getMessage()]
    overlay = fig.axes[3].images[0].get_array()
    assert overlay.min() >= 0 and overlay.max() <= 1

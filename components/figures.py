"""Figures logged to MLflow and written beside reports: prediction overlays and the
confusion matrix. Matplotlib with the Agg backend, so they render without a display."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402


def display_rgb(image: np.ndarray) -> np.ndarray:
    """First three bands (or the first, greyscale) stretched to 0..1 by 2-98 percentiles."""
    bands = image[..., :3] if image.shape[-1] >= 3 else np.repeat(image[..., :1], 3, axis=-1)
    bands = bands.astype(np.float32)
    lo, hi = np.nanpercentile(bands, 2), np.nanpercentile(bands, 98)
    return np.clip((bands - lo) / max(hi - lo, 1e-6), 0, 1)


def blend(rgb: np.ndarray, colors: np.ndarray, weight: float = 0.45) -> np.ndarray:
    """``rgb`` (0..1) with ``weight`` of the uint8 ``colors`` over it, still within 0..1: in
    float32, 0.55 + 0.45 rounds to just above 1, which imshow clips with a warning."""
    mixed = (1 - weight) * rgb.astype(np.float64) + weight * (colors / 255.0)
    return np.clip(mixed, 0, 1)


def colorize(mask: np.ndarray, palette: np.ndarray, ignore_index: int) -> np.ndarray:
    """(H, W) class ids -> (H, W, 3) uint8; ignored pixels black."""
    out = np.zeros((*mask.shape, 3), dtype=np.uint8)
    valid = (mask != ignore_index) & (mask < len(palette))
    out[valid] = palette[mask[valid]]
    return out


def overlay_figure(images: Sequence[np.ndarray], truths: Sequence[np.ndarray],
                   predictions: Sequence[np.ndarray], palette: np.ndarray, ignore_index: int,
                   titles: Sequence[str] | None = None) -> Figure:
    """One row per tile: image, ground truth, prediction, prediction blended on the image."""
    rows = len(images)
    fig, axes = plt.subplots(rows, 4, figsize=(10, 2.6 * rows), squeeze=False)
    for r in range(rows):
        rgb = display_rgb(images[r])
        pred_rgb = colorize(predictions[r], palette, ignore_index)
        panels = [rgb, colorize(truths[r], palette, ignore_index), pred_rgb,
                  blend(rgb, pred_rgb)]
        for c, (ax, panel) in enumerate(zip(axes[r], panels, strict=True)):
            ax.imshow(panel)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(["image", "truth", "prediction", "overlay"][c], fontsize=9)
        if titles:
            axes[r][0].set_ylabel(titles[r], fontsize=7)
    fig.tight_layout()
    return fig


def confusion_figure(cm: np.ndarray, class_names: Sequence[str]) -> Figure:
    """Row-normalized confusion matrix (recall per true class) with raw counts annotated."""
    cm = np.asarray(cm, dtype=np.float64)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    k = len(class_names)
    fig, ax = plt.subplots(figsize=(1.2 + 0.9 * k, 1.0 + 0.8 * k))
    im = ax.imshow(norm, vmin=0, vmax=1, cmap="Blues")
    ax.set_xticks(range(k), class_names, rotation=45, ha="right")
    ax.set_yticks(range(k), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(k):
        for j in range(k):
            ax.text(j, i, f"{norm[i, j]:.2f}\n{int(cm[i, j])}", ha="center", va="center",
                    fontsize=7, color="white" if norm[i, j] > 0.5 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    return fig


def close(fig: Figure) -> None:
    plt.close(fig)

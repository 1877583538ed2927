"""Fixtures for component tests: tiny source rasters for the data plane, and a tiny prepared
dataset written directly in the artifact contract (32x32 4-band tiles whose class is readable
from the pixels, so a few-hundred-parameter U-Net learns something in one or two epochs)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import Affine, from_origin

from components.artifacts import (
    BandStats,
    ClassInfo,
    ClassMap,
    NormStats,
    SceneInfo,
    SplitManifest,
    TileManifest,
    TileRecord,
)
from components.dataset_paths import DatasetPaths, PreparedDataset, tile_paths
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

TILE = 32
BANDS = 4
NODATA = 0.0
CLASSES = [("background", "#000080"), ("tea", "#00A000"), ("water", "#3080FF")]


def _tile(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Blocks of classes; band values depend on the class, plus noise; a nodata corner."""
    blocks = rng.integers(0, len(CLASSES), size=(4, 4))
    mask = np.kron(blocks, np.ones((TILE // 4, TILE // 4), dtype=np.int64)).astype(np.uint8)
    centers = np.array([[100, 200, 300, 400], [400, 300, 200, 100], [900, 900, 100, 500]],
                       dtype=np.float32)
    image = centers[mask] + rng.normal(0, 20, size=(TILE, TILE, BANDS)).astype(np.float32)
    image[:4, :4] = NODATA
    mask[:4, :4] = 255
    return image.astype(np.float32), mask


SCENE_TILES = 4  # tiles side by side in one scene


def _write_raster(path: Path, array: np.ndarray, transform: Affine,
                  nodata: float | None) -> None:
    """(H, W, C) array -> GeoTIFF."""
    height, width, bands = array.shape
    with rasterio.open(path, "w", driver="GTiff", width=width, height=height, count=bands,
                       dtype=array.dtype.name, crs="EPSG:32633", transform=transform,
                       nodata=nodata) as dst:
        dst.write(np.moveaxis(array, -1, 0))


def write_tiny_dataset(root: Path, n_tiles: int = 12, seed: int = 0,
                       split_counts: tuple[int, int, int] = (6, 3, 3)) -> DatasetPaths:
    """Three scenes of 4 tiles in a row (tile i is tile i // 3 of scene i % 3), ingested
    scenes included; the first split_counts[0] tile ids train, and so on."""
    paths = DatasetPaths(root)
    paths.tiles_dir.mkdir(parents=True, exist_ok=True)
    paths.scenes_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    ClassMap(classes=[ClassInfo(id=i, name=n, color=c) for i, (n, c) in enumerate(CLASSES)]
             ).save(paths.classes)
    scenes = 3
    width = TILE * -(-n_tiles // scenes)
    scene_images = np.zeros((scenes, TILE, width, BANDS), np.float32)
    scene_masks = np.full((scenes, TILE, width, 1), 255, np.uint8)
    scene_transforms = [Affine(10, 0, 500000 + 10 * (width + TILE) * s, 0, -10, 4000000)
                        for s in range(scenes)]
    records, images = [], {}
    for i in range(n_tiles):
        scene, col = i % scenes, TILE * (i // scenes)
        tile_id = f"scene{scene}_{i:03d}"
        image, mask = _tile(rng)
        scene_images[scene, :, col:col + TILE] = image
        scene_masks[scene, :, col:col + TILE, 0] = mask
        transform = scene_transforms[scene] @ Affine.translation(col, 0)
        image_path, mask_path = tile_paths(paths.tiles_dir, tile_id)
        _write_raster(image_path, image, transform, NODATA)
        _write_raster(mask_path, mask[..., None], transform, None)
        counts = {int(c): int((mask == c).sum()) for c in range(len(CLASSES)) if (mask == c).any()}
        records.append(TileRecord(id=tile_id, scene=f"scene{scene}",
                                  window=(col, 0, TILE, TILE), transform=tuple(transform)[:6],
                                  valid_fraction=float((mask != 255).mean()),
                                  class_counts=counts))
        images[tile_id] = image
    for s in range(scenes):
        _write_raster(paths.scenes_dir / f"scene{s}_image.tif", scene_images[s],
                      scene_transforms[s], NODATA)
        _write_raster(paths.scenes_dir / f"scene{s}_mask.tif", scene_masks[s],
                      scene_transforms[s], None)
    TileManifest(patch_size=TILE, stride=TILE, bands=BANDS, dtype="float32", nodata=NODATA,
                 scenes=[SceneInfo(name=f"scene{s}", width=width, height=TILE,
                                   crs="EPSG:32633", transform=tuple(scene_transforms[s])[:6])
                         for s in range(scenes)],
                 tiles=records).save(paths.tiles_manifest)
    ids = [r.id for r in records]
    n_train, n_val, _ = split_counts
    splits = {"train": ids[:n_train], "val": ids[n_train:n_train + n_val],
              "test": ids[n_train + n_val:]}
    SplitManifest(strategy="random", seed=seed, ratios=(0.5, 0.25, 0.25), splits=splits
                  ).save(paths.split)
    train_pixels = np.concatenate([images[i].reshape(-1, BANDS) for i in splits["train"]])
    train_pixels = train_pixels[~(train_pixels == NODATA).all(axis=1)]
    NormStats(bands=[BandStats(mean=float(b.mean()), std=float(b.std()), min=float(b.min()),
                               max=float(b.max()),
                               percentiles={"2": float(np.percentile(b, 2)),
                                            "98": float(np.percentile(b, 98))})
                     for b in train_pixels.T],
              nodata=NODATA, pixel_count=len(train_pixels), tile_count=n_train
              ).save(paths.stats)
    return paths


def scenes_as_source(dataset: PreparedDataset, source: Path) -> Path:
    """The dataset's ingested scenes as a source folder (images/, masks/, classes.json)."""
    for kind, folder in (("image", "images"), ("mask", "masks")):
        (source / folder).mkdir(parents=True)
        for path in dataset.scenes_dir.glob(f"*_{kind}.tif"):
            shutil.copy(path, source / folder / path.name.replace(f"_{kind}", ""))
    shutil.copy(dataset.classes, source / "classes.json")
    return source


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> PreparedDataset:
    return PreparedDataset(write_tiny_dataset(tmp_path_factory.mktemp("dataset")).root)


@pytest.fixture(scope="session")
def mlflow_uri(tmp_path_factory) -> str:
    """One real SQLite-backed MLflow store for the session (schema creation is slow)."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture
def mlflow_store(mlflow_uri, monkeypatch):
    """Point MLflow (and subprocesses) at the session store; end runs a test left open."""
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_uri)
    mlflow.set_tracking_uri(mlflow_uri)
    yield mlflow_uri
    while mlflow.active_run():
        mlflow.end_run()


@pytest.fixture(scope="session")
def trained_models(tiny_dataset, tmp_path_factory, mlflow_uri) -> dict[str, Path]:
    """Two really trained tiny U-Nets: "fit" (2 epochs, lr 1e-2) and "barely" (1 epoch at
    lr 1e-6, close to its random init). Shared by the evaluate and register tests."""
    import mlflow

    from components.train import train_model
    from components.train_options import TrainParams

    mlflow.set_tracking_uri(mlflow_uri)
    models = {}
    for name, lr, epochs in (("fit", 1e-2, 2), ("barely", 1e-6, 1)):
        out = tmp_path_factory.mktemp(name) / "model"
        params = TrainParams(model_params={"depth": 2, "filters": 4}, epochs=epochs,
                             batch_size=4, learning_rate=lr, overlay_tiles=0, seed=3)
        mlflow.set_experiment("trained-models")
        train_model(tiny_dataset, params, out)
        models[name] = out
    return models

"""Scene-level scores count the ground that overlapping georeferenced scenes repeat with the
same pixels and labels once (chips cut from one survey every half chip, as the real tea
chips are), while another date of the same ground and plain images are scored in full."""

import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import Affine

from components.artifacts import SceneInfo, SplitManifest, TileManifest, TileRecord
from components.dataset_paths import DatasetPaths, PreparedDataset, tile_paths
from components.evaluate import evaluate_model
from components.same_ground import footprint_key, grid_offset
from components.scene_repeats import (
    STRIP_VALUES,
    RepeatedGroundWarning,
    SceneGrid,
    find_repeats,
)
from serving.quiet import plain_images_quiet
from tests.logged_models import save_known_model

SIZE, BANDS, PIXEL = 32, 4, 10.0
CRS = "EPSG:32633"
ORIGIN = Affine(PIXEL, 0, 500000, 0, -PIXEL, 4000000)
CENTRES = np.array([[100, 200, 300, 400], [400, 300, 200, 100], [900, 900, 100, 500]],
                   np.float32)


def _survey(rng: np.random.Generator, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(H, W, C) float32 pixels whose first band tells the class, and (H, W) labels with an
    ignored corner."""
    mask = np.repeat(rng.integers(0, 3, (SIZE // 8, width // 8)), 8, 0).repeat(8, 1)
    image = CENTRES[mask] + rng.normal(0, 150, (SIZE, width, BANDS)).astype(np.float32)
    mask = mask.astype(np.uint8)
    mask[:4, :4] = 255
    return image.astype(np.float32), mask


def _write(path: Path, array: np.ndarray, crs: str | None, transform: Affine) -> None:
    array = array if array.ndim == 3 else array[..., None]
    with plain_images_quiet(), rasterio.open(
            path, "w", driver="GTiff", width=array.shape[1], height=array.shape[0],
            count=array.shape[2], dtype=array.dtype.name, crs=crs, transform=transform) as dst:
        dst.write(np.moveaxis(array, -1, 0))


#: The mosaic of one survey: 32 x 48 px, cut into two 32 px chips every 16 px.
@pytest.fixture(scope="module")
def survey():
    return _survey(np.random.default_rng(5), SIZE + SIZE // 2)


def _write_dataset(root: Path, like: PreparedDataset, scenes: dict, patch: int,
                   tiles: dict[str, list[tuple[int, int]]], split: dict[str, str]
                   ) -> PreparedDataset:
    """A prepared dataset of ``scenes`` (name -> pixels, labels, CRS, transform) with the
    classes and statistics of ``like``, the tiles ``tiles`` (scene -> (col, row) of each
    ``patch`` px tile, ids ``<scene>_<col>_<row>``) and ``split`` (tile id -> split)."""
    paths = DatasetPaths(root)
    paths.tiles_dir.mkdir(parents=True)
    paths.scenes_dir.mkdir()
    shutil.copy(like.classes, paths.classes)
    shutil.copy(like.stats, paths.stats)
    infos, records = [], []
    for name, (pixels, labels, crs, transform) in scenes.items():
        _write(paths.scenes_dir / f"{name}_image.tif", pixels, crs, transform)
        _write(paths.scenes_dir / f"{name}_mask.tif", labels, crs, transform)
        infos.append(SceneInfo(name=name, width=SIZE, height=SIZE, crs=crs,
                               transform=tuple(transform)[:6]))
        for col, row in tiles[name]:
            tile_id, where = f"{name}_{col}_{row}", (slice(row, row + patch),
                                                      slice(col, col + patch))
            tile_transform = transform @ Affine.translation(col, row)
            for path, array in zip(tile_paths(paths.tiles_dir, tile_id),
                                   (pixels[where], labels[where]), strict=True):
                _write(Path(path), array, crs, tile_transform)
            counts = np.bincount(labels[where].ravel(), minlength=256)
            records.append(TileRecord(id=tile_id, scene=name, window=(col, row, patch, patch),
                                      transform=tuple(tile_transform)[:6],
                                      valid_fraction=float(counts[:255].sum() / patch ** 2),
                                      class_counts={c: int(n) for c, n
                                                    in enumerate(counts[:255]) if n}))
    TileManifest(patch_size=patch, stride=patch, bands=BANDS, dtype="float32", scenes=infos,
                 tiles=records).save(paths.tiles_manifest)
    SplitManifest(strategy="block", seed=0, ratios=(0.5, 0.0, 0.5),
                  splits={name: [i for i, s in split.items() if s == name]
                          for name in ("train", "val", "test")}).save(paths.split)
    return PreparedDataset(paths.root)


def _chips(survey) -> dict:
    """Chip ``a`` of the survey and chip ``b`` 16 px east of it: b's west half is a's east
    half, pixel for pixel."""
    image, mask = survey
    return {"a": (image[:, :SIZE], mask[:, :SIZE], CRS, ORIGIN),
            "b": (image[:, SIZE // 2:], mask[:, SIZE // 2:], CRS,
                  ORIGIN @ Affine.translation(SIZE // 2, 0))}


@pytest.fixture(scope="module")
def overlapping(survey, tiny_dataset, tmp_path_factory) -> PreparedDataset:
    """All test, whole scenes, in this order: the chips ``a`` and ``b``, ``later`` (another
    date of a's footprint: other pixels, the same labels) and ``plain`` (a's pixels and
    labels without a CRS)."""
    image, mask = survey
    later, _ = _survey(np.random.default_rng(6), SIZE)
    scenes = {**_chips(survey), "later": (later, mask[:, :SIZE], CRS, ORIGIN),
              "plain": (image[:, :SIZE], mask[:, :SIZE], None, Affine.identity())}
    return _write_dataset(tmp_path_factory.mktemp("overlapping") / "dataset", tiny_dataset,
                          scenes, SIZE, {name: [(0, 0)] for name in scenes},
                          {f"{name}_0_0": "test" for name in scenes})


def _counts(dataset: PreparedDataset, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The known model's confusion matrix on these pixels, counted by hand."""
    stats = dataset.norm_stats
    predicted = np.where((image[..., 0] - stats.mean[0]) / stats.std[0] > 0, 2, 0)
    valid = mask != 255
    cm = np.zeros((3, 3), np.int64)
    np.add.at(cm, (mask[valid], predicted[valid]), 1)
    return cm


def test_repeated_ground_is_scored_once_and_another_date_in_full(overlapping, survey,
                                                                 tmp_path):
    model = save_known_model(tmp_path / "model")
    with pytest.warns(RepeatedGroundWarning,
                      match=r"^512 px of the test split's scenes repeat earlier scenes' ground "
                            r"with the same pixels and labels, left out where the tile step "
                            r"left out their tiles: 512 px scored once, with an earlier scene "
                            r"of this split, and 0 px another split's ground, not scored here "
                            r"\(512 px of b repeat a\)$"):
        result = evaluate_model(model, overlapping, tmp_path / "eval", batch_size=8,
                                overlay_tiles=0, log_to_mlflow=False)
    image, mask = survey
    with rasterio.open(overlapping.scenes_dir / "later_image.tif") as src:
        later = np.moveaxis(src.read(), 0, -1)
    union = _counts(overlapping, image, mask)  # a and b: the survey's 32 x 48 px once
    expected = (union + _counts(overlapping, later, mask[:, :SIZE])
                + _counts(overlapping, image[:, :SIZE], mask[:, :SIZE]))  # + later, plain
    assert result.confusion_matrix == expected.tolist()
    assert result.scene_count == 4 and result.pixel_count == expected.sum()
    # b's west half (the survey's ignored corner is in a's west half).
    assert result.repeated_pixels_skipped == SIZE * SIZE // 2
    assert result.repeated_pixels_scored_earlier == SIZE * SIZE // 2
    assert result.repeated_pixels_other_split == 0
    assert ("512 more repeat earlier scenes' ground with the same pixels and labels: 512 scored "
            "once, with an earlier scene of this split, 0 another split's ground, not scored "
            "here") in Path(result.report_md).read_text()
    # Tiles are scored each on its own: b's tile holds other ground than a's, both count.
    assert result.tile_pixel_count == 4 * SIZE * SIZE - 3 * 16


#: Which split a's west and east tiles are in; the survey columns the test split scores;
#: whether b's west half (a's east) is scored with a in the test split.
A_SPLITS = {"a's east test": (("train", "test"), np.r_[16:48], True),
            "a's east train": (("test", "train"), np.r_[0:16, 32:48], False),
            "a all train": (("train", "train"), np.r_[32:48], False)}


@pytest.mark.parametrize("case", list(A_SPLITS))
def test_repeated_ground_counts_where_the_tile_step_kept_it(case, survey, tiny_dataset,
                                                             tmp_path):
    """A block split of 16 px tiles: the tile step dropped b's west tiles as a's east tiles,
    so b's own tiles are all test and b is scored whole. b's west half is a's ground: scored
    with a when a's east is test, and not at all when it is train (train ground: scoring it
    in b would score pixels the model trained on), whether or not a has test tiles."""
    (west, east), columns, with_a = A_SPLITS[case]
    half = SIZE // 2
    a_tiles = [(col, row) for row in (0, half) for col in (0, half)]
    split = {f"a_{col}_{row}": east if col else west for col, row in a_tiles}
    split |= {f"b_{half}_{row}": "test" for row in (0, half)}
    dataset = _write_dataset(tmp_path / "dataset", tiny_dataset, _chips(survey), half,
                             {"a": a_tiles, "b": [(half, 0), (half, half)]}, split)
    model = save_known_model(tmp_path / "model", patch_size=half)
    other = "" if "test" in (west, east) else " (not in this split)"
    scored, elsewhere = (512, 0) if with_a else (0, 512)
    with pytest.warns(RepeatedGroundWarning,
                      match=rf": {scored} px scored once, with an earlier scene of this split, "
                            rf"and {elsewhere} px another split's ground, not scored here "
                            rf"\(512 px of b repeat a{re.escape(other)}\)$"):
        result = evaluate_model(model, dataset, tmp_path / "eval", batch_size=8,
                                overlay_tiles=0, log_to_mlflow=False)
    image, mask = survey
    assert result.confusion_matrix == _counts(dataset, image[:, columns],
                                              mask[:, columns]).tolist()
    assert result.repeated_pixels_skipped == SIZE * half
    assert (result.repeated_pixels_scored_earlier, result.repeated_pixels_other_split) == (
        scored, elsewhere)


def test_one_grid_needs_the_same_crs_pixel_size_and_whole_pixel_offsets():
    moved = ORIGIN @ Affine.translation(16, -3)
    assert grid_offset(CRS, ORIGIN, CRS, moved) == (-3, 16)
    assert grid_offset(CRS, ORIGIN, CRS, ORIGIN) == (0, 0)
    assert grid_offset(CRS, ORIGIN, "EPSG:32650", moved) is None
    assert grid_offset(None, Affine.identity(), None, Affine.identity()) is None
    assert grid_offset(CRS, ORIGIN, CRS, ORIGIN @ Affine.translation(0.5, 0)) is None
    assert grid_offset(CRS, ORIGIN, CRS, ORIGIN @ Affine.scale(2)) is None
    # Float noise of a transform composed with an offset is one grid.
    noisy = Affine(*(v + 1e-9 for v in tuple(moved)[:6]))
    assert grid_offset(CRS, ORIGIN, CRS, noisy) == (-3, 16)


def _grid(folder: Path, name: str, image: np.ndarray, mask: np.ndarray,
          transform: Affine) -> SceneGrid:
    image_path, mask_path = folder / f"{name}_image.tif", folder / f"{name}_mask.tif"
    _write(image_path, image, CRS, transform)
    _write(mask_path, mask, CRS, transform)
    return SceneGrid(name, image_path, mask_path, CRS, tuple(transform)[:6], SIZE, SIZE, 8)


def test_overlaps_are_compared_cell_by_cell_as_the_tile_step_compares_tiles(survey, tmp_path):
    """A label edited on one chip keeps its 8 px cell counted in both chips (the tile step
    keeps that tile); the rest of the overlap is the earlier chip's; another date of the
    same ground repeats nothing."""
    image, mask = survey
    east = ORIGIN @ Affine.translation(SIZE // 2, 0)
    edited = mask[:, SIZE // 2:].copy()
    edited[3, 5] = (edited[3, 5] + 1) % 3
    later, _ = _survey(np.random.default_rng(6), SIZE)
    scenes = [_grid(tmp_path, "a", image[:, :SIZE], mask[:, :SIZE], ORIGIN),
              _grid(tmp_path, "b", image[:, SIZE // 2:], edited, east),
              _grid(tmp_path, "later", later, mask[:, :SIZE], ORIGIN)]
    a, b, other = find_repeats(scenes)
    assert a == [] and other == []
    (repeat,) = b
    assert repeat.earlier == 0 and repeat.rect == (0, SIZE, 0, SIZE // 2)
    assert repeat.offset == (0, SIZE // 2)
    expected = np.ones((SIZE // 8, 2), bool)
    expected[0, 0] = False
    assert (repeat.same == expected).all()
    repeated = repeat.mask(0, 0, SIZE, SIZE)
    assert repeated.sum() == SIZE * SIZE // 2 - 64 and not repeated[:8, :8].any()
    assert not repeated[:, SIZE // 2:].any()


DEGREES = "EPSG:4326"


def test_one_grid_is_judged_in_pixels_whatever_the_crs_units():
    """In degrees a pixel is ~9e-6: 8.6e-6° and 9.4e-6° pixels at one origin are two grids,
    and a whole-pixel offset is one grid, for the scenes and the tile step alike."""
    fine = Affine(8.6e-6, 0, 80.5, 0, -8.6e-6, 6.9)
    coarse = Affine(9.4e-6, 0, 80.5, 0, -9.4e-6, 6.9)
    assert grid_offset(DEGREES, fine, DEGREES, coarse) is None
    assert footprint_key(DEGREES, fine) != footprint_key(DEGREES, coarse)
    moved = fine @ Affine.translation(3, -2)
    assert grid_offset(DEGREES, fine, DEGREES, moved) == (-2, 3)
    assert grid_offset(DEGREES, fine, DEGREES, fine @ Affine.translation(0.4, 0)) is None
    assert footprint_key(DEGREES, fine) != footprint_key(DEGREES, moved)
    # The same footprint composed another way (float noise) is one footprint.
    noisy = Affine(*(v * (1 + 1e-12) for v in tuple(moved)[:6]))
    assert grid_offset(DEGREES, fine, DEGREES, noisy) == (-2, 3)
    assert footprint_key(DEGREES, noisy) == footprint_key(DEGREES, moved)


def test_scenes_in_degrees_of_other_pixel_sizes_repeat_nothing(survey, tmp_path):
    image, mask = survey
    scenes = []
    for name, pixel in (("fine", 8.6e-6), ("coarse", 9.4e-6)):
        transform = Affine(pixel, 0, 80.5, 0, -pixel, 6.9)
        paths = tmp_path / f"{name}_image.tif", tmp_path / f"{name}_mask.tif"
        _write(paths[0], image[:, :SIZE], DEGREES, transform)
        _write(paths[1], mask[:, :SIZE], DEGREES, transform)
        scenes.append(SceneGrid(name, *paths, DEGREES, tuple(transform)[:6], SIZE, SIZE, 8))
    assert find_repeats(scenes) == [[], []]


def test_a_large_native_cell_is_compared_in_bounded_strips(tmp_path):
    """A downsampled scene's native cell (64 px tiles at 1/32: 2048 px, 4 bands) is read in
    strips of STRIP_VALUES values, never a whole cell at once nor copied again, and the
    verdicts are the whole cells' comparison: an edit in the last strip's last row counts."""
    import tracemalloc

    side, bands = 2048, 4
    rng = np.random.default_rng(0)
    survey = rng.integers(0, 255, (side, side + side // 2, bands), dtype=np.uint8)
    labels = rng.integers(0, 3, (side, side + side // 2), dtype=np.uint8)
    transforms = ORIGIN, ORIGIN @ Affine.translation(side // 2, 0)

    def grids(edit: tuple[int, int] | None) -> list[SceneGrid]:
        found = []
        for name, columns, transform in (("a", np.s_[:side], transforms[0]),
                                         ("b", np.s_[side // 2:], transforms[1])):
            image, mask = survey[:, columns], labels[:, columns].copy()
            if name == "b" and edit:
                mask[edit] = (mask[edit] + 1) % 3
            paths = tmp_path / f"{name}_image.tif", tmp_path / f"{name}_mask.tif"
            _write(paths[0], np.ascontiguousarray(image), CRS, transform)
            _write(paths[1], mask, CRS, transform)
            found.append(SceneGrid(name, *paths, CRS, tuple(transform)[:6], side, side, side))
        return found

    assert side * side // 2 * (bands + 1) > 2 * STRIP_VALUES  # the overlap needs strips
    for edit, same in ((None, True), ((side - 1, side // 2 - 1), False), ((900, 5), False),
                       ((0, side // 2), True)):  # outside the overlap: a's ground is the same
        scenes = grids(edit)
        tracemalloc.start()
        try:
            _, repeats = find_repeats(scenes)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert [bool(r.same.all()) for r in repeats] == ([True] if same else [])
        assert peak < 4 * STRIP_VALUES, peak  # two strips of uint8 and a comparison's flags


def test_scenes_that_cannot_hold_a_splits_earlier_ground_are_never_opened(survey, tiny_dataset,
                                                                          tmp_path):
    """Only earlier scenes are compared: a scene after the split's last one, or any scene
    when the split has none, is not opened (here it could not be: its image is not a
    raster)."""
    from components.register import RegisterOptions, serving_config
    from components.scene_evaluation import scene_confusion
    from components.train import load_trained_model
    from serving.predict import ScenePredictor, keras_predict_fn

    dataset = _write_dataset(tmp_path / "dataset", tiny_dataset, _chips(survey), SIZE,
                             {"a": [(0, 0)], "b": [(0, 0)]},
                             {"a_0_0": "test", "b_0_0": "train"})
    (dataset.scenes_dir / "b_image.tif").write_bytes(b"not a raster")
    model, info = load_trained_model(save_known_model(tmp_path / "model"))
    predictor = ScenePredictor(keras_predict_fn(model),
                               serving_config(info, dataset, RegisterOptions()))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RepeatedGroundWarning)  # a has no earlier scene
        test = scene_confusion(predictor, dataset, "test")
    image, mask = survey
    assert test.scene_count == 1 and test.repeated_pixels == 0
    assert test.confusion.tolist() == _counts(dataset, image[:, :SIZE], mask[:, :SIZE]).tolist()
    empty = scene_confusion(predictor, dataset, "val")
    assert empty.scene_count == 0 and not empty.confusion.any()


@pytest.mark.usefixtures("mlflow_store")
def test_the_register_step_says_the_repeated_ground_line_once(overlapping, tmp_path):
    """Evaluation says it; the champion gate's re-score of the champion on the same split
    (a champion from before the gate's tags) stays quiet, and scores the same pixels."""
    import mlflow

    from components.register import RegisterOptions, register_model
    from tests.logged_models import register_known_model

    model = save_known_model(tmp_path / "model")
    with pytest.warns(RepeatedGroundWarning) as said:
        evaluation = evaluate_model(model, overlapping, tmp_path / "eval", batch_size=8,
                                    overlay_tiles=0, log_to_mlflow=False)
    assert len([w for w in said if w.category is RepeatedGroundWarning]) == 1
    mlflow.set_experiment("register-repeats")
    register_known_model(model, overlapping, "repeats-once")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        registered = register_model(model, overlapping, evaluation, RegisterOptions(
            model_name="repeats-once", promote_below_trivial=True))
    assert "champion re-scored on this split" in registered.decision
    assert registered.champion_score == evaluation.metrics["miou"]
    assert not [w for w in caught if issubclass(w.category, RepeatedGroundWarning)]

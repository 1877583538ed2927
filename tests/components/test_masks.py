"""Masks as published datasets store them: indexed PNGs whose colour table differs per file,
RGB and indexed mixed, VOC's border index, RGBA, and options that do not fit the labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from PIL import Image

from components.ingest import ingest_source
from components.ingest_options import IngestOptions
from components.raster import DataError
from components.survey import IngestWarning

COLOURS = [(0, 0, 0), (0, 128, 0), (0, 0, 255), (255, 255, 0)]  # background, tree, water, road


def class_ids(size: int = 32, seed: int = 0) -> np.ndarray:
    """Blocks of all four classes, different per seed."""
    rng = np.random.default_rng(seed)
    blocks = np.arange(16).reshape(4, 4) % 4
    rng.shuffle(blocks.ravel())
    return np.kron(blocks, np.ones((size // 4, size // 4), int)).astype(np.uint8)


def save_indexed(path: Path, ids: np.ndarray, order: list[int], extra: dict | None = None,
                 transparency: int | None = None) -> None:
    """An indexed PNG whose table puts class k at index order[k] (a per-file permutation)."""
    index = np.asarray(order, np.uint8)[ids]
    table = [0] * 768
    for k, i in enumerate(order):
        table[3 * i: 3 * i + 3] = COLOURS[k]
    for i, colour in (extra or {}).items():
        table[3 * i: 3 * i + 3] = colour
    image = Image.fromarray(index, mode="P")
    image.putpalette(table)
    path.parent.mkdir(parents=True, exist_ok=True)
    if transparency is None:
        image.save(path)
    else:
        image.save(path, transparency=transparency)


def save_photo(path: Path, seed: int, size: int = 32) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (size, size, 3)).astype(np.uint8)).save(path)


def ingested_ids(out: Path, scene: str) -> np.ndarray:
    with rasterio.open(out / "scenes" / f"{scene}_mask.tif") as src:
        return src.read(1)


def colour_ids(classes) -> dict[tuple[int, int, int], int]:
    return {tuple(int(v) for v in c): i for i, c in enumerate(classes.palette())}


def test_indexed_masks_whose_table_permutes_classes_per_file_read_as_colours(tmp_path):
    src = tmp_path / "src"
    orders = [[0, 1, 2, 3], [3, 2, 1, 0], [2, 0, 3, 1]]
    for i, order in enumerate(orders):
        save_photo(src / "images" / f"p{i}.png", i)
        save_indexed(src / "masks" / f"p{i}.png", class_ids(seed=i), order)
    classes = ingest_source(src, tmp_path / "out")
    assert classes.num_classes == 4  # four colours, not four index values per file
    to_id = colour_ids(classes)
    for i in range(len(orders)):
        expected = np.vectorize(lambda k: to_id[COLOURS[k]])(class_ids(seed=i))
        np.testing.assert_array_equal(ingested_ids(tmp_path / "out", f"p{i}"), expected)


def test_mixed_rgb_and_indexed_masks_share_one_palette(tmp_path):
    src = tmp_path / "src"
    save_photo(src / "images" / "rgb.png", 0)
    (src / "masks").mkdir(parents=True)
    Image.fromarray(np.asarray(COLOURS, np.uint8)[class_ids(seed=0)]).save(
        src / "masks" / "rgb.png")
    save_photo(src / "images" / "indexed.png", 1)
    save_indexed(src / "masks" / "indexed.png", class_ids(seed=1), [2, 3, 0, 1])
    classes = ingest_source(src, tmp_path / "out")
    to_id = colour_ids(classes)
    assert classes.num_classes == 4
    for scene, seed in (("rgb", 0), ("indexed", 1)):
        expected = np.vectorize(lambda k: to_id[COLOURS[k]])(class_ids(seed=seed))
        np.testing.assert_array_equal(ingested_ids(tmp_path / "out", scene), expected)


def test_voc_border_index_and_transparent_table_entries_are_ignored(tmp_path):
    src = tmp_path / "src"
    ids = class_ids(seed=0)
    border = np.zeros_like(ids, bool)
    border[:, 15:17] = True  # VOC draws a 255 border between objects
    save_photo(src / "JPEGImages" / "2007_000032.jpg", 0)
    index = np.asarray([0, 1, 2, 3], np.uint8)[ids]
    index[border] = 255
    table = [v for c in COLOURS for v in c] + [0] * (768 - 12)
    table[765:768] = [224, 224, 192]
    image = Image.fromarray(index, mode="P")
    image.putpalette(table)
    (src / "SegmentationClass").mkdir(parents=True)
    image.save(src / "SegmentationClass" / "2007_000032.png")
    save_photo(src / "JPEGImages" / "2007_000033.jpg", 1)  # no mask: detection-only image
    with pytest.warns(IngestWarning, match="1 file without a partner was skipped"):
        classes = ingest_source(src, tmp_path / "out", IngestOptions(
            image_dir="JPEGImages", mask_dir="SegmentationClass"))
    assert classes.num_classes == 4 and "#E0E0C0" not in {c.color for c in classes.classes}
    mask = ingested_ids(tmp_path / "out", "2007_000032")
    assert (mask[border] == 255).all() and (mask[~border] != 255).all()


def test_rgba_mask_drops_alpha_with_a_warning_and_ignores_transparent_pixels(tmp_path):
    src = tmp_path / "src"
    ids = class_ids(seed=0)
    rgba = np.concatenate([np.asarray(COLOURS, np.uint8)[ids],
                           np.full((32, 32, 1), 255, np.uint8)], axis=2)
    rgba[:8, :, 3] = 0  # fully transparent: no label
    rgba[8:16, :, 3] = 128  # half transparent: still its colour
    save_photo(src / "images" / "a.png", 0)
    (src / "masks").mkdir(parents=True)
    Image.fromarray(rgba, mode="RGBA").save(src / "masks" / "a.png")
    with pytest.warns(IngestWarning, match="alpha band .*a.png.*alpha is dropped and fully "
                      "transparent pixels are ignored"):
        classes = ingest_source(src, tmp_path / "out")
    mask = ingested_ids(tmp_path / "out", "a")
    assert (mask[:8] == 255).all() and (mask[8:] != 255).all()
    assert classes.num_classes == 4


def test_color_table_ids_reads_indexes_as_class_ids(tmp_path):
    src = tmp_path / "src"
    save_photo(src / "images" / "a.png", 0)
    save_indexed(src / "masks" / "a.png", class_ids(seed=0), [0, 1, 2, 3])
    classes = ingest_source(src, tmp_path / "out", IngestOptions(color_table="ids",
                                                                   ignore_values=[3]))
    assert classes.names == ["background", "class_1", "class_2"]
    np.testing.assert_array_equal(ingested_ids(tmp_path / "out", "a"),
                                  np.where(class_ids(seed=0) == 3, 255, class_ids(seed=0)))


@pytest.mark.parametrize(("option", "value", "kind"), [
    ("ignore_values", [0], "colour masks"),
    ("class_names", ["a", "b", "c", "d"], "colour masks"),
    ("class_values", {0: 0}, "colour masks"),
    ("ignore_colors", ["#000000"], "class-id masks"),
    ("class_attribute", "landuse", "colour masks"),
])
def test_an_option_that_does_not_fit_the_labels_is_an_error_naming_it(tmp_path, option, value,
                                                                       kind):
    src = tmp_path / "src"
    save_photo(src / "images" / "a.png", 0)
    if kind == "colour masks":
        save_indexed(src / "masks" / "a.png", class_ids(seed=0), [0, 1, 2, 3])
    else:
        (src / "masks").mkdir(parents=True)
        Image.fromarray(class_ids(seed=0)).save(src / "masks" / "a.png")
    with pytest.raises(DataError, match=f"option {option} does not apply: the labels are "
                       f"{kind}.*a.png"):
        ingest_source(src, tmp_path / "out", IngestOptions(**{option: value}))


def test_a_colour_on_a_negligible_share_of_pixels_far_from_every_class_is_an_error(tmp_path):
    src = tmp_path / "src"
    for i in range(2):
        save_photo(src / "images" / f"p{i}.png", i, size=128)
        rgb = np.asarray(COLOURS, np.uint8)[np.kron(class_ids(seed=i), np.ones((4, 4), int))]
        if i == 1:
            rgb[5, 7] = (128, 64, 128)  # one stray pixel among 32768, 128 from every class
        (src / "masks").mkdir(parents=True, exist_ok=True)
        Image.fromarray(rgb).save(src / "masks" / f"p{i}.png")
    with pytest.raises(DataError) as err:
        ingest_source(src, tmp_path / "out")
    message = str(err.value)
    assert ("1 mask colour covers less than 0.0100% of the labelled pixels, too few to be a "
            "class, and not within color_tolerance (40) of exactly one colour that is one: "
            "colour #804080: 1 pixel in ") in message and "p1.png, 128 from #" in message
    assert "ignore_colors" in message and "[" not in message
    assert "raise color_tolerance" not in message  # 128 off is no slightly-off colour
    classes = ingest_source(src, tmp_path / "out", IngestOptions(ignore_colors=["#804080"]))
    assert classes.num_classes == 4
    assert ingested_ids(tmp_path / "out", "p1")[5, 7] == 255


def test_grey_and_grey_table_masks_mixed_point_to_color_table_ids(tmp_path):
    """One tool saved some class-id masks with a grey colour table (PNG mode P): the error
    says the option that reads them all as class ids, which does."""
    src = tmp_path / "src"
    for i in range(2):
        save_photo(src / "images" / f"p{i}.png", i)
    (src / "masks").mkdir(parents=True)
    Image.fromarray(class_ids(seed=0)).save(src / "masks" / "p0.png")
    grey = Image.fromarray(class_ids(seed=1), mode="P")
    grey.putpalette([v for i in range(256) for v in (i, i, i)])
    grey.save(src / "masks" / "p1.png")
    with pytest.raises(DataError, match=r"one dataset needs one label kind; if the colour "
                       r"tables \(e.g. of .*p1\.png\) only decorate class ids, read them as "
                       r"ids with ingest.color_table: ids \(--color-table ids\)"):
        ingest_source(src, tmp_path / "out")
    classes = ingest_source(src, tmp_path / "out", IngestOptions(color_table="ids"))
    assert classes.names == ["background", "class_1", "class_2", "class_3"]
    np.testing.assert_array_equal(ingested_ids(tmp_path / "out", "p1"), class_ids(seed=1))

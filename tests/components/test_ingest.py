"""Ingest: every accepted layout and label kind -> standardized scenes + classes.json."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
from PIL import Image
from rasterio.transform import Affine

from components.artifacts import ClassMap
from components.ingest import ingest_source
from components.ingest_options import IngestOptions, PaletteEntry
from components.raster import DataError, write_array
from components.survey import IngestWarning
from tests.components.conftest import UTM, make_image, make_labels, write_pair


def read_mask(out: Path, scene: str) -> np.ndarray:
    with rasterio.open(out / "scenes" / f"{scene}_mask.tif") as src:
        return src.read(1)


def test_suffix_pairs_keep_georeference_dtype_and_nodata(tmp_path):
    image = make_image(32, dtype="float32")
    image[:, :4, :] = -9999.0
    image[0, 10, 10] = np.nan
    src_img, _ = write_pair(tmp_path / "src", "a", image, make_labels(32, (0, 255)),
                            nodata=-9999.0)
    out = tmp_path / "out"
    classes = ingest_source(str(tmp_path / "src"), out, IngestOptions())
    assert classes.names == ["background", "class_255"]
    with rasterio.open(src_img) as a, rasterio.open(out / "scenes" / "a_image.tif") as b:
        assert b.crs == a.crs and b.transform == a.transform
        assert b.dtypes == a.dtypes and b.nodata == -9999.0 and b.count == 4
        np.testing.assert_array_equal(b.read(), a.read())
    mask = read_mask(out, "a")
    assert (mask[:4] == 255).all() and mask[10, 10] == 255  # nodata rows and the NaN pixel
    assert set(np.unique(mask[4:])) <= {0, 1, 255} and (mask[4:, :10] == 0).all()
    assert ClassMap.load(out / "classes.json") == classes


def test_images_labels_folders_at_depth_with_value_mapping_and_name_collisions(tmp_path):
    for region in ("north", "south"):
        for sub in ("images", "gt"):
            data = make_image(32) if sub == "images" else make_labels(32, (0, 255))
            (tmp_path / "src" / region / sub).mkdir(parents=True)
            write_array(tmp_path / "src" / region / sub / "tile1.tif", data, UTM,
                        rasterio.transform.from_origin(0, 0, 1, 1))
    out = tmp_path / "out"
    options = IngestOptions(class_values={0: 0, 255: 1}, class_names=["bg", "tea"])
    classes = ingest_source(tmp_path / "src", out, options)
    assert classes.names == ["bg", "tea"]
    names = sorted(p.name for p in (out / "scenes").iterdir())
    assert names == ["north__tile1_image.tif", "north__tile1_mask.tif",
                     "south__tile1_image.tif", "south__tile1_mask.tif"]
    assert set(np.unique(read_mask(out, "north__tile1"))) == {0, 1}


def test_unknown_mask_value_with_explicit_mapping_names_file_and_value(tmp_path):
    write_pair(tmp_path / "src", "a", make_image(), make_labels(32, (0, 7)))
    with pytest.raises(DataError, match=r"value 7: 512 pixels in .*a_mask\.tif"):
        ingest_source(tmp_path / "src", tmp_path / "out",
                      IngestOptions(class_values={0: 0, 1: 1}))


def _rgb_mask(ids: np.ndarray, colors: list[tuple[int, int, int]]) -> np.ndarray:
    return np.moveaxis(np.asarray(colors, np.uint8)[ids], -1, 0)


def test_rgb_palette_from_classes_json_and_ignore_color(tmp_path):
    src = tmp_path / "src"
    ids = make_labels(32, (0, 1, 2))
    write_pair(src, "a", make_image(), _rgb_mask(ids, [(226, 169, 41), (0, 0, 255), (0, 0, 0)]))
    (src / "classes.json").write_text(json.dumps({"classes": [
        {"title": "Water", "color": "#E2A929"}, {"title": "Road", "color": "#0000FF"}]}))
    classes = ingest_source(src, tmp_path / "out",
                            IngestOptions(palette="classes.json", ignore_colors=["#000000"]))
    assert classes.names == ["Water", "Road"]
    np.testing.assert_array_equal(np.unique(read_mask(tmp_path / "out", "a")), [0, 1, 255])


def test_strict_palette_names_each_far_colour_with_pixels_and_files(tmp_path):
    src = tmp_path / "src"
    ids = make_labels(32, (0, 1))
    write_pair(src, "a", make_image(), _rgb_mask(ids, [(10, 20, 30), (1, 2, 200)]))
    write_pair(src, "b", make_image(), _rgb_mask(make_labels(32, (0, 1, 1, 2)),
                                                 [(10, 20, 30), (1, 2, 200), (99, 9, 9)]))
    palette = [PaletteEntry(name="x", color="#0A141E")]
    with pytest.raises(DataError) as err:
        ingest_source(src, tmp_path / "out", IngestOptions(palette=palette))
    message = str(err.value)
    assert message.startswith("2 mask colours are not in the palette and not within "
                              "color_tolerance (40)")
    assert re.search(r"colour #0102C8: 1,024 pixels in .*a_mask\.tif and 1 more file, 170 "
                     r"from #0A141E \(x\)", message)
    assert re.search(r"colour #630909: 256 pixels in .*b_mask\.tif, 89 from #0A141E", message)
    assert message.endswith("with ignore_colors")  # 170 off: no tolerance to suggest
    assert "[" not in message  # console markup would eat bracketed text
    assert not (tmp_path / "out").exists()


def test_auto_palette_names_matching_colours_from_a_disagreeing_classes_json(tmp_path):
    src = tmp_path / "src"
    ids = make_labels(32, (0, 1, 2))
    write_pair(src, "a", make_image(), _rgb_mask(ids, [(0, 255, 0), (9, 9, 9), (255, 0, 0)]))
    (src / "classes.json").write_text(json.dumps({"classes": [
        {"title": "Red", "color": "#FF0000"}, {"title": "Absent", "color": "#123456"},
        {"title": "Green", "color": "#00FF00"}]}))
    classes = ingest_source(src, tmp_path / "out", IngestOptions(palette="auto"))
    assert classes.names == ["Red", "Green", "class_090909"]
    mask = read_mask(tmp_path / "out", "a")
    assert mask[0, 0] == 1 and mask[0, 31] == 0 and mask[0, 16] == 2


def test_jpeg_colour_masks_snap_to_nearest_palette_colour(tmp_path):
    src = tmp_path / "src" / "images"
    src.mkdir(parents=True)
    (tmp_path / "src" / "masks").mkdir()
    ids = make_labels(64, (0, 1))
    rgb = np.moveaxis(_rgb_mask(ids, [(200, 30, 30), (30, 30, 200)]), 0, -1)
    Image.fromarray(rgb).save(tmp_path / "src" / "masks" / "p.jpg", quality=70)
    Image.fromarray(np.zeros((64, 64, 3), np.uint8) + 90).save(src / "p.png")
    palette = [PaletteEntry(name="red", color="#C81E1E"), PaletteEntry(name="blue",
                                                                       color="#1E1EC8")]
    ingest_source(tmp_path / "src", tmp_path / "out", IngestOptions(palette=palette))
    mask = read_mask(tmp_path / "out", "p")
    assert (mask[:, :28] == 0).all() and (mask[:, 36:] == 1).all()
    with rasterio.open(tmp_path / "out" / "scenes" / "p_image.tif") as out_img:
        assert out_img.crs is None and out_img.transform == rasterio.Affine.identity()


CITY_COLORS = [(128, 64, 128), (244, 35, 232), (70, 70, 70), (107, 142, 35), (70, 130, 180),
               (220, 20, 60)]


def test_side_by_side_jpeg_pairs_with_auto_palette_named_from_classes_json(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    rng = np.random.default_rng(0)
    truth = []
    for i in range(2):
        ids = np.zeros((128, 128), int)
        for k in range(1, 6):  # small rectangles: JPEG smears their colours the most
            for _ in range(4):
                x, y = rng.integers(0, 110, 2)
                w, h = rng.integers(6, 20, 2)
                ids[y:y + h, x:x + w] = k
        truth.append(ids)
        colour = np.asarray(CITY_COLORS, np.uint8)[ids]
        photo = rng.integers(0, 255, (128, 128, 3)).astype(np.uint8)
        Image.fromarray(np.concatenate([photo, colour], axis=1)).save(src / f"{i}.jpg",
                                                                      quality=75)
    (src / "classes.json").write_text(json.dumps({"classes": [
        {"title": "road", "color": "#804080"}, {"title": "sky", "color": "#4682B4"},
        {"title": "unused", "color": "#00FF00"}]}))
    classes = ingest_source(src, tmp_path / "out", IngestOptions())
    assert classes.num_classes == 6 and classes.names[:2] == ["road", "sky"]
    palette = classes.palette().astype(int)
    to_id = np.array([np.abs(palette - c).max(axis=1).argmin() for c in CITY_COLORS])
    for i, ids in enumerate(truth):
        mask = read_mask(tmp_path / "out", str(i))
        assert mask.shape == (128, 128)
        assert (mask == to_id[ids]).mean() > 0.9 and (mask == 255).mean() < 0.05


def test_labelme_polygons_are_rasterized(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(src / "shot.png")
    (src / "shot.json").write_text(json.dumps({
        "imageWidth": 40, "imageHeight": 40, "imagePath": "shot.png", "shapes": [
            {"label": "house", "shape_type": "polygon",
             "points": [[10, 10], [30, 10], [30, 30], [10, 30]]},
            {"label": "tree", "shape_type": "rectangle", "points": [[0, 0], [5, 5]]}]}))
    classes = ingest_source(src, tmp_path / "out", IngestOptions())
    assert classes.names == ["background", "house", "tree"]
    mask = read_mask(tmp_path / "out", "shot")
    assert mask[20, 20] == 1 and mask[2, 2] == 2 and mask[35, 35] == 0


@pytest.mark.parametrize("problem", ["size", "bands", "unreadable", "empty", "unknown"])
def test_bad_input_names_file_and_problem(tmp_path, problem):
    src = tmp_path / "src"
    write_pair(src, "a", make_image(), make_labels())
    expected = {
        "size": r"b_mask\.tif: mask is 16x16 but image .*b_image\.tif is 32x32",
        "bands": r"b_image\.tif: 3 bands, but .*a_image\.tif has 4",
        "unreadable": r"b_image\.tif: cannot read as a raster",
        "empty": r"source is empty",
        "unknown": r"unknown format: no image/label pairs",
    }[problem]
    if problem == "size":  # without georeferencing: a label georeferenced may be smaller
        write_pair(src, "b", make_image(), make_labels(16), crs=None)
    elif problem == "bands":
        write_pair(src, "b", make_image(bands=3), make_labels())
    elif problem == "unreadable":
        write_pair(src, "b", make_image(), make_labels())
        (src / "b_image.tif").write_bytes(b"not a tiff")
    elif problem == "empty":
        src = tmp_path / "nothing"
        src.mkdir()
    else:
        src = tmp_path / "notes"
        src.mkdir()
        (src / "readme.txt").write_text("hello")
    out = tmp_path / "out"
    with pytest.raises(DataError, match=expected):
        ingest_source(src, out, IngestOptions())
    assert not (out / "classes.json").exists()


def test_classes_json_without_values_names_id_masks_in_order(binary_source, tmp_path):
    (binary_source / "classes.json").write_text(json.dumps(
        [{"title": "background", "color": "#000000"}, {"title": "tea", "color": "#00FF00"}]))
    classes = ingest_source(binary_source, tmp_path / "out")
    assert classes.names == ["background", "tea"] and classes.classes[1].color == "#00FF00"


def test_palette_classes_json_without_one_is_an_error_for_id_masks_too(binary_source, tmp_path):
    """A config asking for names from classes.json must not get class_0, class_1 silently
    when the source has none (colour masks already failed; class-id masks did not)."""
    with pytest.raises(DataError, match="palette 'classes.json' but no classes.json"):
        ingest_source(binary_source, tmp_path / "out", IngestOptions(palette="classes.json"))
    assert not (tmp_path / "out" / "classes.json").exists()


def test_palette_from_a_json_file_path(tmp_path):
    ids = make_labels(32, (0, 1))
    write_pair(tmp_path / "src", "a", make_image(), _rgb_mask(ids, [(0, 0, 0), (255, 255, 0)]))
    palette_file = tmp_path / "palette.json"
    palette_file.write_text(json.dumps([{"name": "ground", "color": "#000000"},
                                        {"name": "crop", "color": [255, 255, 0]}]))
    classes = ingest_source(tmp_path / "src", tmp_path / "out",
                            IngestOptions(palette=str(palette_file)))
    assert classes.names == ["ground", "crop"] and classes.classes[1].color == "#FFFF00"
    assert read_mask(tmp_path / "out", "a")[0, 31] == 1


def test_a_folder_and_an_archive_of_it_give_the_same_dataset_digest(binary_source, tmp_path):
    """An archive of the folder holds it as its one top-level folder: scenes' paths are
    recorded relative to that folder, so the same data tiled the same way has the same
    digest (and the messages still name the archive's member)."""
    import shutil

    from components.artifacts import SceneIndex
    from components.dataset_paths import PreparedDataset
    from components.tile import TileOptions, tile_scenes

    archive = shutil.make_archive(str(tmp_path / "binary"), "zip", tmp_path, "binary")
    digests = []
    for name, source in (("folder", binary_source), ("zip", archive)):
        out = tmp_path / name
        ingest_source(str(source), out, IngestOptions())
        tile_scenes(out, out, TileOptions(patch_size=32))
        digests.append(PreparedDataset(out).digest())
    assert digests[0] == digests[1]
    folder, zipped = (SceneIndex.load(tmp_path / n / "scenes.json") for n in ("folder", "zip"))
    assert folder.data_root == "." and zipped.data_root == "binary"
    assert {s.source for s in zipped.scenes} == {f"images/chip{i}.tif" for i in range(4)}


@pytest.mark.parametrize("place", ["crs", "shift", "subpixel", "plain_png_label"])
def test_a_label_on_another_grid_than_its_image_is_refused_before_tiling(tmp_path, place):
    """A raster label of another projection or place would be burnt in pixel for pixel;
    within half a pixel, or without georeferencing (a PNG mask), it is matched by shape."""
    src = tmp_path / "src"
    write_pair(src, "a", make_image(), make_labels())
    image, mask = write_pair(src, "b", make_image(seed=1), make_labels())
    grid = rasterio.transform.from_origin(600000.0, 3000000.0, 2.0, 2.0)
    if place == "crs":
        write_array(mask, make_labels(), "EPSG:32651", grid)
    elif place == "shift":
        write_array(mask, make_labels(), UTM, grid * Affine.translation(2500, 0))
    elif place == "subpixel":
        write_array(mask, make_labels(), UTM, grid * Affine.translation(0.4, -0.4))
    else:
        mask.unlink()
        Image.fromarray(make_labels()).save(src / "b_mask.png")
    out = tmp_path / "out"
    if place in ("subpixel", "plain_png_label"):
        assert ingest_source(src, out, IngestOptions()).names == ["background", "class_255"]
        return
    expected = {
        "crs": rf"^{re.escape(str(mask))}: CRS EPSG:32651 differs from its image "
               rf"{re.escape(str(image))}'s EPSG:32650; reproject",
        "shift": rf"^{re.escape(str(mask))}: lies elsewhere than its image "
                 rf"{re.escape(str(image))}: its bounds are offset by x \+5000, y \+0 metre",
    }[place]
    with pytest.raises(DataError, match=expected):
        ingest_source(src, out, IngestOptions())
    assert not (out / "classes.json").exists()


def test_a_stray_mask_value_is_warned_about_with_its_pixels_and_file(tmp_path):
    src = tmp_path / "src"
    for name in "abcd":
        write_pair(src, name, make_image(), make_labels(values=(0, 1)))
    stray = make_labels(values=(0, 1))
    stray[:2, :2] = 7  # 4 of 5,120 labelled pixels (0.08%), in one file of five
    write_pair(src, "e", make_image(), stray)
    with pytest.warns(IngestWarning) as caught:
        classes = ingest_source(src, tmp_path / "out", IngestOptions())
    assert classes.names == ["background", "class_1", "class_7"]  # still a class, but said
    (message,) = [str(w.message) for w in caught if "stray" in str(w.message)]
    assert re.search(r"^1 mask value is so rare .*: value 7: 4 pixels \(0\.078% of the "
                     r"labelled pixels\) in .*e_mask\.tif\. If stray, ignore with "
                     r"ingest\.ignore_values: \[7\]", message), message
    # ignored, or a value spread over the files, is no stray
    with warnings.catch_warnings():
        warnings.simplefilter("error", IngestWarning)
        ingest_source(src, tmp_path / "ignored", IngestOptions(ignore_values=[7]))
        for name in "abcd":
            write_pair(src, name, make_image(), stray)
        ingest_source(src, tmp_path / "spread", IngestOptions())


def test_an_all_nodata_image_and_a_1x1_chip_are_named_not_dropped_silently(tmp_path):
    src = tmp_path / "src"
    write_pair(src, "a", make_image(), make_labels())
    empty = np.full((4, 32, 32), 0, "uint16")
    write_pair(src, "b", empty, make_labels(), nodata=0)
    write_pair(src, "c", make_image(1), make_labels(1))
    out = tmp_path / "out"
    with pytest.warns(IngestWarning) as caught:
        ingest_source(src, out, IngestOptions())
    messages = [str(w.message) for w in caught]
    assert any(re.search(r"^1 image has no valid pixel \(all nodata\), so no tile: "
                         r".*b_image\.tif$", m) for m in messages), messages
    assert any(re.search(r"^1 scene is smaller than 8 px on a side and skipped .*: "
                         r".*c_image\.tif$", m) for m in messages), messages
    assert sorted(p.name for p in (out / "scenes").glob("*_image.tif")) == [
        "a_image.tif", "b_image.tif"]
    (src / "a_image.tif").unlink()
    (src / "b_image.tif").unlink()
    with pytest.raises(DataError, match=r"every scene is smaller than 8 px on a side, e\.g\. "
                                        r".*c_image\.tif"):
        ingest_source(src, tmp_path / "tiny", IngestOptions())

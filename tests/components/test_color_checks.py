"""Colour masks slightly off their palette, as published datasets ship them (ISPRS labels
with compression's off-colours, DeepGlobe masks to binarize at 128): read as the nearest
palette colour within color_tolerance in every mask format, counted; colours too far named
in a short error; near-identical colours that become two classes, and palette colours that
ignore_colors takes out."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
from PIL import Image

from components.ingest import ingest_source
from components.ingest_options import IngestOptions, PaletteEntry
from components.raster import DataError
from components.survey import IngestWarning

ISPRS = [(255, 255, 255), (0, 0, 255), (0, 255, 255), (0, 255, 0)]
PALETTE = [PaletteEntry(name=n, color="#{:02X}{:02X}{:02X}".format(*c))
           for n, c in zip(["impervious", "building", "low_vegetation", "tree"], ISPRS,
                           strict=True)]


def class_ids(size: int = 32, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    blocks = np.arange(16).reshape(4, 4) % 4
    rng.shuffle(blocks.ravel())
    return np.kron(blocks, np.ones((size // 4, size // 4), int)).astype(np.uint8)


def off_colours(ids: np.ndarray, colours, most: int, share: float, seed: int = 0) -> np.ndarray:
    """(H, W, 3) colours of ``ids`` with ``share`` of the pixels off by 1..``most`` per
    channel, towards the middle of the range (as compression leaves them)."""
    rng = np.random.default_rng(seed)
    rgb = np.asarray(colours, np.int64)[ids]
    off = rng.random(ids.shape) < share
    shift = rng.integers(1, most + 1, (*ids.shape, 3))
    moved = np.where(rgb > 127, rgb - shift, rgb + shift)
    return np.where(off[..., None], moved, rgb).astype(np.uint8)


def save_mask(path: Path, rgb: np.ndarray, kind: str) -> None:
    """RGB as a PNG, an RGB GeoTIFF, or an indexed PNG whose table holds every colour."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "tif":
        with rasterio.open(path, "w", driver="GTiff", width=rgb.shape[1], height=rgb.shape[0],
                           count=3, dtype="uint8") as dst:
            dst.write(np.moveaxis(rgb, -1, 0))
    elif kind == "png":
        Image.fromarray(rgb).save(path)
    else:
        table, index = np.unique(rgb.reshape(-1, 3), axis=0, return_inverse=True)
        assert len(table) <= 256
        image = Image.fromarray(index.reshape(rgb.shape[:2]).astype(np.uint8), mode="P")
        image.putpalette(table.astype(np.uint8).ravel().tolist())
        image.save(path)


def source(tmp_path: Path, masks: list[np.ndarray], kind: str = "png") -> Path:
    """images/p<i>.png beside masks/p<i>.png (or .tif), one per mask."""
    src = tmp_path / "src"
    (src / "images").mkdir(parents=True, exist_ok=True)
    for i, rgb in enumerate(masks):
        Image.fromarray(np.full((*rgb.shape[:2], 3), 90 + i, np.uint8)).save(
            src / "images" / f"p{i}.png")
        save_mask(src / "masks" / f"p{i}.{'tif' if kind == 'tif' else 'png'}", rgb, kind)
    return src


def ingested(out: Path, scene: str) -> np.ndarray:
    with rasterio.open(out / "scenes" / f"{scene}_mask.tif") as src:
        return src.read(1)


def ingest_warnings(src: Path, out: Path, options: IngestOptions):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        classes = ingest_source(src, out, options)
    return classes, [str(w.message) for w in caught if w.category is IngestWarning]


@pytest.mark.parametrize("kind", ["png", "tif", "indexed"])
def test_off_palette_colours_within_the_tolerance_read_as_the_nearest_in_every_format(
        tmp_path, kind):
    ids = class_ids(seed=1)
    rgb = off_colours(ids, ISPRS, most=6, share=0.1)
    off = (rgb != np.asarray(ISPRS, np.uint8)[ids]).any(axis=2)
    colours = len(np.unique(rgb[off].reshape(-1, 3), axis=0))
    src = source(tmp_path, [rgb], kind)
    # each off-colour is a few of 1,024 pixels: min_color_share above that reads them as noise
    classes, said = ingest_warnings(src, tmp_path / "out", IngestOptions(
        palette=PALETTE, min_color_share=0.01))
    assert classes.names == ["impervious", "building", "low_vegetation", "tree"]
    np.testing.assert_array_equal(ingested(tmp_path / "out", "p0"), ids)
    snapped = [m for m in said if "off the palette" in m]
    assert len(snapped) == 1
    assert snapped[0].startswith(f"labels: {colours} colours off the palette, at most 6 from a "
                                 "palette colour on a channel (color_tolerance 40), are read "
                                 f"as the nearest one: {off.sum()} pixels")
    assert f"p0.{'tif' if kind == 'tif' else 'png'}" in snapped[0]
    assert " as #00FFFF (low_vegetation) (" in snapped[0] or " as #FFFFFF (impervious) (" in \
        snapped[0]


def test_colours_further_than_the_tolerance_are_a_short_error_that_says_what_reads_them(
        tmp_path):
    """Hundreds of colours off: five shown, with pixels, file and nearest colour, then a
    count; the advice names the tolerance that reads them all, which then does."""
    ids = class_ids(size=64, seed=2)
    src = source(tmp_path, [off_colours(ids, ISPRS, most=6, share=0.5, seed=s)
                            for s in range(2)])
    with pytest.raises(DataError) as err:
        ingest_source(src, tmp_path / "out", IngestOptions(palette=PALETTE, color_tolerance=3,
                                                           min_color_share=0.01))
    message = str(err.value)
    assert len(message) < 1500 and message.count("colour #") == 5
    assert " mask colours are not in the palette and not within color_tolerance (3) of " \
        "exactly one of its colours" in message
    assert re.search(r"one of its colours \(by the largest channel difference\): colour "
                     r"#[0-9A-F]{6}: \d+ pixels in \S+p\d\.png", message)
    assert ", 6 from #" in message or ", 5 from #" in message or ", 4 from #" in message
    assert " more colours (" in message and "[" not in message
    assert message.endswith("or raise color_tolerance to 6 to read each of the nearer ones "
                            "as its palette colour")
    assert not (tmp_path / "out").exists()
    with pytest.warns(IngestWarning, match=r"colours off the palette, at most 6 "):
        ingest_source(src, tmp_path / "out", IngestOptions(palette=PALETTE, color_tolerance=6,
                                                           min_color_share=0.01))
    np.testing.assert_array_equal(ingested(tmp_path / "out", "p1"), ids)


def test_a_colour_of_a_class_the_palette_lacks_is_an_error_without_tolerance_advice(tmp_path):
    ids = class_ids(seed=3)
    rgb = np.asarray(ISPRS, np.uint8)[ids]
    rgb[ids == 3] = (128, 0, 128)  # a fifth class, 127+ from every palette colour
    src = source(tmp_path, [rgb])
    with pytest.raises(DataError, match=r"1 mask colour is not in the palette .*: colour "
                       r"#800080: 256 pixels in .*p0\.png, 128 from #.*ignore_colors$"):
        ingest_source(src, tmp_path / "out", IngestOptions(palette=PALETTE))


def test_color_tolerance_0_reads_exact_colours_only(tmp_path):
    src = source(tmp_path, [off_colours(class_ids(), ISPRS, most=1, share=0.01)])
    with pytest.raises(DataError, match=r"not within color_tolerance \(0\).*raise "
                       "color_tolerance to 1 "):
        ingest_source(src, tmp_path / "out", IngestOptions(palette=PALETTE, color_tolerance=0))


DEEPGLOBE = [("urban_land", (0, 255, 255)), ("rangeland", (255, 0, 255)),
             ("water", (0, 0, 255)), ("unknown", (0, 0, 0))]


def test_a_palette_colour_in_ignore_colors_is_no_class_and_near_it_is_ignored(tmp_path):
    """DeepGlobe: its class_dict names 'unknown' black, its users ignore black; a pixel a
    little off black (masks to binarize at 128) is ignored too."""
    ids = class_ids(seed=4)
    rgb = off_colours(ids, [c for _, c in DEEPGLOBE], most=29, share=0.05)
    src = source(tmp_path, [rgb])
    palette = [PaletteEntry(name=n, color="#{:02X}{:02X}{:02X}".format(*c)) for n, c in DEEPGLOBE]
    classes, said = ingest_warnings(src, tmp_path / "out",
                                    IngestOptions(palette=palette, ignore_colors=["#000000"],
                                                  min_color_share=0.01))
    assert classes.names == ["urban_land", "rangeland", "water"]
    np.testing.assert_array_equal(ingested(tmp_path / "out", "p0"), np.where(ids == 3, 255, ids))
    assert ("1 palette class is also in ignore_colors, so its pixels are ignored and it is "
            "left out of the classes (an output no pixel trains): 'unknown' (#000000)") in said


def test_every_palette_colour_ignored_is_an_error(tmp_path):
    src = source(tmp_path, [np.asarray(ISPRS, np.uint8)[class_ids()]])
    with pytest.raises(DataError, match="every palette colour is in ignore_colors"):
        ingest_source(src, tmp_path / "out", IngestOptions(
            palette=PALETTE[:1], ignore_colors=["#FFFFFF"]))


def test_auto_warns_of_a_near_identical_colour_that_becomes_its_own_class(tmp_path):
    ids = class_ids(seed=5)
    rgb = np.asarray(ISPRS, np.uint8)[ids]
    half = (ids == 0) & (np.arange(32)[None, :] < 16)
    rgb[half] = (254, 254, 254)
    src = source(tmp_path, [rgb])
    classes, said = ingest_warnings(src, tmp_path / "out", IngestOptions())
    assert "class_FEFEFE" in classes.names and "class_FFFFFF" in classes.names
    near = [m for m in said if "pair of colours" in m]
    assert len(near) == 1
    fe, ff = half.sum() / ids.size, ((ids == 0) & ~half).sum() / ids.size
    assert near[0].startswith(
        "1 pair of colours within color_tolerance (40) of each other became separate "
        "classes (or a class beside an ignore colour), each pair may be one (shares of the "
        f"labelled pixels): class_FEFEFE ({fe:.2%}) is 1 level from class_FFFFFF ({ff:.2%}). "
        "If so, merge them with ingest.class_aliases (e.g. {class_FEFEFE: class_FFFFFF})")
    classes, said = ingest_warnings(src, tmp_path / "aliased", IngestOptions(
        class_aliases={"class_FEFEFE": "class_FFFFFF"}))
    assert "class_FEFEFE" not in classes.names
    assert not [m for m in said if "pair of colours" in m]  # merged as the warning said


def test_auto_reads_rare_colours_near_a_class_as_it_and_counts_them(tmp_path):
    ids = class_ids(size=128, seed=6)
    rgb = np.asarray(ISPRS, np.uint8)[ids]
    rgb[5, 7], rgb[9, 9] = (250, 250, 251), (3, 250, 4)  # two antialiased pixels in 16,384
    src = source(tmp_path, [rgb])
    classes, said = ingest_warnings(src, tmp_path / "out", IngestOptions())
    assert classes.num_classes == 4
    to_id = {c.color: c.id for c in classes.classes}
    mask = ingested(tmp_path / "out", "p0")
    assert mask[5, 7] == to_id["#FFFFFF"] and mask[9, 9] == to_id["#00FF00"]
    assert any(m.startswith("labels: 2 colours off the palette, at most 5 from a palette "
                            "colour on a channel (color_tolerance 40), are read as the nearest "
                            "one: 2 pixels (0.01% of the labelled pixels), e.g. #03FA04 as "
                            "#00FF00 (1 pixel in ")
               for m in said)


def test_auto_with_every_colour_a_class_says_why_when_they_do_not_fit(tmp_path):
    src = source(tmp_path, [off_colours(class_ids(size=64), ISPRS, most=20, share=0.5)])
    with pytest.raises(DataError, match=r"^\d,?\d+ mask colours would each be a class, more "
                       r"than the 254 that fit below ignore index 255: min_color_share 0 "
                       r"makes every colour a class"):
        ingest_source(src, tmp_path / "out", IngestOptions(min_color_share=0))


def test_jpeg_masks_say_how_many_pixels_were_read_as_a_palette_colour_and_ignored(tmp_path):
    src = tmp_path / "src"
    (src / "images").mkdir(parents=True)
    (src / "masks").mkdir()
    Image.fromarray(np.full((64, 64, 3), 90, np.uint8)).save(src / "images" / "p.png")
    Image.fromarray(np.asarray(ISPRS, np.uint8)[class_ids(size=64)]).save(
        src / "masks" / "p.jpg", quality=60)
    _, said = ingest_warnings(src, tmp_path / "out", IngestOptions(palette=PALETTE))
    lossy = [m for m in said if m.startswith("labels: lossy (JPEG) masks: ")]
    assert len(lossy) == 1
    assert " of the labelled pixels) off the palette are read as the nearest palette colour " \
        "within color_tolerance (40); " in lossy[0] and "further from every palette" in lossy[0]


def test_a_common_colour_near_one_palette_colour_is_a_missing_class_not_snapped(tmp_path):
    """ISPRS palette, a real class #E60000 on 37.5% of the pixels: within the tolerance of
    clutter #FF0000 alone, yet too common to be an off-colour of it."""
    rgb = np.zeros((32, 32, 3), np.uint8)
    rgb[:10], rgb[10:20], rgb[20:] = (255, 255, 255), (255, 0, 0), (230, 0, 0)
    src = source(tmp_path, [rgb])
    palette = [*PALETTE, PaletteEntry(name="clutter", color="#FF0000")]
    with pytest.raises(DataError, match=r"^1 mask colour off the palette, each within "
                       r"color_tolerance \(40\) of one palette or ignore colour, covers at "
                       r"least min_color_share .*: colour #E60000: 384 pixels in \S+p0\.png "
                       r"\(37\.50% of the labelled pixels\), 25 from #FF0000 \(clutter\)"):
        ingest_source(src, tmp_path / "out", IngestOptions(palette=palette))


def test_a_rare_grey_within_the_tolerance_of_several_grey_classes_is_read_as_none(tmp_path):
    """Classes coded as greys 0..4: a grey 5 on a few pixels is within the tolerance of all
    five, so no nearest colour is safe to read it as: an error, not a merge into grey 4."""
    grey = np.repeat(np.arange(5), 26)[:128][None, :].repeat(128, 0).astype(np.uint8)
    grey[0, :1] = 5
    src = source(tmp_path, [np.stack([grey] * 3, -1)])
    with pytest.raises(DataError, match=r"colour #050505: 1 pixel in \S+p0\.png, within "
                       r"color_tolerance of 5 palette colours \(nearest #040404, 1\), so read "
                       r"as none"):
        ingest_source(src, tmp_path / "out", IngestOptions())


def test_auto_reads_a_common_colour_near_an_ignore_colour_as_a_given_palette_does(tmp_path):
    rgb = np.zeros((32, 32, 3), np.uint8)
    rgb[10:20], rgb[20:] = (5, 5, 5), (255, 255, 255)
    src = source(tmp_path, [rgb])
    for n, palette in enumerate(["auto", [PaletteEntry(name="white", color="#FFFFFF")]]):
        with pytest.raises(DataError, match=r"colour #050505: 320 pixels in .*, 5 from "
                           r"#000000 \(ignored\)"):
            ingest_source(src, tmp_path / f"out{n}", IngestOptions(
                palette=palette, ignore_colors=["#000000"]))


def test_tolerance_advice_covers_the_slightly_off_colours_only(tmp_path):
    ids = class_ids(seed=7)
    rgb = off_colours(ids, ISPRS, most=6, share=0.3)
    rgb[0, 0] = (150, 0, 255)  # 105 from building: a class of its own, not an off-colour
    src = source(tmp_path, [rgb])
    with pytest.raises(DataError) as err:
        ingest_source(src, tmp_path / "out", IngestOptions(palette=PALETTE, color_tolerance=2,
                                                           min_color_share=0.01))
    message = str(err.value)
    assert "raise color_tolerance to 6 to read each of the nearer ones as its palette " \
        "colour; the distant #9600FF are more likely classes the palette lacks" in message

"""Overlapping crops of one image: found (also after JPEG recompression), never between
unrelated scenes (repetitive texture, blank borders, nodata), kept in one split by the
default strategy, and advice that fits data cut from a single image (real tea chips)."""

from __future__ import annotations

import io
import itertools

import numpy as np
import pytest
import rasterio
from rasterio.io import MemoryFile

from components.artifacts import TileManifest
from components.crop_overlaps import MAX_SCENES, crop_search_warning, find_overlaps, read_thumbnail
from components.ingest import ingest_source
from components.neighbours import MAX_SCENES as MAX_TOUCHING
from components.neighbours import Edges, find_neighbours
from components.raster import DataError
from components.split import SplitOptions, SplitWarning, split_tiles
from components.split_groups import crop_groups
from components.tile import TileOptions, tile_scenes
from serving.quiet import plain_images_quiet

SIZE, STRIDE, GRID = 48, 24, 3  # crops overlap their row and column neighbours by half


def _photo(seed: int, full: int, stripes: float | None = None) -> np.ndarray:
    """(full, full, 3) uint8: broad shapes, fine texture, sensor noise; with ``stripes`` (a
    period in pixels) the field rows of a plantation on top."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:full, 0:full] / full

    def waves(count, cycles, amplitude):
        return sum(amplitude * np.sin(2 * np.pi * (fx * xx + fy * yy) + rng.uniform(0, 6))
                   for fx, fy in [rng.uniform(-cycles, cycles, 2) for _ in range(count)])
    field = waves(3, 1.5, 1.0) + waves(6, 8, 0.3)
    if stripes:
        field = field + 0.8 * np.sin(2 * np.pi * xx * full / stripes)
    photo = np.stack([field * 25 + 128 + 10 * c for c in range(3)], axis=-1)
    return np.clip(photo + rng.normal(0, 3, photo.shape), 0, 255).astype(np.uint8)


def _jpeg(array: np.ndarray) -> np.ndarray:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "JPEG", quality=75)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())))


def _thumbnail(name: str, array: np.ndarray, nodata: float | None = None):
    with plain_images_quiet(), MemoryFile() as memory:
        with memory.open(driver="GTiff", width=array.shape[1], height=array.shape[0],
                         count=3, dtype="uint8", nodata=nodata) as dst:
            dst.write(array.transpose(2, 0, 1))
        with memory.open() as src:
            return read_thumbnail(name, src, name)


def _cut(photos: int, jpeg: bool = False) -> dict[str, np.ndarray]:
    full = SIZE + STRIDE * (GRID - 1)
    crops = {}
    for k in range(photos):
        photo = _photo(k, full, stripes=5 + k % 3)
        for r, c in itertools.product(range(GRID), range(GRID)):
            crop = photo[r * STRIDE:r * STRIDE + SIZE, c * STRIDE:c * STRIDE + SIZE]
            crops[f"p{k}_{r}_{c}"] = _jpeg(crop) if jpeg else crop
    return crops


def _axis_overlaps(names) -> set[tuple[str, str]]:
    """Crops of one photo offset along one axis by less than their size."""
    pairs = set()
    for a, b in itertools.combinations(sorted(names), 2):
        (ka, ra, ca), (kb, rb, cb) = (map(int, n[1:].split("_")) for n in (a, b))
        if ka == kb and ((ra == rb and abs(ca - cb) * STRIDE < SIZE)
                         or (ca == cb and abs(ra - rb) * STRIDE < SIZE)):
            pairs.add((a, b))
    return pairs


def _pairs(found: dict[str, set[str]]) -> set[tuple[str, str]]:
    return {tuple(sorted((a, b))) for a, others in found.items() for b in others}


@pytest.mark.parametrize("jpeg", [False, True])
def test_half_overlapping_crops_are_found_and_never_paired_across_photos(jpeg):
    crops = _cut(photos=10, jpeg=jpeg)
    found = _pairs(find_overlaps([_thumbnail(n, a) for n, a in crops.items()]))
    expected = _axis_overlaps(crops)
    assert len(expected) == 10 * 12
    assert expected <= found, sorted(expected - found)[:5]
    # Diagonal overlaps are not looked up (they join through row and column neighbours).
    assert all(a.split("_")[0] == b.split("_")[0] for a, b in found)


def test_unrelated_scenes_blank_borders_and_nodata_make_no_pair():
    rng = np.random.default_rng(7)
    scenes = {f"u{k}": _photo(100 + k, SIZE, stripes=5) for k in range(30)}  # same rows
    blank = np.zeros((SIZE, SIZE, 3), np.uint8)
    for k in range(4):  # a black border (a photo's frame) on each, then the picture
        framed = blank.copy()
        framed[:, 20:] = _photo(200 + k, SIZE)[:, 20:]
        scenes[f"framed{k}"] = framed
        scenes[f"flat{k}"] = np.full((SIZE, SIZE, 3), 90, np.uint8)
        noisy = rng.normal(128, 30, (SIZE, SIZE, 3)).clip(0, 255).astype(np.uint8)
        noisy[:SIZE // 2] = 255  # half of it nodata
        scenes[f"nodata{k}"] = noisy
    thumbs = [_thumbnail(n, a, nodata=255 if n.startswith("nodata") else None)
              for n, a in scenes.items()]
    assert _pairs(find_overlaps(thumbs)) == set()


def test_too_many_scenes_of_one_size_are_not_compared_and_the_count_is_returned():
    """Beyond the cap the pairwise edge check is skipped, and the caller learns of it (it
    was skipped silently); a small group of another size is still compared."""
    def edges(name, crop):
        """Edges as ``read_edges`` makes them: (outer, inner) lines of each side."""
        return Edges(name, crop.shape[1], crop.shape[0], {
            "left": (crop[:, 0], crop[:, 1]), "right": (crop[:, -1], crop[:, -2]),
            "top": (crop[0], crop[1]), "bottom": (crop[-1], crop[-2])})

    yy, xx = np.mgrid[0:16, 0:32] / 8.0
    photo = np.sin(xx + 0.3 * yy) + 0.5 * np.cos(0.7 * yy)  # smooth: a seam continues it
    touching = [edges("a", photo[:, :16]), edges("b", photo[:, 16:])]
    flat = np.full((64, 64), 5.0)  # constant edges never match anyway
    many = [edges(f"s{k}", flat) for k in range(MAX_TOUCHING + 1)]
    found, unsearched = find_neighbours(many + touching)
    assert unsearched == MAX_TOUCHING + 1
    assert found == {"a": {"b"}, "b": {"a"}}


def test_a_skipped_crop_search_is_one_line_with_the_count_and_what_to_do():
    assert crop_search_warning(40_000, True, 0) is None
    message = crop_search_warning(MAX_SCENES + 1, False, 0)
    assert message.startswith(f"{MAX_SCENES + 1:,} scenes without a CRS: overlapping crops "
                              f"of one image were not searched for (at most {MAX_SCENES:,} "
                              "scenes), so crops of one image may land in different splits")
    assert message.endswith("use split.strategy 'group' with a group_by that keeps the crops "
                            "of one image together, or georeferenced scenes with strategy "
                            "'block'") and "\n" not in message
    both = crop_search_warning(30_000, False, 30_000)
    assert (f"not searched for (at most {MAX_SCENES:,} scenes); touching crops were not "
            f"searched for among 30,000 scenes of one size (at most {MAX_TOUCHING:,})") in both


@pytest.fixture(scope="module")
def overlapping(tmp_path_factory):
    """Four photos, each cut into 3x3 half-overlapping JPEG crops in one folder (so no
    folder tells the photos apart), prepared up to tiles.json."""
    from PIL import Image

    root = tmp_path_factory.mktemp("overlapping")
    labels_of = {}
    for name, array in _cut(photos=4, jpeg=False).items():
        for sub in ("images", "masks"):
            (root / "src" / sub).mkdir(parents=True, exist_ok=True)
        Image.fromarray(array).save(root / "src" / "images" / f"{name}.jpg", quality=90)
        labels_of[name] = (array[..., 0] > 128).astype(np.uint8)
        Image.fromarray(labels_of[name]).save(root / "src" / "masks" / f"{name}.png")
    ds = root / "ds"
    ingest_source(root / "src", ds)
    tile_scenes(ds, ds, TileOptions(patch_size=24))
    return ds


def test_the_default_split_keeps_the_crops_of_each_photo_in_one_split(overlapping, tmp_path):
    manifest = TileManifest.load(overlapping / "tiles.json")
    groups = crop_groups(manifest.scenes)
    photo_of = {s.name: s.source.split("/")[-1].split("_")[0] for s in manifest.scenes}
    assert len(set(groups.values())) == 4
    assert all(photo_of[s] == photo_of[g] for s, g in groups.items())  # never a stranger
    with pytest.warns(SplitWarning, match=r"kept 4 groups of 9 scenes \(36 in all\)"):
        split = split_tiles(overlapping, tmp_path / "split.json",
                            SplitOptions(ratios=(0.5, 0.25, 0.25)))
    where = {t: name for name, ids in split.splits.items() for t in ids}
    by_photo: dict[str, set[str]] = {}
    for t in manifest.tiles:
        by_photo.setdefault(photo_of[t.scene], set()).add(where[t.id])
    assert all(len(s) == 1 for s in by_photo.values()) and all(split.splits.values())
    # One folder: 'group' by parent would be one group, so the advice must not offer it.
    with pytest.warns(SplitWarning, match="lie in different splits") as caught:
        split_tiles(overlapping, tmp_path / "r.json", SplitOptions(strategy="random"))
    advice = next(str(w.message) for w in caught if "different splits" in str(w.message))
    assert "strategy 'scene' (the default)" in advice and "group_by 'parent'" not in advice


def test_tea_chips_as_jpegs_form_one_image_and_the_error_says_so(tea_plantations, tmp_path):
    """The real chips overlap their neighbours by half; as JPEGs without a CRS, only their
    content tells that they are one image. One contrast stretch for all, as a GIS export
    does (a stretch per chip would change the overlaps' values: not matched)."""
    from PIL import Image

    src = tmp_path / "src"
    for sub in ("images", "masks"):
        (src / sub).mkdir(parents=True)
    paths = sorted((tea_plantations / "images").glob("*.tif"))
    chips = {}
    for path in paths:
        with rasterio.open(path) as img:
            chips[path.stem] = img.read([1, 2, 3]).astype(np.float64)
    low, high = np.percentile(np.stack(list(chips.values())), (1, 99))
    for path in paths:
        with rasterio.open(tea_plantations / "labels" / path.name) as lbl:
            labels = lbl.read(1)
        rgb = ((chips[path.stem] - low) / (high - low) * 255).clip(0, 255).astype(np.uint8)
        Image.fromarray(rgb.transpose(1, 2, 0)).save(src / "images" / f"{path.stem}.jpg")
        Image.fromarray(labels).save(src / "masks" / f"{path.stem}.png")
    ds = tmp_path / "ds"
    ingest_source(src, ds)
    manifest = tile_scenes(ds, ds, TileOptions(patch_size=128))
    assert len(set(crop_groups(manifest.scenes).values())) == 1
    with pytest.raises(DataError) as error:
        split_tiles(ds, tmp_path / "split.json")
    message = str(error.value)
    assert "the 11 scenes look like crops of one image" in message
    assert "block_size" not in message and "allow_empty_splits" in message
    with pytest.warns(SplitWarning, match="lie in different splits") as caught:
        split_tiles(ds, tmp_path / "r.json", SplitOptions(strategy="random"))
    advice = next(str(w.message) for w in caught if "different splits" in str(w.message))
    assert "all 11 scenes come from 1 image" in advice and "group_by" not in advice

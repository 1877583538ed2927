"""Scene discovery on the layouts of well-known aerial datasets as they are published: images
and labels in one folder told by suffix (DeepGlobe, LandCover.ai's tiles), every pair of
image and label folders at once (LoveDA, Massachusetts), image and label stems that differ
by a dataset's own suffixes (Potsdam, Vaihingen), and what is said when nothing pairs or a
file would pair twice. Tiny generated files named as each dataset names them."""

from __future__ import annotations

import numpy as np
import pytest

from components.artifacts import SceneIndex
from components.discover import discover_pairs
from components.ingest import ingest_source
from components.ingest_options import IngestOptions
from components.raster import DataError
from components.survey import IngestWarning
from tests.components.test_layouts import save_ids
from tests.components.test_masks import class_ids, ingested_ids, save_photo

NAMES = ["masks", "labels", "gt"]  # ingest.mask_dir_names' default


def layout(root, images: list[str], labels: list[str]):
    """``images`` as photos and ``labels`` as class-id masks, at these paths under root."""
    for i, rel in enumerate(images):
        save_photo(root / rel, i)
    for i, rel in enumerate(labels):
        save_ids(root / rel, i)
    return root


def found(discovery, root) -> dict[str, tuple[str, str]]:
    return {p.name: (p.image.relative_to(root).as_posix(), p.label.relative_to(root).as_posix())
            for p in discovery.pairs}


def pairs_in(root, images: list[str], labels: list[str]) -> dict[str, tuple[str, str]]:
    """The pairs discovery finds, with no options, in ``layout(root, images, labels)``."""
    return found(discover_pairs(layout(root, images, labels), NAMES), root)


@pytest.mark.parametrize(("image_dir", "mask_dir"), [(None, None), ("train", "train")])
def test_deepglobe_sat_and_mask_in_one_folder_pair_and_the_unlabelled_are_counted(
        tmp_path, image_dir, mask_dir):
    src = layout(tmp_path / "deepglobe", ["train/119_sat.jpg", "train/855_sat.jpg",
                                          "valid/1101_sat.jpg", "test/3003_sat.jpg"],
                 ["train/119_mask.png", "train/855_mask.png"])
    discovery = discover_pairs(src, NAMES, image_dir=image_dir, mask_dir=mask_dir)
    assert found(discovery, src) == {"119": ("train/119_sat.jpg", "train/119_mask.png"),
                                     "855": ("train/855_sat.jpg", "train/855_mask.png")}
    if image_dir is None:  # the whole source: valid/ and test/ have no masks
        assert discovery.unmatched_line(src) == (
            "2 files without a partner were skipped (images without a label, or labels "
            "without an image): 1 in test, 1 in valid; e.g. test/3003_sat.jpg")


def test_landcoverai_tiles_and_their_m_masks_in_one_folder_are_ingested(tmp_path):
    """What LandCover.ai's split.py writes: output/<ortho>_<k>.jpg and <ortho>_<k>_m.png."""
    src = layout(tmp_path / "lc", ["output/M-33-20-D-c-4-2_0.jpg",
                                   "output/M-33-20-D-c-4-2_1.jpg"],
                 ["output/M-33-20-D-c-4-2_0_m.png", "output/M-33-20-D-c-4-2_1_m.png"])
    out = tmp_path / "out"
    ingest_source(src, out, IngestOptions())
    names = [s.name for s in SceneIndex.load(out / "scenes.json").scenes]
    assert names == ["M-33-20-D-c-4-2_0", "M-33-20-D-c-4-2_1"]
    np.testing.assert_array_equal(ingested_ids(out, "M-33-20-D-c-4-2_1"), class_ids(seed=1))


def test_loveda_every_images_png_masks_png_pair_is_read_with_its_given_split(tmp_path):
    images = [f"{split}/{domain}/images_png/{n}.png" for split, domain, n in
              [("Train", "Rural", 0), ("Train", "Urban", 1366), ("Val", "Rural", 2522)]]
    src = layout(tmp_path / "loveda", images + ["Test/Urban/images_png/4191.png"],
                 [p.replace("images_png", "masks_png") for p in images])
    out = tmp_path / "out"
    with pytest.warns(IngestWarning, match=r"1 file without a partner was skipped .*: 1 in "
                      r"Test/Urban/images_png; e.g. Test/Urban/images_png/4191.png"):
        ingest_source(src, out, IngestOptions())
    given = {s.name: s.given_split for s in SceneIndex.load(out / "scenes.json").scenes}
    assert given == {"0": "train", "1366": "train", "2522": "val"}


def test_massachusetts_split_folders_and_their_labels_folders_pair_one_copy_at_a_time(
        tmp_path):
    """tiff/{train,val,test} with tiff/{train,val,test}_labels (images .tiff, labels .tif),
    and the same scenes again as PNG under png/."""
    stems = {"train": "10078660_15", "val": "10228675_15", "test": "10378780_15"}
    src = layout(tmp_path / "mass", [f"tiff/{s}/{n}.tiff" for s, n in stems.items()]
                 + [f"png/{s}/{n}.png" for s, n in stems.items()],
                 [f"tiff/{s}_labels/{n}.tif" for s, n in stems.items()]
                 + [f"png/{s}_labels/{n}.png" for s, n in stems.items()])
    with pytest.raises(DataError, match=r"3 of the scenes are found twice, in other formats "
                       r"\(e.g. png/test/10378780_15.png and tiff/test/10378780_15.tiff\); "
                       r"prepare one copy: .*set image_dir to it \(png or tiff\)"):
        discover_pairs(src, NAMES)
    out = tmp_path / "out"
    ingest_source(src, out, IngestOptions(image_dir="tiff"))
    scenes = SceneIndex.load(out / "scenes.json").scenes
    assert {(s.source, s.label, s.given_split) for s in scenes} == {
        (f"tiff/{s}/{n}.tiff", f"tiff/{s}_labels/{n}.tif", s) for s, n in stems.items()}


def potsdam(root):
    tiles = ["2_10", "2_11"]
    return layout(root, [f"{folder}/top_potsdam_{t}_{kind}.tif" for t in tiles
                         for folder, kind in [("2_Ortho_RGB", "RGB"), ("3_Ortho_IRRG", "IRRG"),
                                              ("4_Ortho_RGBIR", "RGBIR")]]
                  + ["1_DSM/dsm_potsdam_02_10.tif"],
                  [f"{folder}/top_potsdam_{t}_{kind}.tif" for t in tiles
                   for folder, kind in [("5_Labels_all", "label"),
                                        ("5_Labels_all_noBoundary", "label_noBoundary")]])


@pytest.mark.parametrize(("image_dir", "mask_dir", "image", "label"), [
    ("4_Ortho_RGBIR", "5_Labels_all", "RGBIR", "label"),
    ("3_Ortho_IRRG", "5_Labels_all", "IRRG", "label"),
    ("2_Ortho_RGB", "5_Labels_all_noBoundary", "RGB", "label_noBoundary"),
])
def test_potsdam_stems_pair_across_its_image_and_label_suffixes(tmp_path, image_dir, mask_dir,
                                                                image, label):
    src = potsdam(tmp_path / "potsdam")
    discovery = discover_pairs(src, NAMES, image_dir=image_dir, mask_dir=mask_dir)
    assert sorted(found(discovery, src).values()) == [
        (f"{image_dir}/top_potsdam_{t}_{image}.tif", f"{mask_dir}/top_potsdam_{t}_{label}.tif")
        for t in ["2_10", "2_11"]]


def test_folders_that_pair_in_more_than_one_way_ask_which(tmp_path):
    """Potsdam's three image folders and two label folders: which to read is the user's
    choice (the benchmark differs), asked for, never guessed."""
    src = potsdam(tmp_path / "potsdam")
    with pytest.raises(DataError, match=r"the images in 2_Ortho_RGB, 3_Ortho_IRRG, "
                       r"4_Ortho_RGBIR and the labels in 5_Labels_all, "
                       r"5_Labels_all_noBoundary pair in more than one way .*choose one image "
                       r"folder and one label folder with image_dir and mask_dir"):
        discover_pairs(src, NAMES)
    with pytest.raises(DataError, match=r"image_dir '2_Ortho_RGB': its images have labels in "
                       r"5_Labels_all and in 5_Labels_all_noBoundary; choose one with mask_dir"):
        discover_pairs(src, NAMES, image_dir="2_Ortho_RGB")


def test_vaihingen_eroded_labels_pair_and_a_label_fitting_two_images_is_an_error(tmp_path):
    src = layout(tmp_path / "vaihingen", ["top/top_mosaic_09cm_area1.tif"],
                 ["gts_eroded_for_participants/top_mosaic_09cm_area1_noBoundary.tif"])
    assert found(discover_pairs(src, NAMES), src) == {"top_mosaic_09cm_area1": (
        "top/top_mosaic_09cm_area1.tif",
        "gts_eroded_for_participants/top_mosaic_09cm_area1_noBoundary.tif")}
    save_photo(src / "top" / "top_mosaic_09cm_area1_rgb.tif", 5)
    with pytest.raises(DataError, match=r"top_mosaic_09cm_area1_noBoundary.tif fits two "
                       r"images, .*area1.tif and .*area1_rgb.tif, by name"):
        discover_pairs(src, NAMES)


def test_named_folders_that_do_not_pair_say_what_each_holds_not_to_set_them(tmp_path):
    src = layout(tmp_path / "src", ["imgs/img_001.png", "imgs/img_002.png"],
                 ["anns/ann_001.png"])
    with pytest.raises(DataError) as err:
        discover_pairs(src, NAMES, image_dir="imgs", mask_dir="anns")
    message = str(err.value)
    assert message.startswith("image_dir 'imgs' holds 2 images (e.g. img_001.png, "
                              "img_002.png), and mask_dir 'anns' 1 label (e.g. ann_001.png), "
                              "but none pair: ")
    assert "_sat" in message and "_noboundary" in message and "set image_dir" not in message


@pytest.mark.parametrize(("images", "labels", "pairs", "left"), [
    # a valid-data mask beside its scene in images/ is neither a label nor a scene's partner
    (["images/s1.tif", "images/s1_mask.tif", "images/s2.tif"],
     ["labels/s1.tif", "labels/s2.tif"],
     {"s1": ("images/s1.tif", "labels/s1.tif"), "s2": ("images/s2.tif", "labels/s2.tif")},
     ["images/s1_mask.tif"]),
    # suffixed names in both folders pair across the folders, never within one
    (["images/a.png", "images/a_m.png"], ["masks/a.png", "masks/a_m.png"],
     {"a": ("images/a.png", "masks/a.png"), "a_m": ("images/a_m.png", "masks/a_m.png")}, []),
])
def test_image_and_label_folders_pair_before_suffixes_in_one_folder(tmp_path, images, labels,
                                                                    pairs, left):
    src = layout(tmp_path / "src", images, labels)
    discovery = discover_pairs(src, NAMES)
    assert found(discovery, src) == pairs
    assert [p.relative_to(src).as_posix() for p in discovery.unmatched] == left


def test_a_file_in_a_label_folder_is_never_an_image(tmp_path):
    assert pairs_in(tmp_path / "src", ["train/b.png"],
                    ["train/b_mask.png", "masks/c.png", "masks/c_mask.png"]) == {
        "b": ("train/b.png", "train/b_mask.png")}


@pytest.mark.parametrize(("folders", "names", "pair"), [
    (["images", "masks", "gt"], NAMES, "masks"),
    (["images", "masks", "labels_color"], NAMES, "masks"),
    (["images", "labels", "labels_v2"], NAMES, "labels"),
    (["images", "labels", "labels_v2"], ["labels_v2"], "labels_v2"),
    (["images", "images_preview", "labels"], NAMES, "labels"),
])
def test_the_preferred_folders_pair_when_several_fit(tmp_path, folders, names, pair):
    """mask_dir_names in order, then masks, labels, gt, then any other label folder; an
    image folder named by an image word alone before one that holds it."""
    src = layout(tmp_path / "src", [f"{folders[0]}/a.png"],
                 [f"{folder}/a.png" for folder in folders[1:]])
    assert found(discover_pairs(src, names), src) == {"a": ("images/a.png", f"{pair}/a.png")}
    assert found(discover_pairs(src, names, image_dir="images"), src) == {
        "a": ("images/a.png", f"{pair}/a.png")}


def test_two_label_folders_preferred_alike_still_ask_which(tmp_path):
    src = layout(tmp_path / "src", ["images/a.png"], ["labels_a/a.png", "labels_b/a.png"])
    with pytest.raises(DataError, match="pair in more than one way"):
        discover_pairs(src, NAMES)


def test_an_exact_name_claims_its_label_before_a_suffixed_one(tmp_path):
    src = layout(tmp_path / "src", ["images/x.tif", "images/x_m.tif", "images/y.tif"],
                 ["masks/x_m.png", "masks/y.png"])
    discovery = discover_pairs(src, NAMES, image_dir="images", mask_dir="masks")
    assert found(discovery, src) == {"x_m": ("images/x_m.tif", "masks/x_m.png"),
                                     "y": ("images/y.tif", "masks/y.png")}
    assert [p.relative_to(src).as_posix() for p in discovery.unmatched] == ["images/x.tif"]


def test_scenes_of_one_name_in_other_folders_are_no_copies(tmp_path):
    assert pairs_in(tmp_path / "src", ["north/images/t1.tif", "south/images/t1.png"],
                    ["north/masks/t1.tif", "south/masks/t1.png"]) == {
        "north__t1": ("north/images/t1.tif", "north/masks/t1.tif"),
        "south__t1": ("south/images/t1.png", "south/masks/t1.png")}
    with pytest.raises(DataError, match=r"1 of the scenes is found twice, in other formats "
                       r"\(e.g. png/images/t1.png and tiff/images/t1.tif\)"):
        pairs_in(tmp_path / "copies", ["tiff/images/t1.tif", "png/images/t1.png"],
                 ["tiff/masks/t1.tif", "png/masks/t1.png"])


def test_a_stem_ending_in_a_label_suffix_is_a_label_only_beside_its_image(tmp_path):
    assert pairs_in(tmp_path / "src", ["train/b.png", "train/site_lab.png"],
                    ["train/b_mask.png", "train/site_lab_mask.png"]) == {
        "b": ("train/b.png", "train/b_mask.png"),
        "site_lab": ("train/site_lab.png", "train/site_lab_mask.png")}

"""Names published datasets pair by beyond the built-in suffixes: a stem that repeats its
folder's name (SpaceNet's ``MUL/MUL_x.tif`` + ``buildings/buildings_x.geojson``,
Sen1Floods11's ``S1Hand/x_S1Hand.tif`` + ``LabelHand/x_LabelHand.tif``), ``ingest.pair_by``
(a regular expression whose first group is the scene id in both names), and the errors when
recognised folders hold files that do not pair."""

from __future__ import annotations

import pytest

from components.discover import discover_pairs
from components.ingest_options import IngestOptions
from components.raster import DataError
from tests.components.test_discover import NAMES, found, layout


def test_sen1floods11_stems_carrying_their_folder_names_pair(tmp_path):
    src = layout(tmp_path / "src", ["HandLabeled/S1Hand/Bolivia_103757_S1Hand.png",
                                    "HandLabeled/S1Hand/Bolivia_103758_S1Hand.png"],
                 ["HandLabeled/LabelHand/Bolivia_103757_LabelHand.png",
                  "HandLabeled/LabelHand/Bolivia_103758_LabelHand.png"])
    pairs = found(discover_pairs(src, NAMES, image_dir="HandLabeled/S1Hand",
                                 mask_dir="HandLabeled/LabelHand"), src)
    assert pairs == {f"Bolivia_{n}_S1Hand": (f"HandLabeled/S1Hand/Bolivia_{n}_S1Hand.png",
                                             f"HandLabeled/LabelHand/Bolivia_{n}_LabelHand.png")
                     for n in (103757, 103758)}


def test_spacenet_stems_prefixed_with_their_folder_names_pair(tmp_path):
    src = layout(tmp_path / "src", ["RGB-PanSharpen/RGB-PanSharpen_AOI_2_Vegas_img1.png"],
                 ["buildings/buildings_AOI_2_Vegas_img1.png"])
    pairs = found(discover_pairs(src, NAMES, image_dir="RGB-PanSharpen",
                                 mask_dir="buildings"), src)
    assert pairs == {"RGB-PanSharpen_AOI_2_Vegas_img1": (
        "RGB-PanSharpen/RGB-PanSharpen_AOI_2_Vegas_img1.png",
        "buildings/buildings_AOI_2_Vegas_img1.png")}


def test_a_folder_name_inside_a_stem_is_no_affix(tmp_path):
    """Only a whole prefix or suffix word is the folder's: images/x_images2.png is x_images2."""
    src = layout(tmp_path / "src", ["images/a_images2.png"], ["masks/a.png"])
    with pytest.raises(DataError, match="but none of their files pair"):
        discover_pairs(src, NAMES)


@pytest.mark.parametrize(("image_dir", "mask_dir"), [("imgs", "anns"), (None, None)])
def test_pair_by_takes_the_scene_id_from_both_names(tmp_path, image_dir, mask_dir):
    src = layout(tmp_path / "src", ["imgs/img_001.png", "imgs/img_002.png"],
                 ["anns/ann_001.png", "anns/ann_002.png"])
    pairs = found(discover_pairs(src, NAMES, image_dir=image_dir, mask_dir=mask_dir,
                                 pair_by=r"_(\d+)$"), src)
    assert pairs == {"img_001": ("imgs/img_001.png", "anns/ann_001.png"),
                     "img_002": ("imgs/img_002.png", "anns/ann_002.png")}


@pytest.mark.parametrize(("image_dir", "mask_dir"), [("images", "masks"), (None, None)])
def test_a_pair_by_that_matches_no_label_says_so(tmp_path, image_dir, mask_dir):
    src = layout(tmp_path / "src", ["images/SN_1.png", "images/SN_2.png"],
                 ["masks/bld_1.png", "masks/bld_2.png"])
    with pytest.raises(DataError) as caught:
        discover_pairs(src, NAMES, image_dir=image_dir, mask_dir=mask_dir,
                       pair_by=r"^(?:SN_|buildings_)(.+)$")
    message = str(caught.value)
    assert message.endswith("but none pair: pair_by '^(?:SN_|buildings_)(.+)$' takes a scene "
                            "id out of 2 of 2 images and 0 of 2 labels; it does not match "
                            "bld_1.png, bld_2.png") or message.endswith(
        "(e.g. bld_1.png, bld_2.png): pair_by '^(?:SN_|buildings_)(.+)$' takes a scene id out "
        "of 2 of 2 images and 0 of 2 labels; it does not match bld_1.png, bld_2.png"), message
    assert "by their stems" not in message and "set pair_by" not in message


def test_a_pair_by_where_images_and_labels_share_a_folder_is_said_unused(tmp_path):
    src = layout(tmp_path / "src", ["data/x0_sat.png", "data/x1_sat.png"],
                 ["data/x0_mask.png", "data/x1_mask.png"])
    discovery = discover_pairs(src, NAMES, pair_by=r"^zzz(.+)$")
    assert len(discovery.pairs) == 2
    assert discovery.notes == [
        "pair_by '^zzz(.+)$' is not used for 2 images whose label lies in its folder (e.g. "
        "data/x0_sat.png + data/x0_mask.png): those pair by the name rules; pair_by pairs "
        "images and labels in two folders"]


def test_pair_by_must_compile_with_a_group():
    with pytest.raises(ValueError, match=r"pair_by '\(unclosed' is not a valid regular "
                       "expression"):
        IngestOptions(pair_by="(unclosed")
    with pytest.raises(ValueError, match="pair_by 'img_': the regular expression needs a "
                       "capturing group"):
        IngestOptions(pair_by="img_")


def test_named_folders_that_do_not_pair_suggest_a_pair_by_that_pairs_them(tmp_path):
    src = layout(tmp_path / "src", ["imgs/img_001.png", "imgs/img_002.png"],
                 ["anns/ann_001.png", "anns/ann_002.png"])
    with pytest.raises(DataError) as caught:
        discover_pairs(src, NAMES, image_dir="imgs", mask_dir="anns")
    message = str(caught.value)
    assert message.endswith("; their names differ by a prefix or suffix: set pair_by: "
                            "'^(?:img_|ann_)(.+)$' (its first group is the scene id in both "
                            "names)"), message


def test_image_and_label_folders_found_but_nothing_paired_say_so(tmp_path):
    """Sentinel-2 bands, one file each, beside one mask per tile: the folders are right."""
    src = layout(tmp_path / "src", ["images/T50RKR_D/T50RKR_D_B02_10m.png",
                                    "images/T50RKR_D/T50RKR_D_B03_10m.png"],
                 ["masks/T50RKR_D.png"])
    with pytest.raises(DataError) as caught:
        discover_pairs(src, NAMES)
    message = str(caught.value)
    assert ("found image folder images and label folder masks, but none of their files "
            "pair: images holds 2 images (e.g. T50RKR_D_B02_10m.png, T50RKR_D_B03_10m.png), "
            "masks 1 label (e.g. T50RKR_D.png)") in message, message
    assert "by their stems without a suffix" in message

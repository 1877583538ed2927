"""Palette and classes files as datasets ship them: DeepGlobe's and Kaggle's class_dict.csv
(name,r,g,b) beside the JSON shapes; a malformed one named by file and line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
from PIL import Image

from components.classes_file import read_classes_file
from components.ingest import ingest_source
from components.ingest_options import IngestOptions
from components.raster import DataError

CLASS_DICT = ("name,r,g,b\nurban_land,0,255,255\nagriculture_land,255,255,0\n"
              "rangeland,255,0,255\nunknown,0,0,0\n")


def test_a_class_dict_csv_is_a_palette(tmp_path):
    src = tmp_path / "src"
    ids = np.kron(np.arange(4).reshape(2, 2), np.ones((16, 16), int))
    rgb = np.asarray([(0, 255, 255), (255, 255, 0), (255, 0, 255), (0, 0, 0)], np.uint8)[ids]
    for folder, data in (("images", np.full((32, 32, 3), 90, np.uint8)), ("masks", rgb)):
        (src / folder).mkdir(parents=True)
        Image.fromarray(data).save(src / folder / "119.png")
    (tmp_path / "class_dict.csv").write_text(CLASS_DICT)
    classes = ingest_source(src, tmp_path / "out", IngestOptions(
        palette=str(tmp_path / "class_dict.csv")))
    assert classes.names == ["urban_land", "agriculture_land", "rangeland", "unknown"]
    assert classes.classes[2].color == "#FF00FF"
    with rasterio.open(tmp_path / "out" / "scenes" / "119_mask.tif") as mask:
        np.testing.assert_array_equal(mask.read(1), ids)


def test_the_header_in_any_case_a_bom_and_blank_lines_are_read(tmp_path):
    path = tmp_path / "label_class_dict.CSV"
    path.write_bytes("\ufeffName, R, G, B\r\nbackground,0,0,0\r\n\r\nroad, 255,255,255\r\n"
                     .encode())
    entries = read_classes_file(path).entries
    assert [(e.name, e.color) for e in entries] == [("background", "#000000"),
                                                    ("road", "#FFFFFF")]


@pytest.mark.parametrize(("text", "message"), [
    ("class,red,green,blue\nroad,1,2,3\n", "line 1: expected the header name,r,g,b"),
    ("", "line 1: expected the header name,r,g,b .*got 'an empty file'"),
    ("name,r,g,b\n", "no classes below the header"),
    ("name,r,g,b\nroad,1,2,3\nwater,0,0\n", "line 3: expected 4 fields name,r,g,b, got 3"),
    ("name,r,g,b\nroad,1,2,300\n", "line 2: r,g,b must be whole numbers 0-255, got '1,2,300'"),
    ("name,r,g,b\nroad,1,2,x\n", "line 2: r,g,b must be whole numbers 0-255"),
    ("name,r,g,b\n,1,2,3\n", "line 2: no class name"),
])
def test_a_malformed_class_dict_names_the_file_and_line(tmp_path, text, message):
    path = tmp_path / "class_dict.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=f"class_dict.csv: {message}"):
        read_classes_file(path)


def test_a_palette_file_that_is_not_json_says_what_is_accepted(tmp_path):
    path = tmp_path / "palette.txt"
    path.write_text(CLASS_DICT)
    with pytest.raises(DataError, match=r"palette.txt: cannot read classes file: not JSON "
                       r"\(Expecting value.*\); a palette or classes file is JSON .* or a \.csv "
                       r"with the header name,r,g,b"):
        read_classes_file(path)
    path.write_text(json.dumps([{"name": "road", "color": "#FFFFFF"}]))
    assert read_classes_file(path).entries[0].name == "road"

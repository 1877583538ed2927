"""How a class-id mask's declared nodata value enters the labels' spec: ignored like
``ingest.ignore_values``, unless a class list names it; 0, the usual background, kept."""

from __future__ import annotations

import json
import re
import warnings

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from components.ingest import ingest_source
from components.ingest_options import IngestOptions
from components.raster import write_array
from components.survey import IngestWarning
from tests.components.conftest import UTM, make_image, make_labels

TRANSFORM = from_origin(600000.0, 3000000.0, 2.0, 2.0)


def _source(tmp_path, labels: np.ndarray, label_nodata: float | None):
    """One 32 px scene whose label raster declares ``label_nodata``."""
    src = tmp_path / "src"
    write_array(src / "a_image.tif", make_image(), UTM, TRANSFORM)
    write_array(src / "a_mask.tif", labels, UTM, TRANSFORM, label_nodata)
    return src


def _mask(out) -> np.ndarray:
    with rasterio.open(out / "scenes" / "a_mask.tif") as src:
        return src.read(1)


def _nodata_lines(caught) -> list[str]:
    return [str(w.message) for w in caught if "nodata value" in str(w.message)]


def test_a_label_pixel_equal_to_the_declared_nodata_is_ignored_and_said_once(tmp_path):
    """A mosaic's label: 255 over its gap and over unlabelled ground, declared nodata."""
    labels = make_labels(values=(0, 1))
    labels[:8] = 255  # 256 px
    src = _source(tmp_path, labels, 255)
    with pytest.warns(IngestWarning) as caught:
        classes = ingest_source(src, tmp_path / "out", IngestOptions())
    assert classes.names == ["background", "class_1"]  # no class_255
    mask = _mask(tmp_path / "out")
    assert (mask[:8] == 255).all() and set(np.unique(mask[8:])) == {0, 1}
    (line,) = _nodata_lines(caught)
    assert re.fullmatch(r"labels: 256 pixels equal the label rasters' nodata value 255 "
                        r"\(declared by 1 label file, e\.g\. .*a_mask\.tif\), ignored; if 255 "
                        r"is a class, name it in ingest\.class_values or a classes\.json",
                        line), line
    # One mechanism with ignore_values: a class list without 255 is no unknown-value error.
    options = IngestOptions(class_values={0: 0, 1: 1}, class_names=["bg", "tea"])
    with pytest.warns(IngestWarning, match="nodata value 255 .*, ignored"):
        assert ingest_source(src, tmp_path / "listed", options).names == ["bg", "tea"]
    np.testing.assert_array_equal(_mask(tmp_path / "listed"), mask)


def test_a_declared_nodata_a_classes_json_names_stays_a_class(tmp_path):
    labels = make_labels(values=(0, 1, 255))
    src = _source(tmp_path, labels, 255)
    (src / "classes.json").write_text(json.dumps({"classes": [
        {"value": 0, "name": "background"}, {"value": 1, "name": "tea"},
        {"value": 255, "name": "cloud"}]}))
    with warnings.catch_warnings():
        warnings.simplefilter("error", IngestWarning)
        classes = ingest_source(src, tmp_path / "out", IngestOptions())
    assert classes.names == ["background", "tea", "cloud"]
    assert set(np.unique(_mask(tmp_path / "out")[labels == 255])) == {2}


def test_nodata_0_on_a_label_whose_0_is_background_keeps_the_class_and_says_so(tmp_path):
    """A GIS export's default nodata 0 on a label where 0 is the background: thrown away,
    the model would never learn the background; it stays a class, with a warning."""
    labels = make_labels(values=(0, 1))
    src = _source(tmp_path, labels, 0)
    with pytest.warns(IngestWarning) as caught:
        classes = ingest_source(src, tmp_path / "out", IngestOptions())
    assert classes.names == ["background", "class_1"]
    np.testing.assert_array_equal(_mask(tmp_path / "out"), labels)
    (line,) = _nodata_lines(caught)
    assert re.fullmatch(r"labels: 512 pixels equal the label rasters' nodata value 0 "
                        r"\(declared by 1 label file, e\.g\. .*a_mask\.tif\), kept as a class: "
                        r"0 is usually the background\. If they are unlabelled, ignore them "
                        r"with ingest\.ignore_values: \[0\]", line), line
    # Asked to ignore 0, or given a class list without it: ignored.
    for name, options in (("ignored", IngestOptions(ignore_values=[0])),
                          ("listed", IngestOptions(class_values={1: 0}))):
        with pytest.warns(IngestWarning, match="nodata value 0 .*, ignored"):
            assert ingest_source(src, tmp_path / name, options).names == ["class_1"]
        assert (_mask(tmp_path / name)[labels == 0] == 255).all()
    # Named as a class: kept, nothing to say.
    with warnings.catch_warnings():
        warnings.simplefilter("error", IngestWarning)
        options = IngestOptions(class_values={0: 0, 1: 1})
        assert ingest_source(src, tmp_path / "named", options).names == [
            "background", "class_1"]


def test_a_negative_label_value_becomes_a_class_with_one_warning_naming_it(tmp_path):
    """Sen1Floods11's int16 labels: -1 where nothing was labelled, no nodata declared. Read
    as found, it is a class; a negative class id is almost always nodata, so one warning
    names the value, its share and file, with the option that ignores it."""
    labels = make_labels(values=(0, 1)).astype(np.int16)
    labels[:4] = -1  # 128 of 1,024 pixels (12.5%)
    labels[4, 0] = -9999  # 1 pixel: rare too, said once here, not as a stray value again
    src = _source(tmp_path, labels, None)
    with pytest.warns(IngestWarning) as caught:
        classes = ingest_source(src, tmp_path / "out", IngestOptions())
    assert classes.names == ["class_-9999", "class_-1", "background", "class_1"]
    lines = [str(w.message) for w in caught]
    (line,) = [w for w in lines if "negative" in w]
    assert re.fullmatch(r"labels: 2 negative mask values become classes of their own, though a "
                        r"negative class id is almost always nodata \(Sen1Floods11 marks "
                        r"unlabelled pixels -1\): value -1: 128 pixels \(12\.500% of the "
                        r"labelled pixels\) in .*a_mask\.tif; value -9999: 1 pixel \(0\.098% "
                        r"of the labelled pixels\) in .*a_mask\.tif\. If they are nodata, "
                        r"ignore them with ingest\.ignore_values: \[-1, -9999\] "
                        r"\(--ignore-values -1,-9999\)", line), line
    assert not [w for w in lines if "stray" in w]
    with warnings.catch_warnings():
        warnings.simplefilter("error", IngestWarning)
        classes = ingest_source(src, tmp_path / "ignored",
                                IngestOptions(ignore_values=[-1, -9999]))
    assert classes.names == ["background", "class_1"]
    assert (_mask(tmp_path / "ignored")[:4] == 255).all()

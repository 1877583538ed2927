"""ingest.class_aliases: label class names mapped onto known classes, for every label kind;
sources aliased to one class merge; unknown targets refused before any scene is written;
unused aliases warned about; the labels read onto a model's classes (segpipe evaluate)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from PIL import Image
from pydantic import ValidationError
from rasterio.transform import from_origin

from components.artifacts import ClassInfo, ClassMap
from components.ingest import ingest_source
from components.ingest_options import IngestOptions
from components.raster import DataError, SettingError, write_array
from components.survey import IngestWarning
from tests.components.conftest import UTM, make_image
from tests.components.test_vectors import (
    FEATURES_UTM,
    ORIGINS,
    _scenes,
    _write_layer,
    read_mask,
)


def _polygons(root, rename: dict[str, str] | None = None):
    """The two scenes of test_vectors and their field/pond/road polygons, classes renamed
    by ``rename`` (as a colleague named them)."""
    _scenes(root)
    features = [((rename or {}).get(c, c), g) for c, g in FEATURES_UTM]
    _write_layer(root / "labels.gpkg", features, crs=UTM)
    return root


def _masks(out) -> list[np.ndarray]:
    return [read_mask(out, f"s{i}") for i in range(len(ORIGINS))]


def test_polygon_classes_of_two_names_merge_into_the_class_they_alias(tmp_path):
    """'Field' and 'meadow' are the colleague's names for 'field', 'road' stays: the dataset
    equals the one labelled 'field' throughout (classes and every pixel)."""
    reference = tmp_path / "reference"
    classes = ingest_source(_polygons(tmp_path / "same"), reference,
                            IngestOptions(vector_labels="labels.gpkg"))
    src = _polygons(tmp_path / "renamed", {"field": "Field", "pond": "field"})
    aliased = ingest_source(src, tmp_path / "aliased", IngestOptions(
        vector_labels="labels.gpkg", class_aliases={"Field": "field"}))
    assert aliased.names == ["background", "field", "road"]
    ponds = 0
    for got, want in zip(_masks(tmp_path / "aliased"), _masks(reference), strict=True):
        # the pond is 'field' now; every other pixel has the class it had
        want_names = np.array(classes.names)[want]
        ponds += (want_names == "pond").sum()
        want_names[want_names == "pond"] = "field"
        assert (np.array(aliased.names)[got] == want_names).all()
    assert ponds == 100
    # without the alias 'Field' is a class of its own: the alias did the merging
    plain = ingest_source(src, tmp_path / "plain", IngestOptions(vector_labels="labels.gpkg"))
    assert plain.names == ["background", "Field", "field", "road"]


def test_an_alias_onto_a_palette_class_names_polygons_the_palette_lacks(tmp_path):
    """A palette lists the classes (background, class_1); the polygons say 'pond': refused
    as a class outside the palette, accepted under the alias, ordered as the palette."""
    src = _polygons(tmp_path / "src")
    _write_layer(src / "labels.gpkg", [FEATURES_UTM[1]], crs=UTM)
    palette = [{"name": "background", "color": "#000000"},
               {"name": "class_1", "color": "#00A000"}]
    with pytest.raises(DataError, match="not in the palette or classes.json .*'pond'"):
        ingest_source(src, tmp_path / "refused", IngestOptions(vector_labels="labels.gpkg",
                                                               palette=palette))
    classes = ingest_source(src, tmp_path / "out", IngestOptions(
        vector_labels="labels.gpkg", palette=palette, class_aliases={"pond": "class_1"}))
    assert classes.names == ["background", "class_1"]
    assert classes.classes[1].color == "#00A000"
    assert (read_mask(tmp_path / "out", "s0") == 1).sum() == 100  # the 20 m pond


def _id_masks(root, values=(0, 1, 2), size=32):
    """Two scenes whose class-id masks hold ``values`` in vertical stripes."""
    for i in range(2):
        transform = from_origin(600000.0 + 64.0 * i, 3000000.0, 2.0, 2.0)
        write_array(root / "images" / f"c{i}.tif", make_image(size, seed=i), UTM, transform)
        stripes = np.asarray(values, np.uint8)[np.arange(size) * len(values) // size]
        write_array(root / "labels" / f"c{i}.tif", np.tile(stripes, (size, 1)), UTM, transform)
    return root


def test_id_mask_classes_are_renamed_by_their_names_and_merged(tmp_path):
    """Unnamed values are class_<value>, 0 background: class_2 aliased to class_1 merges the
    two values; names from class_names are aliased the same way."""
    src = _id_masks(tmp_path / "src")
    classes = ingest_source(src, tmp_path / "out", IngestOptions(
        class_aliases={"class_2": "class_1"}))
    assert classes.names == ["background", "class_1"]
    mask = read_mask(tmp_path / "out", "c0")
    assert (mask[:, :11] == 0).all() and (mask[:, 11:] == 1).all()
    named = ingest_source(src, tmp_path / "named", IngestOptions(
        class_names=["bg", "Tea", "tea"], class_aliases={"Tea": "tea"}))
    assert named.names == ["bg", "tea"]
    assert (read_mask(tmp_path / "named", "c0") == mask).all()


@pytest.mark.parametrize("kind", ["polygons", "ids"])
def test_an_alias_to_an_unknown_class_is_refused_before_any_scene_is_written(tmp_path, kind):
    src = (_polygons(tmp_path / "src") if kind == "polygons"
           else _id_masks(tmp_path / "src"))
    options = {"vector_labels": "labels.gpkg"} if kind == "polygons" else {}
    known = ("background, field, pond, road" if kind == "polygons"
             else "background, class_1, class_2")
    with pytest.raises(SettingError) as caught:
        ingest_source(src, tmp_path / "out", IngestOptions(
            **options, class_aliases={"road": "Road", "class_1": "Road"}))
    assert caught.value.field == "class_aliases"
    message = caught.value.named("--class-alias")
    assert message.startswith("--class-alias road -> Road, class_1 -> Road: 'Road' is not "
                              f"among the classes of the labels and their palette ({known})")
    assert "palette" in message.split("; ")[-1]
    assert not (tmp_path / "out").exists()


def test_an_alias_that_matches_no_label_class_is_a_warning_naming_the_classes(tmp_path):
    src = _polygons(tmp_path / "src")
    with pytest.warns(IngestWarning) as caught:
        classes = ingest_source(src, tmp_path / "out", IngestOptions(
            vector_labels="labels.gpkg", class_aliases={"Road": "road", "pond": "field"}))
    assert classes.names == ["background", "field", "road"]
    text = " | ".join(str(w.message) for w in caught)
    assert "class alias Road -> road matched no label class (the labels' classes: " \
           "background, field, pond, road; names are compared exactly, case included)" in text
    assert "pond -> field" not in text


@pytest.mark.parametrize("aliases, problem", [
    ({"Tea": "tea", "tea": "class_1"}, "'tea' is both a target (Tea -> tea) and an alias "
                                       "(tea -> class_1)"),
    ({"tea": " "}, "class names must not be empty"),
    ({"tea": True}, "valid string"),
])
def test_aliases_that_cannot_apply_in_one_step_are_refused_by_the_options(aliases, problem):
    with pytest.raises(ValidationError, match=re.escape(problem)):
        IngestOptions(class_aliases=aliases)


def test_numbers_in_a_yaml_mapping_are_class_names():
    """YAML reads `2: background` as a number: the class named '2' is meant."""
    assert IngestOptions(class_aliases={2: "background", "x": 10}).class_aliases == {
        "2": "background", "x": "10"}


MODEL = ClassMap(classes=[ClassInfo(id=0, name="class_0", color="#000000"),
                          ClassInfo(id=1, name="class_1", color="#E6194B"),
                          ClassInfo(id=2, name="water", color="#0000FF")])


def test_colour_masks_read_onto_a_models_classes_by_name(tmp_path):
    """A palette PNG whose classes.json names its colours 'bg' and 'Tea': aliased onto a
    model's classes, the dataset has the model's classes in its order and colours (water,
    which the labels lack, has no pixels)."""
    src = tmp_path / "src"
    (src / "images").mkdir(parents=True)
    (src / "masks").mkdir()
    for i in range(2):
        Image.fromarray(np.full((32, 32, 3), 100 + i, np.uint8)).save(src / "images" / f"p{i}.png")
        mask = Image.fromarray(np.where(np.arange(32) < 12, 0, 1).astype(np.uint8)[None]
                               .repeat(32, 0), mode="P")
        mask.putpalette([0, 0, 0, 0, 160, 0])
        mask.save(src / "masks" / f"p{i}.png")
    (src / "classes.json").write_text(json.dumps({"classes": [
        {"name": "bg", "color": "#000000"}, {"name": "Tea", "color": "#00A000"}]}))
    classes = ingest_source(src, tmp_path / "out", IngestOptions(
        class_aliases={"bg": "class_0", "Tea": "class_1"}), model_classes=MODEL)
    assert classes == MODEL
    mask = read_mask(tmp_path / "out", "p0")
    assert (mask[:, :12] == 0).all() and (mask[:, 12:] == 1).all()


def test_a_label_class_the_model_lacks_is_named_with_the_alias_that_would_map_it(tmp_path):
    """Polygons 'pond', 'road', 'field' aliased in part: each class still unknown to the
    model is named, the uncovered ground said as such, a name that differs by case offered,
    and the alias that matched nothing (the usual typo) mentioned; nothing is written."""
    src = _polygons(tmp_path / "src", {"road": "Water"})
    with pytest.raises(SettingError) as caught:
        ingest_source(src, tmp_path / "out", IngestOptions(
            vector_labels="labels.gpkg", class_aliases={"Pond": "class_1", "field": "class_1"}),
            model_classes=MODEL)
    message = caught.value.named("--class-alias")
    # The uncovered ground is the model's class_0 (see the next test), so not named here.
    assert message == (
        "label classes 'Water', 'pond' are not among the model's classes (class_0, class_1, "
        "water); map each onto one: --class-alias Water=water --class-alias pond=<class> "
        "(the class alias Pond -> class_1 matched no label class; names are compared "
        "exactly, case included)")
    assert not (tmp_path / "out").exists()
    with pytest.raises(SettingError) as caught:
        ingest_source(src, tmp_path / "out", IngestOptions(vector_labels="labels.gpkg"),
                      model_classes=ClassMap(classes=[ClassInfo(id=0, name="water",
                                                                color="#0000FF")]))
    assert caught.value.named("--class-alias").startswith(
        "label classes 'background' (the ground no polygon covers), 'Water', ")


def test_unnamed_value_0_is_background_unless_something_names_it(tmp_path):
    """Value 0 of class-id masks that nothing names is background, as the ground polygons
    leave uncovered; ignored, it is no class; a classes.json naming another value background
    leaves it class_0 (one background); class_names name it."""
    src = _id_masks(tmp_path / "src")
    assert ingest_source(src, tmp_path / "a", IngestOptions()).names == [
        "background", "class_1", "class_2"]
    assert ingest_source(src, tmp_path / "b", IngestOptions(ignore_values=[0])).names == [
        "class_1", "class_2"]
    (src / "classes.json").write_text(json.dumps([{"name": "background", "value": 2},
                                                  {"name": "tea", "value": 1}]))
    assert ingest_source(src, tmp_path / "c", IngestOptions(
        class_values={0: 0, 1: 1, 2: 2})).names == ["class_0", "tea", "background"]
    (src / "classes.json").unlink()
    assert ingest_source(src, tmp_path / "d", IngestOptions(
        class_names=["ground", "a", "b"])).names == ["ground", "a", "b"]


def test_aliases_written_for_class_0_apply_to_its_new_name(tmp_path):
    """A config of older segpipe naming unnamed value 0 class_0, as a source or a target,
    means background: the same classes and masks as the config saying background."""
    src = _id_masks(tmp_path / "src")
    old = ingest_source(src, tmp_path / "old", IngestOptions(
        class_aliases={"class_0": "class_1"}))
    assert old.names == ["class_1", "class_2"]
    merged = ingest_source(src, tmp_path / "merged", IngestOptions(
        class_aliases={"class_2": "class_0"}))
    assert merged.names == ["background", "class_1"]
    assert set(np.unique(read_mask(tmp_path / "merged", "c0"))) == {0, 1}
    assert (read_mask(tmp_path / "merged", "c0")[:, 22:] == 0).all()  # value 2 is now 0


OLD_MODEL = ClassMap(classes=[ClassInfo(id=0, name="class_0", color="#000000"),
                              ClassInfo(id=1, name="class_1", color="#E6194B"),
                              ClassInfo(id=2, name="class_2", color="#3CB44B")])


def test_id_masks_read_onto_a_model_of_older_segpipe_whose_background_is_class_0(tmp_path):
    """A model registered when unnamed value 0 was class_0: the labels' background is its
    class_0, with no alias, and the masks are those read without a model."""
    src = _id_masks(tmp_path / "src")
    plain = ingest_source(src, tmp_path / "plain", IngestOptions())
    classes = ingest_source(src, tmp_path / "out", IngestOptions(), model_classes=OLD_MODEL)
    assert classes.names == ["class_0", "class_1", "class_2"]
    assert plain.names == ["background", "class_1", "class_2"]
    for scene in ("c0", "c1"):
        assert (read_mask(tmp_path / "out", scene) == read_mask(tmp_path / "plain", scene)).all()

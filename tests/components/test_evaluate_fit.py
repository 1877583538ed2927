"""Whether data fits a logged model, from its serving config alone: classes by name and in
order, bands, tiling and resolution, class aliases; each refusal one line naming the data."""

import pytest

from components.evaluate_fit import check_alias_targets, check_fits, check_tiling
from components.evaluate_options import EvaluationInputError
from components.ingest_options import IngestOptions
from tests.components.conftest import BANDS, TILE
from tests.serving.conftest import make_config

MODEL = "models:/m/1"


def config(**overrides):
    return make_config(class_names=["background", "tea", "water"], patch_size=TILE,
                       **overrides)


def test_classes_fit_by_name_in_order_older_class_0_as_background():
    check_fits(config(), MODEL, "data", ["class_0", "tea", "water"], BANDS)
    with pytest.raises(EvaluationInputError) as caught:
        check_fits(config(), MODEL, "data", ["background", "water", "tea"], BANDS)
    assert str(caught.value).startswith(
        "data does not fit the model models:/m/1: the model predicts 3 classes (background, "
        "tea, water) from 4 bands, the data has 3 classes (background, water, tea) and 4 bands")
    assert "--class-alias" in str(caught.value)
    with pytest.raises(EvaluationInputError, match=r"and 3 bands$"):  # classes fit: no advice
        check_fits(config(), MODEL, "data", ["background", "tea", "water"], BANDS - 1)


def test_tiles_fit_at_the_models_window_and_resolution(tiny_dataset):
    check_tiling(config(), tiny_dataset, "data")
    with pytest.raises(EvaluationInputError, match=(
            f"^data is tiled {TILE} px at scale 1.0, the model takes windows of {TILE} px at "
            "0.5 m per pixel: ")):
        check_tiling(config(gsd=0.5), tiny_dataset, "data")
    with pytest.raises(EvaluationInputError, match="the model takes windows of 64 px"):
        check_tiling(make_config(patch_size=64), tiny_dataset, "data")


def test_an_alias_onto_no_class_of_the_model_is_refused_naming_the_flag():
    check_alias_targets(config(), MODEL, "src", IngestOptions(class_aliases={"field": "tea"}))
    with pytest.raises(EvaluationInputError) as caught:
        check_alias_targets(config(), MODEL, "src",
                            IngestOptions(class_aliases={"field": "cloud"}))
    assert str(caught.value).startswith("src does not fit the model models:/m/1: ")
    assert "--class-alias" in str(caught.value) and "\n" not in str(caught.value)

import pytest
from pydantic import ValidationError

from serving.config import ServingConfig
from tests.serving.conftest import make_config


def test_round_trip_through_json(tmp_path):
    config = make_config(overlap=0.25)
    config.save(tmp_path / "serving.json")
    assert ServingConfig.load(tmp_path / "serving.json") == config


def test_color_table_has_classes_and_transparent_ignore():
    table = make_config().color_table()
    assert table[1] == (0, 0xA0, 0, 255)
    assert table[255] == (0, 0, 0, 0)


@pytest.mark.parametrize(("overrides", "message"), [
    ({"class_names": ["a", "b"]}, "class_names has 2"),
    ({"class_colors": ["#000000", "#FFFFFF", "red"]}, "'red' is not #RRGGBB"),
    ({"mean": [0.0]}, "mean has 1"),
    ({"patch_size": 30}, "not a multiple of model_stride"),
    ({"overlap": 0.9}, "overlap"),
    ({"ignore_index": 1}, "ignore_index 1"),
])
def test_inconsistent_config_names_the_field(overrides, message):
    with pytest.raises(ValidationError, match=message):
        make_config(**overrides)


def test_serving_options_are_the_configs_knobs_with_their_defaults():
    from serving.config import ServingOptions

    options = ServingOptions(overlap=0.25)
    config = make_config(**options.model_dump())
    assert (config.overlap, config.batch_size, config.max_pixels) == (
        0.25, ServingOptions().batch_size, ServingOptions().max_pixels)
    with pytest.raises(ValidationError, match="overlpa"):
        ServingOptions(overlpa=0.3)


@pytest.mark.parametrize(("overrides", "message"), [
    ({"scale": 0}, "scale"), ({"scale": 20}, "scale"), ({"gsd": -1.0}, "gsd")])
def test_resolution_fields_are_checked(overrides, message):
    with pytest.raises(ValidationError, match=message):
        make_config(**overrides)


@pytest.mark.parametrize(("value", "kept"), [("int16", "int16"), ("<u2", "uint16"),
                                             ("float32", "float32")])
def test_input_dtype_is_a_canonical_numeric_dtype(value, kept):
    assert make_config(input_dtype=value).input_dtype == kept


@pytest.mark.parametrize(("value", "message"), [("object", "not a real number type"),
                                                ("complex64", "not a real number type"),
                                                ("pixels", "not a numpy dtype")])
def test_input_dtype_that_is_no_pixel_type_is_refused(value, message):
    with pytest.raises(ValidationError, match=message):
        make_config(input_dtype=value)

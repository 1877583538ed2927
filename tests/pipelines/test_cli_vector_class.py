"""`segpipe prepare` on building footprints without a class field (SpaceNet's GeoJSON):
--vector-class names their one class, the error without it advises it, and the config's
data.ingest.vector_class makes the same dataset as the Kubeflow ingest task reads it."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from typer.testing import CliRunner

from components.artifacts import ClassMap
from components.ingest import ingest_source
from components.ingest_options import IngestOptions
from components.raster import SettingError
from components.survey import IngestWarning
from pipelines.cli import app
from pipelines.cli.flags import setting_named
from pipelines.config import load_config
from pipelines.step_options import step_options
from tests.components.test_vector_class import footprint_tiles

SPACENET = ["--image-dir", "MUL", "--mask-dir", "geojson/buildings"]


def _prepare(source, out, *flags: str):
    with pytest.warns(IngestWarning):  # the empty tile's
        return CliRunner().invoke(app, ["prepare", str(source), str(out), *SPACENET, *flags,
                                        "--patch-size", "32", "--allow-empty-splits"])


def test_without_a_class_field_prepare_advises_vector_class_and_takes_it(tmp_path):
    source = footprint_tiles(tmp_path / "data")
    result = CliRunner().invoke(app, ["prepare", str(source), str(tmp_path / "bare"),
                                      *SPACENET])
    assert result.exit_code == 1, result.output
    assert ("its fields are building_id, partialBuilding: set --class-attribute to the field "
            "that holds the class, or --vector-class to a class name if every polygon is of "
            "one class") in " ".join(result.output.split()), result.output
    result = _prepare(source, tmp_path / "cli", "--vector-class", "building")
    assert result.exit_code == 0, result.output
    from_cli = ClassMap.load(tmp_path / "cli" / "classes.json")
    assert from_cli.names == ["background", "building"]
    # The Kubeflow task gets the section with every default written out (class_attribute
    # too): that is no second way to the classes.
    (tmp_path / "run.yaml").write_text(
        "source: data\ndata:\n  ingest:\n    image_dir: MUL\n    mask_dir: geojson/buildings\n"
        "    vector_class: building\n")
    section = load_config(tmp_path / "run.yaml").data.ingest.model_dump(mode="json",
                                                                          exclude_none=True)
    assert section["class_attribute"] == "class"
    with pytest.warns(IngestWarning):
        ingest_source(str(source), tmp_path / "kfp", step_options(IngestOptions, section))
    assert ClassMap.load(tmp_path / "kfp" / "classes.json") == from_cli
    for mask in (tmp_path / "cli" / "scenes").glob("*_mask.tif"):
        with rasterio.open(mask) as cli, rasterio.open(tmp_path / "kfp/scenes" / mask.name) as kfp:
            assert np.array_equal(cli.read(1), kfp.read(1))


def test_vector_class_with_a_class_attribute_is_refused_naming_both_flags(tmp_path):
    source = footprint_tiles(tmp_path / "data")
    result = CliRunner().invoke(app, ["prepare", str(source), str(tmp_path / "out"), *SPACENET,
                                      "--vector-class", "building", "--class-attribute", "kind"])
    assert result.exit_code != 0
    text = " ".join(result.output.split())
    assert ("data.ingest.vector_class: 'building' makes every polygon one class, but "
            "class_attribute 'kind' reads each polygon's class from a field: set one of them, "
            "not both (--vector-class)") in text, text
    assert not (tmp_path / "out").exists()


def test_a_config_names_both_settings_by_their_place_in_it(tmp_path):
    source = footprint_tiles(tmp_path / "data")
    with pytest.raises(SettingError) as caught:
        ingest_source(source, tmp_path / "out", IngestOptions(image_dir="MUL",
                                                              mask_dir="geojson/buildings"))
    named = setting_named(caught.value, {"ingest": IngestOptions}, as_flag=False,
                          prefix="data")
    assert "set data.ingest.class_attribute to the field that holds the class, or " \
           "data.ingest.vector_class to a class name" in named, named

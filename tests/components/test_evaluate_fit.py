"""Whether data fits a logged model, from its serving config alone: classes by name and in
order, bands, tiling and resolution, class aliases; each refusal one line naming the data."""

import shutil
import warnings
from pathlib import Path

import mlflow
import numpy as np
import pytest
import rasterio

from components.dataset_paths import PreparedDataset
from components.evaluate_fit import check_alias_targets, check_fits, check_tiling
from components.evaluate_logged import evaluate_logged_model, prepare_source
from components.evaluate_options import EvaluateOptions, EvaluationInputError
from components.ingest_options import IngestOptions
from components.raster import write_array
from components.survey import IngestWarning
from serving.remote import load_serving_config
from tests.components.conftest import BANDS, TILE
from tests.logged_models import register_known_model, save_known_model
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


def _nodata_source(dataset: PreparedDataset, source: Path) -> Path:
    """The dataset's scenes with int16 labels: -1 (Sen1Floods11's unlabelled), 0, 1 and 7
    in stripes, no nodata declared."""
    for path in dataset.scenes_dir.glob("*_image.tif"):
        with rasterio.open(path) as image:
            shape, crs, transform = image.shape, image.crs, image.transform
        shutil.copy(path, source / "images" / path.name.replace("_image", ""))
        labels = np.resize(np.array([-1, 0, 1, 7], np.int16).repeat(8), shape[1])
        write_array(source / "masks" / path.name.replace("_image", ""),
                    np.broadcast_to(labels, shape).copy(), crs, transform)
    return source


@pytest.mark.usefixtures("mlflow_store")
def test_label_values_that_look_like_nodata_are_advised_ignored_not_aliased(tiny_dataset,
                                                                          tmp_path):
    """A negative label value, or one the model's training ignored (its run's
    data.ingest.ignore_values), is no class to map onto the model's: the advice is
    --ignore-values for those, --class-alias for the rest; following it fits."""
    mlflow.set_experiment("evaluate-fit")
    uri = register_known_model(save_known_model(tmp_path / "model"), tiny_dataset,
                               "eval-nodata")
    run_id = mlflow.MlflowClient().get_model_version("eval-nodata", "1").run_id
    mlflow.MlflowClient().log_param(run_id, "data.ingest.ignore_values", "[7]")
    for folder in ("images", "masks"):
        (tmp_path / "src" / folder).mkdir(parents=True)
    source = _nodata_source(tiny_dataset, tmp_path / "src")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IngestWarning)  # the ingest's own line on -1
        with pytest.raises(EvaluationInputError) as caught:
            evaluate_logged_model(uri, str(source), tmp_path / "eval", EvaluateOptions(),
                                  IngestOptions())
    assert str(caught.value) == (
        f"{source} does not fit the model {uri}: label classes 'class_-1', 'class_1', "
        "'class_7' are not among the model's classes (background, tea, water); class_-1 (a "
        "negative value, almost always nodata) and class_7 (ignored in the model's "
        "training) are no classes to map: ignore them with --ignore-values -1,7; map "
        "class_1 onto one: --class-alias class_1=<class>")
    followed = IngestOptions(ignore_values=[-1, 7], class_aliases={"class_1": "tea"})
    dataset = prepare_source(str(source), tmp_path / "followed", load_serving_config(uri),
                             uri, followed)
    assert dataset.class_map.names == ["background", "tea", "water"]


def _stripes_source(dataset: PreparedDataset, source: Path, values: list[int]) -> Path:
    for folder in ("images", "masks"):
        (source / folder).mkdir(parents=True)
    for path in dataset.scenes_dir.glob("*_image.tif"):
        with rasterio.open(path) as image:
            shape, crs, transform = image.shape, image.crs, image.transform
        shutil.copy(path, source / "images" / path.name.replace("_image", ""))
        labels = np.resize(np.array(values, np.int16).repeat(8), shape[1])
        write_array(source / "masks" / path.name.replace("_image", ""),
                    np.broadcast_to(labels, shape).copy(), crs, transform)
    return source


@pytest.mark.usefixtures("mlflow_store")
def test_a_value_the_training_ignored_is_advised_whatever_its_name_and_model_uri(
        tiny_dataset, tmp_path):
    """LoveDA-style: the training ignored 0 (no data), and the ingest names a source's 0
    ``background``, a class of the model: advised ignored all the same, by its raw value,
    in the error when one is raised and as a warning when not (else its pixels are scored
    as background without a word); a ``runs:/`` URI reads the training's values as a
    ``models:/`` one does."""
    mlflow.set_experiment("evaluate-fit-ignored")
    uri = register_known_model(save_known_model(tmp_path / "model"), tiny_dataset,
                               "eval-ignored")
    run_id = mlflow.MlflowClient().get_model_version("eval-ignored", "1").run_id
    mlflow.MlflowClient().log_param(run_id, "data.ingest.ignore_values", "[0, 7]")
    source = _stripes_source(tiny_dataset, tmp_path / "src", [0, 1, 7])
    for model_uri in (uri, f"runs:/{run_id}/model"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", IngestWarning)
            with pytest.raises(EvaluationInputError) as caught:
                evaluate_logged_model(model_uri, str(source), tmp_path / "eval",
                                      EvaluateOptions(log_to_mlflow=False), IngestOptions())
        assert str(caught.value).endswith(
            ": label classes 'class_1', 'class_7' are not among the model's classes "
            "(background, tea, water); class_7 (ignored in the model's training) and "
            "background (value 0, ignored in the model's training) are no classes to map: "
            "ignore them with --ignore-values 0,7; map class_1 onto one: --class-alias "
            "class_1=<class>"), (model_uri, str(caught.value))
    config = load_serving_config(uri)
    with pytest.warns(IngestWarning) as said:
        prepare_source(str(source), tmp_path / "half", config, uri,
                       IngestOptions(ignore_values=[7], class_aliases={"class_1": "tea"}),
                       run_id)
    assert ("label value 0 (background) was ignored in the model's training: if it marks no "
            "data here too, ignore it with ingest.ignore_values: [0] (--ignore-values 0); "
            "else it is scored as background") in [str(w.message) for w in said]

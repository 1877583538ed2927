"""Scoring a logged model on a labelled dataset (segpipe evaluate's component): the same
figures as the pipeline's evaluation of the same network, the model's own statistics, and
mismatches refused before the model loads."""

import json
import shutil
import tempfile
from pathlib import Path

import mlflow
import numpy as np
import pytest
import rasterio

from components.artifacts import ClassMap, NormStats, SplitManifest
from components.dataset_paths import PreparedDataset
from components.evaluate import evaluate_model
from components.evaluate_logged import TAG_DATA, TAG_MODEL, TAG_VERSION, evaluate_logged_model
from components.evaluate_options import EvaluateOptions, EvaluationInputError
from components.ingest_options import IngestOptions
from components.raster import write_array
from components.survey import IngestWarning
from components.trivial_baseline import FROM_LABELS, FROM_MODEL, QualityWarning, trivial_miou
from tests.components.conftest import scenes_as_source
from tests.logged_models import register_known_model, save_known_model

pytestmark = pytest.mark.usefixtures("mlflow_store")


@pytest.fixture(scope="module")
def known(tiny_dataset, tmp_path_factory, mlflow_uri):
    """The known model's folder and its registered URI (statistics of tiny_dataset)."""
    mlflow.set_tracking_uri(mlflow_uri)
    mlflow.set_experiment("evaluate-logged")
    folder = save_known_model(tmp_path_factory.mktemp("known") / "model")
    return folder, register_known_model(folder, tiny_dataset, "eval-known")


@pytest.fixture(scope="module")
def unloadable(tiny_dataset, tmp_path_factory, mlflow_uri):
    """A registered model whose network files were removed from the store after logging: its
    serving config reads, the model itself no longer loads, so a refusal of the data rather
    than a load error shows the data was checked first."""
    mlflow.set_tracking_uri(mlflow_uri)
    mlflow.set_experiment("evaluate-logged")
    folder = save_known_model(tmp_path_factory.mktemp("unloadable") / "model")
    uri = register_known_model(folder, tiny_dataset, "eval-unloadable")
    source = mlflow.MlflowClient().get_model_version("eval-unloadable", "1").source
    location = Path(mlflow.get_logged_model(source.removeprefix("models:/")).artifact_location
                    .removeprefix("file://"))
    networks = [p for p in location.rglob("*") if p.suffix in (".keras", ".bin", ".xml")]
    assert networks, f"no network files under {location}"
    for path in networks:
        path.unlink()
    try:
        mlflow.pyfunc.load_model(uri)
    except Exception:  # whichever error the loader gives for a missing network file
        return uri
    pytest.fail("the model still loads without its network files")


def _copy(dataset: PreparedDataset, folder) -> PreparedDataset:
    shutil.copytree(dataset.root, folder)
    return PreparedDataset(folder)


def test_a_logged_model_scores_as_the_pipeline_scores_it(tiny_dataset, known, tmp_path,
                                                         monkeypatch):
    folder, uri = known
    monkeypatch.setenv("SEGPIPE_RUNTIME", "keras")  # the pipeline's runtime: equal to the bit
    pipeline = evaluate_model(folder, tiny_dataset, tmp_path / "pipeline", batch_size=8,
                              overlay_tiles=0, log_to_mlflow=False)
    result = evaluate_logged_model(uri, str(tiny_dataset.root), tmp_path / "logged",
                                   EvaluateOptions(log_to_mlflow=True, overlay_tiles=1))
    assert result.confusion_matrix == pipeline.confusion_matrix
    assert result.tile_confusion_matrix == pipeline.tile_confusion_matrix
    assert result.split_digest == pipeline.split_digest and result.model_uri == uri
    saved = json.loads((tmp_path / "logged/metrics.json").read_text())
    assert saved["metrics"]["miou"] == pytest.approx(pipeline.metrics["miou"])
    assert f"from {uri}" in (tmp_path / "logged/report.md").read_text()
    # An evaluation run tagged with the version and data, its metrics on the logged model.
    run = mlflow.get_run(result.mlflow_run_id)
    assert run.data.tags[TAG_MODEL] == "eval-known" and run.data.tags[TAG_VERSION] == "1"
    assert run.data.tags["segpipe.dataset_digest"] == tiny_dataset.digest()
    assert run.data.tags[TAG_DATA] == str(tiny_dataset.root)
    assert run.data.metrics["test_miou"] == pytest.approx(result.metrics["miou"])
    version = mlflow.MlflowClient().get_model_version("eval-known", "1")
    logged = mlflow.get_logged_model(version.model_id or version.source[len("models:/"):])
    linked = [m for m in logged.metrics if m.run_id == run.info.run_id and m.key == "test_miou"]
    # Linked to the data scored, not only to the model: other data's figures stay apart.
    assert [(m.dataset_name, m.dataset_digest) for m in linked] == [
        (tiny_dataset.root.name, tiny_dataset.digest()[:32])]


def test_the_models_statistics_not_the_datasets(tiny_dataset, known, tmp_path):
    """A dataset whose stats.json would shift every prediction scores the same: the model
    normalizes with its own statistics."""
    _, uri = known
    other = _copy(tiny_dataset, tmp_path / "other")
    stats = NormStats.load(other.stats)
    stats.bands[0].mean += 10 * stats.bands[0].std
    stats.save(other.stats)
    first = evaluate_logged_model(uri, str(tiny_dataset.root), tmp_path / "a",
                                  EvaluateOptions(overlay_tiles=0))
    second = evaluate_logged_model(uri, str(other.root), tmp_path / "b",
                                   EvaluateOptions(overlay_tiles=0))
    assert second.confusion_matrix == first.confusion_matrix


def _source(dataset: PreparedDataset, source: Path, label: int | None = None) -> Path:
    """The dataset's scenes as a source (images/, masks/, classes.json); with ``label``,
    every labelled pixel of the masks is that class."""
    for kind, folder in (("image", "images"), ("mask", "masks")):
        (source / folder).mkdir(parents=True)
        for path in dataset.scenes_dir.glob(f"*_{kind}.tif"):
            target = source / folder / path.name.replace(f"_{kind}", "")
            shutil.copy(path, target)
            if kind == "mask" and label is not None:
                with rasterio.open(target, "r+") as mask:
                    values = mask.read(1)
                    mask.write(np.where(values == 255, 255, label).astype(values.dtype), 1)
    shutil.copy(dataset.classes, source / "classes.json")
    return source


SOURCE_INGEST = IngestOptions(palette="classes.json", ignore_values=[255])


def test_a_source_is_tiled_the_models_way_and_scored_whole(tiny_dataset, known, tmp_path):
    _, uri = known
    source = _source(tiny_dataset, tmp_path / "source")
    result = evaluate_logged_model(uri, str(source), tmp_path / "eval",
                                   EvaluateOptions(overlay_tiles=0),
                                   IngestOptions(palette="classes.json", ignore_values=[255]))
    labelled = 0
    for path in tiny_dataset.scenes_dir.glob("*_mask.tif"):
        with rasterio.open(path) as mask:
            labelled += int((mask.read(1) != 255).sum())
    assert result.split == "test" and result.scene_count == 3
    assert result.pixel_count == labelled  # every labelled pixel of every scene


def test_a_source_whose_labels_cover_part_of_their_scenes_is_scored_on_that_part(
        tiny_dataset, known, tmp_path):
    """Labels digitised over the left half of each scene: the half they leave uncovered is
    not scored (as background or anything), and the scoring says so."""
    _, uri = known
    source = _source(tiny_dataset, tmp_path / "source")
    labelled = 0
    for path in (source / "masks").glob("*.tif"):
        with rasterio.open(path) as mask:
            left = mask.read(1)[:, :mask.width // 2]
            crs, transform = mask.crs, mask.transform
        write_array(path, left, crs, transform)
        labelled += int((left != 255).sum())
    with pytest.warns(IngestWarning, match=r"^3 scenes' labels cover only part of their "
                      r"image: 6,144 of their images' 12,288 pixels \(50\.0%\) lie outside their "
                      r"labels and are ignored \(never trained on or scored\); most in "
                      r"\S+scene\d\.tif \(50% of its image\)$"):
        result = evaluate_logged_model(uri, str(source), tmp_path / "eval",
                                       EvaluateOptions(overlay_tiles=0), SOURCE_INGEST)
    assert result.scene_count == 3
    assert 0 < result.pixel_count == labelled  # the labelled halves' pixels, no more


def test_a_source_is_read_against_the_models_own_training_majority(tiny_dataset, known,
                                                                  tmp_path):
    """A source has no train split: its trivial baseline answers the class registration
    recorded as the model's training majority (background in tiny_dataset), not the
    source's own (water, every labelled pixel here), and the report says which."""
    _, uri = known
    from serving.remote import load_serving_config

    assert load_serving_config(uri).train_majority_class == "background"
    result = evaluate_logged_model(uri, str(_source(tiny_dataset, tmp_path / "src", 2)),
                                   tmp_path / "eval", EvaluateOptions(overlay_tiles=0),
                                   SOURCE_INGEST)
    assert result.majority_class == "background"
    assert result.majority_origin == FROM_MODEL
    cm = np.asarray(result.confusion_matrix)
    assert result.metrics["trivial_miou"] == pytest.approx(trivial_miou(cm, 0)) == 0.0
    assert "tile_trivial_miou" in result.metrics
    report = (tmp_path / "eval/report.md").read_text()
    assert ("Trivial baseline: background everywhere (the majority class of the model's "
            "train split).") in report
    assert f"| {result.metrics['tile_miou']:.4f} | 0.0000 |" in report  # tile, trivial mIoU


@pytest.fixture(scope="module")
def older(tiny_dataset, tmp_path_factory, mlflow_uri):
    """The known model logged as segpipe did before it recorded the training majority."""
    from components.artifacts import TrainedModelInfo
    from components.register import RegisterOptions, serving_config
    from serving.pyfunc import log_segmentation_model

    mlflow.set_tracking_uri(mlflow_uri)
    mlflow.set_experiment("evaluate-logged")
    folder = save_known_model(tmp_path_factory.mktemp("older") / "model")
    config = serving_config(TrainedModelInfo.load(folder / "model.json"), tiny_dataset,
                            RegisterOptions()).model_copy(update={"train_majority_class": None})
    with mlflow.start_run(run_name="register"):
        logged = log_segmentation_model(folder / "model.keras", config,
                                        registered_model_name="eval-older")
    return f"models:/eval-older/{logged.registered_model_version}"


def test_a_model_that_records_no_training_majority_is_read_against_the_labels_majority(
        tiny_dataset, older, tmp_path):
    """Every labelled pixel water: "water everywhere" scores IoU 1 on water and 0 on each
    class the model (never water-only) predicts wrongly, averaged over the same classes as
    the model's mIoU, which does not beat it; the same one-line warning as on a prepared
    dataset, saying where the baseline's class came from."""
    source = _source(tiny_dataset, tmp_path / "src", 2)
    with pytest.warns(QualityWarning) as caught:
        result = evaluate_logged_model(older, str(source), tmp_path / "eval",
                                       EvaluateOptions(overlay_tiles=0), SOURCE_INGEST)
    assert (result.majority_class, result.majority_origin) == ("water", FROM_LABELS)
    counted = (np.sum(result.confusion_matrix, axis=0) + np.sum(result.confusion_matrix,
                                                                axis=1) > 0).sum()
    trivial = 1.0 / counted
    assert result.metrics["trivial_miou"] == pytest.approx(trivial)
    assert result.metrics["miou"] < trivial
    lines = [str(w.message) for w in caught if issubclass(w.category, QualityWarning)]
    assert (f"test split: mIoU {result.metrics['miou']:.4f} does not beat the trivial baseline "
            f"{trivial:.4f} ('water' everywhere, majority of the scored labels; the model does "
            "not record its training majority); the model is no better than answering 'water'"
            ) in lines
    saved = json.loads((tmp_path / "eval/metrics.json").read_text())
    assert saved["metrics"]["trivial_miou"] == pytest.approx(trivial)
    assert saved["majority_origin"] == FROM_LABELS


@pytest.mark.parametrize("change, message", [
    ("classes", "the model predicts 3 classes (background, tea, water) from 4 bands, the "
                "data has 4 classes (background, tea, water, cloud) and 4 bands"),
    ("tiling", "is tiled 16 px at scale 1.0, the model takes windows of 32 px at scale 1.0"),
    ("empty", "the test split has no tiles to score (tiles per split: train 6, val 6, "
              "test 0)"),
])
def test_a_mismatch_or_an_empty_split_is_refused_before_the_model_loads(
        tiny_dataset, unloadable, tmp_path, change, message):
    uri = unloadable
    data = _copy(tiny_dataset, tmp_path / "data")
    if change == "classes":
        classes = json.loads(data.classes.read_text())
        classes["classes"].append({"id": 3, "name": "cloud", "color": "#FFFFFF"})
        data.classes.write_text(json.dumps(classes))
    elif change == "tiling":
        manifest = json.loads(data.tiles_manifest.read_text())
        data.tiles_manifest.write_text(json.dumps({**manifest, "patch_size": 16}))
    else:
        split = SplitManifest.load(data.split)
        split.splits["val"] += split.splits["test"]
        split.splits["test"] = []
        split.save(data.split)
    with pytest.raises(EvaluationInputError, match="^" + str(data.root)) as caught:
        evaluate_logged_model(uri, str(data.root), tmp_path / "eval")
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert not (tmp_path / "eval").exists()


@pytest.fixture(scope="module")
def tea_model(tea_plantations, tmp_path_factory, mlflow_uri):
    """The known model registered with the classes and statistics of the real tea chips
    prepared as they come: the id masks' 0/1 are named background, class_1, as a `segpipe
    run` on them names its model's classes. Its prepared dataset and URI."""
    from components.prepare import PrepareOptions, prepare_dataset

    mlflow.set_tracking_uri(mlflow_uri)
    mlflow.set_experiment("evaluate-logged")
    root = tmp_path_factory.mktemp("tea")
    prepare_dataset(tea_plantations, root / "prepared", PrepareOptions.model_validate(
        {"tile": {"patch_size": 64}, "split": {"strategy": "block", "block_size": 128}}))
    dataset = PreparedDataset(root / "prepared")
    folder = save_known_model(root / "model", classes=2, patch_size=64)
    return dataset, register_known_model(folder, dataset, "eval-tea")


@pytest.fixture(scope="module")
def tea_old_model(tea_model, tmp_path_factory, mlflow_uri):
    """The same network registered as older segpipe registered it, its classes class_0 and
    class_1 (value 0 was class_0 then): its URI."""
    dataset, _ = tea_model
    mlflow.set_tracking_uri(mlflow_uri)
    mlflow.set_experiment("evaluate-logged")
    root = tmp_path_factory.mktemp("tea-old")
    old = _copy(dataset, root / "prepared")
    classes = ClassMap.load(old.classes)
    classes.classes[0].name = "class_0"
    classes.save(old.classes)
    folder = save_known_model(root / "model", classes=2, patch_size=64)
    return register_known_model(folder, PreparedDataset(old.root), "eval-tea-old")


def test_tea_plantations_as_a_source(tea_plantations, tea_model, tmp_path):
    """Real int16 4-band chips with 0/1 labels, ingested and tiled for a model with the
    classes auto-detection names them by (value 0 background, as polygons name the ground
    they leave uncovered); the scores cover every labelled pixel once."""
    dataset, uri = tea_model
    assert dataset.class_map.names == ["background", "class_1"]
    result = evaluate_logged_model(uri, str(tea_plantations), tmp_path / "eval",
                                   EvaluateOptions(overlay_tiles=0))
    # The half-overlapping chips hold 311296 px of ground; where two of them hold one 64 px
    # cell with a label that differs (one pixel), both count it, as both keep that tile.
    assert result.scene_count == 11 and result.pixel_count == 311296 + 64 * 64
    assert result.pixel_count + result.repeated_pixels_skipped == 11 * 256 * 256
    # One split: every repeated pixel is scored with the earlier chip that holds it.
    assert result.repeated_pixels_scored_earlier == result.repeated_pixels_skipped == 405504
    assert result.repeated_pixels_other_split == 0
    # Tiles of the half-overlapping chips that hold the same ground with the same pixels are
    # scored once: 176 tiles, 99 of them identical to others.
    assert result.tile_count == 11 * 16 - 99 and result.class_names == dataset.class_map.names
    assert 0 <= result.metrics["miou"] <= 1 and np.isfinite(result.metrics["tile_miou"])


#: Tea chips that do not overlap: the chips are 256 px (512 m) wide but lie 256 m apart, so
#: each overlaps its neighbours by half, and their masks disagree there (one says tea where
#: the next says background), which one layer of polygons cannot say.
TEA_APART = ("000000000000", "000000000002", "000000000009")


def _tea_sources(tea_plantations: Path, root: Path) -> tuple[Path, Path]:
    """Chips that do not overlap, as they come (id masks: 0 background, 1 tea) and with their
    labels digitised as polygons: one GeoPackage in the chips' CRS whose 'class' is 'tea'
    where the masks say 1 (the ground no polygon covers is background). The outlines run an
    eighth of a pixel inside the pixel edges, clear of the rasterizer's ties."""
    import pyogrio
    import shapely
    from rasterio.features import shapes

    masks, polygons = root / "masks", root / "polygons"
    for folder in (masks / "images", masks / "labels", polygons / "images"):
        folder.mkdir(parents=True)
    geometries, crs = [], None
    for stem in TEA_APART:
        image = tea_plantations / "images" / f"{stem}.tif"
        shutil.copy(image, masks / "images" / image.name)
        shutil.copy(image, polygons / "images" / image.name)
        shutil.copy(tea_plantations / "labels" / image.name, masks / "labels" / image.name)
        with rasterio.open(tea_plantations / "labels" / image.name) as labels:
            crs, inset = labels.crs, -labels.res[0] / 8
            geometries += [shapely.buffer(shapely.geometry.shape(outline), inset,
                                          join_style="mitre")
                           for outline, value in shapes(labels.read(1),
                                                        transform=labels.transform)
                           if value == 1]
    pyogrio.raw.write(polygons / "labels.gpkg", shapely.to_wkb(geometries),
                      field_data=[np.array(["tea"] * len(geometries), dtype=object)],
                      fields=["class"], crs=crs.to_string(), geometry_type="Unknown",
                      promote_to_multi=False)
    return masks, polygons


def test_tea_polygons_aliased_onto_the_models_classes_score_as_the_id_masks(
        tea_plantations, tea_model, tea_old_model, tmp_path):
    """A colleague's polygons of class 'tea' against the model whose classes are background
    and class_1: refused without an alias (naming the label class and the flag), and under
    --class-alias tea=class_1, the same pixels and scores as the id masks they were drawn
    from; the same against the model of older segpipe whose background is class_0 (the
    uncovered ground is that class without an alias)."""
    _, uri = tea_model
    masks, polygons = _tea_sources(tea_plantations, tmp_path / "sources")
    expected = evaluate_logged_model(uri, str(masks), tmp_path / "masks",
                                     EvaluateOptions(overlay_tiles=0))
    with pytest.raises(EvaluationInputError) as caught:
        evaluate_logged_model(uri, str(polygons), tmp_path / "refused", EvaluateOptions(),
                              IngestOptions(vector_labels="labels.gpkg"))
    assert str(caught.value).endswith(
        "label class 'tea' is not one of the model's classes (background, class_1); map it "
        "onto one: --class-alias tea=<class>")
    aliased = IngestOptions(vector_labels="labels.gpkg", class_aliases={"tea": "class_1"})
    result = evaluate_logged_model(uri, str(polygons), tmp_path / "polygons",
                                   EvaluateOptions(overlay_tiles=0), aliased)
    assert result.class_names == expected.class_names == ["background", "class_1"]
    assert result.pixel_count == expected.pixel_count == 3 * 256 * 256
    assert sum(result.confusion_matrix[1]) > 1000  # tea in the truth
    assert result.confusion_matrix == expected.confusion_matrix
    assert result.tile_confusion_matrix == expected.tile_confusion_matrix
    assert result.metrics == expected.metrics
    old = evaluate_logged_model(tea_old_model, str(polygons), tmp_path / "old",
                                EvaluateOptions(overlay_tiles=0), aliased)
    assert old.class_names == ["class_0", "class_1"]
    assert old.confusion_matrix == expected.confusion_matrix


def test_a_model_of_older_segpipe_scores_data_of_this_one_by_its_class_0(
        tea_plantations, tea_model, tea_old_model, tmp_path):
    """The model registered when value 0 was class_0, against id masks this segpipe names
    background and class_1: a source is read onto its classes, a prepared dataset fits it;
    the scores are the current model's, not a refusal nor a background scored 0."""
    dataset, uri = tea_model
    masks, _ = _tea_sources(tea_plantations, tmp_path / "sources")
    new = evaluate_logged_model(uri, str(masks), tmp_path / "new",
                                EvaluateOptions(overlay_tiles=0))
    old = evaluate_logged_model(tea_old_model, str(masks), tmp_path / "old",
                                EvaluateOptions(overlay_tiles=0))
    assert old.class_names == ["class_0", "class_1"]
    assert old.confusion_matrix == new.confusion_matrix and sum(old.confusion_matrix[0]) > 0
    assert old.metrics["iou_class_0"] == new.metrics["iou_background"] > 0
    prepared = evaluate_logged_model(tea_old_model, str(dataset.root), tmp_path / "prepared",
                                     EvaluateOptions(overlay_tiles=0))
    same = evaluate_logged_model(uri, str(dataset.root), tmp_path / "same",
                                 EvaluateOptions(overlay_tiles=0))
    assert prepared.confusion_matrix == same.confusion_matrix


def test_a_source_is_worked_on_beside_the_output_not_in_the_system_temp(
        tiny_dataset, known, tmp_path, monkeypatch):
    """The system's temp folder is often small and held in memory, and a source may extract
    to tens of GiB: its scratch folder is a hidden one beside --out, gone afterwards however
    the run ends. Proven with the system temp folder unusable (a file where it should be)."""
    _, uri = known
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no-temp"))
    (tmp_path / "no-temp").write_text("not a folder")
    source = scenes_as_source(tiny_dataset, tmp_path / "source")
    archive = shutil.make_archive(str(tmp_path / "scenes"), "zip", source)
    results = tmp_path / "results"
    result = evaluate_logged_model(uri, archive, results / "eval",
                                   EvaluateOptions(overlay_tiles=0),
                                   IngestOptions(palette="classes.json", ignore_values=[255]))
    assert result.scene_count == 3
    assert sorted(p.name for p in results.iterdir()) == ["eval"]  # the scratch folder went
    prepared = evaluate_logged_model(uri, str(tiny_dataset.root), results / "prepared",
                                     EvaluateOptions(overlay_tiles=0))
    assert prepared.split == "test" and prepared.tile_count > 0
    # A failure inside the source's work (classes that are not the model's) leaves nothing.
    classes = json.loads((source / "classes.json").read_text())
    classes["classes"].append({"id": 3, "name": "cloud", "color": "#FFFFFF"})
    (source / "classes.json").write_text(json.dumps(classes))
    with pytest.raises(EvaluationInputError, match="does not fit the model"):
        evaluate_logged_model(uri, str(source), results / "failed", EvaluateOptions(),
                              IngestOptions(palette="classes.json", ignore_values=[255]))
    assert sorted(p.name for p in results.iterdir()) == ["eval", "prepared"]


def test_a_new_evaluation_replaces_the_previous_results_as_one_set(tiny_dataset, known,
                                                                    tmp_path):
    """The second evaluation draws no overlays: its results replace the first's whole (no
    overlays.png of the other run left beside them), metrics.json names the files where they
    are, and no staging folder is left."""
    _, uri = known
    out = tmp_path / "eval"
    evaluate_logged_model(uri, str(tiny_dataset.root), out, EvaluateOptions(overlay_tiles=1))
    assert (out / "overlays.png").is_file()
    result = evaluate_logged_model(uri, str(tiny_dataset.root), out,
                                   EvaluateOptions(overlay_tiles=0))
    assert sorted(p.name for p in out.iterdir()) == [
        "confusion_matrix.png", "metrics.json", "report.html", "report.md"]
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["report_md"] == str(out / "report.md") == result.report_md
    assert saved["overlays_png"] is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["eval"]


@pytest.mark.parametrize("where, message", [
    ("data", "is inside the data"),
    ("data/sub", "is inside the data"),
    ("other", "holds files that are not an evaluation's (notes.txt)"),
])
def test_an_output_in_the_data_or_holding_other_files_is_refused(tiny_dataset, unloadable,
                                                                   tmp_path, where, message):
    data = _copy(tiny_dataset, tmp_path / "data")
    before = sorted(p.name for p in data.root.rglob("*"))
    (tmp_path / "other").mkdir()
    (tmp_path / "other/notes.txt").write_text("mine")
    with pytest.raises(EvaluationInputError) as caught:
        evaluate_logged_model(unloadable, str(data.root), tmp_path / where)
    assert message in str(caught.value)
    assert sorted(p.name for p in data.root.rglob("*")) == before
    assert (tmp_path / "other/notes.txt").read_text() == "mine"


def test_polygon_classes_the_model_lacks_are_refused_naming_the_alias_flag(unloadable,
                                                                           tmp_path):
    """Polygons whose classes are not the model's: each named, with the --class-alias that
    maps it (the model's classes listed), an exit-2 input error, before the model loads."""
    from tests.components.test_vectors import FEATURES_UTM, UTM, _scenes, _write_layer

    source = tmp_path / "polygons"
    _scenes(source)
    _write_layer(source / "labels.gpkg", FEATURES_UTM, crs=UTM)
    with pytest.raises(EvaluationInputError) as caught:
        evaluate_logged_model(unloadable, str(source), tmp_path / "eval", EvaluateOptions(),
                              IngestOptions(vector_labels="labels.gpkg",
                                            class_aliases={"field": "tea"}))
    assert str(caught.value) == (
        f"{source} does not fit the model {unloadable}: label classes 'pond', 'road' are not "
        "among the model's classes (background, tea, water); map each onto one: "
        "--class-alias pond=<class> --class-alias road=<class>")
    assert not (tmp_path / "eval").exists()

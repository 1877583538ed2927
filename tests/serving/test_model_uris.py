"""Every way of naming a model reads its serving config: a registered version, an alias,
MLflow 3's logged-model id (``models:/m-<id>``, what ``log_model`` returns and the UI shows),
a ``runs:/`` URI and a local folder; a URI that names nothing is one line."""

from __future__ import annotations

import mlflow
import pytest

from serving.remote import ModelCardError, load_model_card


@pytest.fixture(scope="module")
def uris(logged_model) -> dict[str, str]:
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(logged_model["tracking_uri"])
    try:
        client = mlflow.MlflowClient()
        client.set_registered_model_alias("segpipe-test", "uris", "1")
        model_id = logged_model["model_uri"].removeprefix("models:/")
        logged = mlflow.get_logged_model(model_id)
        yield {"version": logged_model["registered"], "alias": "models:/segpipe-test@uris",
               "id": logged_model["model_uri"], "run": f"runs:/{logged.source_run_id}/"
                                                       f"{logged.name}",
               "local": logged_model["local_path"]}
    finally:
        mlflow.set_tracking_uri(previous)


@pytest.mark.parametrize("form", ["version", "alias", "id", "run", "local"])
def test_each_form_of_model_uri_reads_the_serving_config(uris, logged_model, form):
    assert uris["id"].startswith("models:/m-")
    mlflow.set_tracking_uri(logged_model["tracking_uri"])
    card = load_model_card(uris[form])
    assert card.config.class_names == ["soil", "tea", "water"]
    assert card.model_uuid and card.uri == uris[form]


@pytest.mark.parametrize("uri", ["models:/m-0123456789abcdef", "models:/nope/1",
                                 "models:/segpipe-test@nope", "runs:/0123abcd/model"])
def test_a_uri_that_names_nothing_is_one_line(logged_model, uri):
    mlflow.set_tracking_uri(logged_model["tracking_uri"])
    with pytest.raises(ModelCardError) as error:
        load_model_card(uri)
    message = str(error.value)
    assert message.startswith(f"model {uri}: ") and "\n" not in message and len(message) < 300


def test_segpipe_predict_takes_a_logged_model_id(uris, logged_model, tmp_path):
    from tests.serving.conftest import write_scene
    from tests.serving.test_remote import predict, read_mask

    scene = write_scene(tmp_path / "scene.tif", 40, 48)
    for form in ("id", "run"):
        out = tmp_path / f"{form}.tif"
        result = predict(scene, out, {**logged_model, "registered": uris[form]})
        assert result.exit_code == 0, result.output
        assert read_mask(out).shape == (40, 48)


@pytest.mark.parametrize("uri, phrase", [
    ("models:/m-0123456789abcdef", "no logged model 'm-0123456789abcdef' in the tracking store"),
    ("runs:/0123abcd/model", "no such model"),
])
def test_segpipe_predict_on_a_uri_that_names_nothing_says_so_in_one_line(logged_model, tmp_path,
                                                                         uri, phrase):
    from tests.serving.conftest import write_scene
    from tests.serving.test_remote import predict

    scene = write_scene(tmp_path / "scene.tif", 40, 48)
    result = predict(scene, tmp_path / "out.tif", {**logged_model, "registered": uri})
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and uri in lines[0] and phrase in lines[0], result.output
    assert not (tmp_path / "out.tif").exists()


def test_serve_and_evaluate_resolve_a_logged_model_id(uris, logged_model):
    """`segpipe serve` and `segpipe evaluate` check the store with check_model; evaluate
    names the model it scored with resolve_model_version."""
    from components.evaluate_logged import resolve_model_version
    from pipelines.tracking_store import StoreError, check_model

    assert check_model(uris["id"], logged_model["tracking_uri"]) == logged_model["tracking_uri"]
    with pytest.raises(StoreError, match="no logged model 'm-nope' in the tracking store"):
        check_model("models:/m-nope", logged_model["tracking_uri"])
    mlflow.set_tracking_uri(logged_model["tracking_uri"])
    reference = resolve_model_version(uris["id"])
    assert reference.model_id == uris["id"].removeprefix("models:/")
    assert reference.experiment_id and reference.version is None

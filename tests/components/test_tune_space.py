"""The default search space is the training recipe: it samples valid TrainParams for every
default architecture, on a GPU the encoder U-Net with pretrained weights first, on CPU small
U-Nets and light encoders; ImageNet weights the machine cannot get are dropped from the
default and refused in a config; the demo's own small space still validates."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import optuna
import pytest
import yaml

from components.train_options import TrainParams
from components.tune_options import TuneOptions
from components.tune_space import (
    TRAINING_DIMENSIONS,
    SearchSpace,
    built_in_spaces,
    cat,
    default_search_space,
    resolve_search_space,
    sample_params,
)
from segmodels import build_model, check_input_size

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_every_training_dimension_is_a_train_param():
    assert set(TRAINING_DIMENSIONS) <= set(TrainParams.model_fields)


def test_default_space_puts_pretrained_encoder_unets_first():
    space = SearchSpace()
    assert space.architecture.choices[0] == "encoder_unet"
    assert {"unet", "attention_unet", "unet_aspp"} <= set(space.architecture.choices)
    assert space.models["encoder_unet"]["encoder_weights"].choices == ["imagenet"]
    assert space.training["learning_rate"].low <= 1e-4  # pretrained encoders fine-tune low


def test_default_space_samples_a_buildable_encoder_unet_recipe():
    space = SearchSpace(architecture=cat("encoder_unet"))
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
    seen = set()
    for _ in range(4):
        params = sample_params(study.ask(), space, TrainParams(), epochs=5)
        assert params.architecture == "encoder_unet"
        assert params.loss in ("ce+dice", "focal+dice", "ce")
        assert params.crop_size in (0, 256)
        seen.add(params.model_params["encoder"])
        check_input_size("encoder_unet", 256, 256, **params.model_params)
    # offline here: the same model without downloading ImageNet weights
    model = build_model("encoder_unet", 6, 4, **{**params.model_params,
                                                 "encoder_weights": None})
    assert model.output_shape == (None, None, None, 6)
    assert seen <= {"efficientnetv2b0", "resnet50"}


def test_demo_config_pins_its_own_small_space():
    config = yaml.safe_load((REPO_ROOT / "pipelines/configs/demo.yaml").read_text())
    space = SearchSpace.model_validate(config["tuning"]["search_space"])
    assert space.architecture.choices == ["unet"]
    assert TrainParams.model_validate(config["tuning"]["train"]).class_weights == "balanced"


# The machine's default space and what it does with ImageNet weights it cannot get.

@pytest.fixture
def offline(tmp_path, monkeypatch):
    """No ImageNet weights in Keras' cache and a download host that does not answer (a
    localhost port nothing listens on)."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        address = probe.getsockname()
    return address


def test_cpu_default_space_holds_small_unets_and_light_encoders():
    space = default_search_space(gpu=False)
    assert space.architecture.choices[0] == "unet"
    assert set(space.architecture.choices) <= {"unet", "encoder_unet"}
    unet, encoder_unet = space.models["unet"], space.models["encoder_unet"]
    assert unet["depth"].high <= 4 and max(unet["filters"].choices) <= 32
    assert encoder_unet["encoder"].choices == ["mobilenetv2"]
    assert max(encoder_unet["encoder_width"].choices) <= 0.5
    assert space.training["class_weights"].choices == ["balanced"]  # not left to a small val
    # the largest CPU U-Net stays small enough for minutes-long trials on 2 cores
    model = build_model("unet", 2, 4, depth=int(unet["depth"].high),
                        filters=max(unet["filters"].choices))
    assert model.count_params() < 2_500_000


def test_gpu_default_space_keeps_imagenet_encoder_unets_first():
    space = default_search_space(gpu=True)
    assert space == SearchSpace()
    assert space.architecture.choices[0] == "encoder_unet"


@pytest.fixture
def online(tmp_path, monkeypatch):
    """No cached weights, but a download host that answers (a socket listening on
    localhost)."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()


def test_unset_space_is_the_machines_default_and_logged(online, caplog):
    with caplog.at_level(logging.INFO, logger="components.tune_space"):
        space = resolve_search_space(None, TrainParams(), gpu=False, imagenet_host=online)
    assert space == default_search_space(gpu=False)
    assert "built-in CPU space" in caplog.text
    assert TuneOptions.model_validate({"search_space": {}}).search_space is None


def test_parts_left_out_of_a_configured_space_come_from_the_machines_default(offline):
    configured = SearchSpace(architecture=cat("unet"))
    space = resolve_search_space(configured, TrainParams(), gpu=False, imagenet_host=offline)
    assert space.architecture.choices == ["unet"]
    assert space.models["unet"] == default_search_space(gpu=False).models["unet"]


def test_a_config_that_gives_only_some_models_keeps_the_others_built_in_ranges(offline):
    configured = SearchSpace.model_validate(
        {"models": {"unet": {"depth": {"type": "categorical", "choices": [2]}}}})
    space = resolve_search_space(configured, TrainParams(), gpu=True, imagenet_host=offline)
    built_in = default_search_space(gpu=True)
    assert space.models["unet"]["depth"].choices == [2]
    for architecture in set(built_in.models) - {"unet"}:
        assert space.models[architecture] == built_in.models[architecture]


def test_the_parts_a_config_leaves_out_stay_out_on_the_way_to_the_workers(offline):
    """The pipeline passes the tuning section as JSON: a part the config left out must not
    come back filled with SearchSpace's own defaults (the GPU space), or a CPU worker would
    search the GPU's encoder U-Nets."""
    import json

    from pipelines.step_options import step_options  # the wrappers' own validation

    options = TuneOptions.model_validate({"search_space": {"architecture": cat("unet")}})
    sent = json.loads(json.dumps(options.model_dump(mode="json", exclude_none=True)))
    received = step_options(TuneOptions, sent)
    assert received.search_space.model_fields_set == {"architecture"}
    space = resolve_search_space(received.search_space, received.train, gpu=False,
                                 imagenet_host=offline)
    assert space.models == default_search_space(gpu=False).models


@pytest.mark.parametrize("gpu", [False, True])
def test_offline_default_space_leaves_encoder_unets_out_with_one_log_line(offline, caplog,
                                                                          gpu):
    with caplog.at_level(logging.INFO, logger="components.tune_space"):
        space = resolve_search_space(None, TrainParams(), gpu=gpu, imagenet_host=offline)
    assert "encoder_unet" not in space.architecture.choices
    assert "unet" in space.architecture.choices
    said = [r for r in caplog.records if "encoder_weights: 'imagenet'" in r.getMessage()]
    assert len(said) == 1 and said[0].levelno == logging.WARNING
    assert "cannot be reached" in said[0].getMessage()


def test_offline_drops_only_imagenet_when_the_config_picks_the_architectures(offline):
    configured = SearchSpace(architecture=cat("unet", "encoder_unet"))
    space = resolve_search_space(configured, TrainParams(), gpu=False, imagenet_host=offline)
    assert space.architecture.choices == ["unet", "encoder_unet"]
    assert space.models["encoder_unet"]["encoder_weights"].choices == [None]


def test_cached_weights_keep_imagenet_in_the_default_space(offline, tmp_path):
    (tmp_path / "models").mkdir()
    for width in (0.35, 0.5):
        (tmp_path / "models" / f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{width}"
         "_224_no_top.h5").touch()
    space = resolve_search_space(None, TrainParams(), gpu=False, imagenet_host=offline)
    assert space.models["encoder_unet"]["encoder_weights"].choices == ["imagenet"]


def test_configured_imagenet_offline_is_an_error_naming_the_field(offline):
    space = SearchSpace(architecture=cat("encoder_unet"), models={
        "encoder_unet": {"encoder": cat("resnet50"), "encoder_weights": cat("imagenet")}})
    with pytest.raises(ValueError, match=r"^tuning\.search_space\.models\.encoder_unet\."
                                         r"encoder_weights: 'imagenet' weights cannot be had"):
        resolve_search_space(space, TrainParams(), gpu=False, imagenet_host=offline)
    fixed = TrainParams(architecture="encoder_unet", model_params={"encoder_weights": "imagenet"})
    with pytest.raises(ValueError, match=r"^tuning\.train\.model_params\.encoder_weights"):
        resolve_search_space(SearchSpace(architecture=cat("encoder_unet"),
                                         models={"encoder_unet": {}}), fixed,
                             gpu=False, imagenet_host=offline)


def test_built_in_spaces_search_the_same_training_dimensions():
    """TuneOptions checks a fixed train.* value against the training dimensions before the
    machine (CPU or GPU) is known: that holds only while both spaces search the same ones."""
    gpu, cpu = built_in_spaces().values()
    assert set(gpu.training) == set(cpu.training)

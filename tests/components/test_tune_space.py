"""The default search space is the training recipe: it samples valid TrainParams for every
default architecture, the encoder U-Net with pretrained weights first; the demo's own small
space still validates."""

from __future__ import annotations

from pathlib import Path

import optuna
import yaml

from components.train import TrainParams
from components.tune_space import TRAINING_DIMENSIONS, SearchSpace, cat, sample_params
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

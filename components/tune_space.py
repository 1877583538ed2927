"""The hyper-parameter search space: what the config may search and how a trial samples it.

Training-level dimensions (learning rate, batch size, loss, augmentation...) are shared by
every architecture; model dimensions are per architecture, named ``<arch>.<param>`` in
Optuna, so TPE models each architecture's parameters separately and a parameter one
architecture does not take is never passed to it."""

from __future__ import annotations

from typing import Any, Literal

import optuna
from pydantic import BaseModel, ConfigDict, Field, model_validator

from components.train import TrainParams
from segmodels import available_models

Choice = str | int | float | bool | None
TRAINING_DIMENSIONS = ("learning_rate", "batch_size", "loss", "augment", "weight_decay",
                       "class_weights", "max_class_weight", "lr_schedule", "warmup_epochs",
                       "encoder_warmup_epochs", "crop_size")


class ParamSpec(BaseModel):
    """One dimension: ``categorical`` (choices) or ``int``/``float`` (low, high, step, log)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["categorical", "int", "float"]
    choices: list[Choice] | None = None
    low: float | None = None
    high: float | None = None
    step: float | None = None
    log: bool = False

    @model_validator(mode="after")
    def _complete(self) -> ParamSpec:
        if self.type == "categorical":
            if not self.choices:
                raise ValueError("categorical dimension needs non-empty 'choices'")
        elif self.low is None or self.high is None or self.low > self.high:
            raise ValueError(f"{self.type} dimension needs 'low' <= 'high'")
        return self

    def suggest(self, trial: optuna.Trial, name: str) -> Any:
        if self.type == "categorical":
            return trial.suggest_categorical(name, self.choices)
        if self.type == "int":
            return trial.suggest_int(name, int(self.low), int(self.high),
                                     step=int(self.step or 1), log=self.log)
        return trial.suggest_float(name, self.low, self.high, step=self.step, log=self.log)


def cat(*choices: Choice) -> ParamSpec:
    return ParamSpec(type="categorical", choices=list(choices))


def _unet_like() -> dict[str, ParamSpec]:
    return {"depth": ParamSpec(type="int", low=3, high=5), "filters": cat(16, 32, 64),
            "kernel_size": cat(3, 5), "batch_norm": cat(True, False),
            "dropout": ParamSpec(type="float", low=0.0, high=0.5, step=0.1)}


def default_model_spaces() -> dict[str, dict[str, ParamSpec]]:
    """Ranges that suit each architecture on 128-512 px tiles."""
    return {
        # ImageNet weights are what lifts a few hundred tiles from a from-scratch U-Net's
        # mIoU to a published one (downloaded once per machine into ~/.keras; offline, give
        # a weights file). EfficientNetV2-B0 is the cheapest encoder on CPU (6.6 GFLOPs per
        # 256 px tile with its decoder, vs 21 for ResNet-50 and 24 for a 32-filter U-Net),
        # ResNet-50 the classic, strongest on a GPU. Depth 4 drops the encoder's last stage
        # (stride 16, 4x fewer parameters) for small datasets.
        "encoder_unet": {"encoder": cat("efficientnetv2b0", "resnet50"),
                         "encoder_weights": cat("imagenet"),
                         "encoder_depth": cat(4, 5), "decoder_filters": cat(16, 32),
                         "dropout": ParamSpec(type="float", low=0.0, high=0.3, step=0.1)},
        "unet": _unet_like(),
        "attention_unet": _unet_like(),
        "unet_aspp": {**_unet_like(), "dropout": ParamSpec(type="float", low=0.0, high=0.3,
                                                           step=0.1)},
        "deeplabv3plus": {"aspp_filters": cat(128, 256), "decoder_filters": cat(128, 256),
                          "dropout": ParamSpec(type="float", low=0.0, high=0.3, step=0.1)},
        "pix2pix": {"depth": ParamSpec(type="int", low=4, high=6), "filters": cat(16, 32, 64),
                    "dropout": cat(0.3, 0.5),
                    "adversarial_weight": ParamSpec(type="float", low=0.01, high=0.1,
                                                    log=True)},
    }


def default_architectures() -> ParamSpec:
    """The U-Net family, pretrained-encoder U-Nets first (the strongest on few images);
    DeepLabV3+ and Pix2Pix are opt-in via the config."""
    available = set(available_models())
    return cat(*[a for a in ("encoder_unet", "unet", "attention_unet", "unet_aspp")
                 if a in available])


def default_training_space() -> dict[str, ParamSpec]:
    """Shared by every architecture. Learning rates: 1e-4..5e-4 is where pretrained encoders
    fine-tune well with Adam, 1e-3..3e-3 where from-scratch U-Nets train fastest; one log
    range covers both and TPE finds each architecture's end. Losses: CE + Dice or Focal +
    Dice (mixes beat either alone on imbalanced classes); class weights capped at
    TrainParams.max_class_weight. 256-px crops of larger tiles are translation augmentation
    and cheaper steps; tiles of 256 px or less train whole either way. One epoch of encoder
    warm-up or none (the LR warm-up already tames the first, large decoder gradients)."""
    return {"learning_rate": ParamSpec(type="float", low=1e-4, high=3e-3, log=True),
            "batch_size": cat(4, 8, 16), "loss": cat("ce+dice", "focal+dice", "ce"),
            "class_weights": cat("none", "balanced"), "augment": cat("d4", "d4_color"),
            "crop_size": cat(0, 256), "encoder_warmup_epochs": cat(0, 1)}


class SearchSpace(BaseModel):
    model_config = ConfigDict(extra="forbid")

    architecture: ParamSpec = Field(default_factory=default_architectures)
    training: dict[str, ParamSpec] = Field(default_factory=default_training_space)
    models: dict[str, dict[str, ParamSpec]] = Field(default_factory=default_model_spaces)

    @model_validator(mode="after")
    def _known_dimensions(self) -> SearchSpace:
        if self.architecture.type != "categorical":
            raise ValueError("architecture: must be a categorical dimension")
        unknown_models = set(self.architecture.choices) - set(available_models())
        if unknown_models:
            raise ValueError(f"architecture: unknown {sorted(map(str, unknown_models))}; "
                             f"available: {available_models()}")
        unknown = set(self.training) - set(TRAINING_DIMENSIONS)
        if unknown:
            raise ValueError(f"training: unknown dimensions {sorted(unknown)}; "
                             f"choose from {list(TRAINING_DIMENSIONS)}")
        return self


def sample_params(trial: optuna.Trial, space: SearchSpace, base: TrainParams,
                  epochs: int) -> TrainParams:
    """A trial's TrainParams: ``base`` with every searched dimension replaced."""
    architecture = space.architecture.suggest(trial, "architecture")
    values = base.model_dump()
    values["architecture"] = architecture
    values["epochs"] = epochs
    for name, spec in space.training.items():
        values[name] = spec.suggest(trial, name)
    model_params = dict(base.model_params) if architecture == base.architecture else {}
    for name, spec in space.models.get(architecture, {}).items():
        model_params[name] = spec.suggest(trial, f"{architecture}.{name}")
    values["model_params"] = model_params
    return TrainParams.model_validate(values)

"""The hyper-parameter search space: what the config may search and how a trial samples it.

Training-level dimensions (learning rate, batch size, loss, augmentation...) are shared by
every architecture; model dimensions are per architecture, named ``<arch>.<param>`` in
Optuna, so TPE models each architecture's parameters separately and a parameter one
architecture does not take is never passed to it."""

from __future__ import annotations

import logging
from typing import Any, Literal

import optuna
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

from components.encoder_weights import IMAGENET_HOST, imagenet_unavailable
from components.train_options import TrainParams
from segmodels import available_models

log = logging.getLogger(__name__)

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

    @model_serializer(mode="wrap")
    def _int_bounds_as_ints(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Held as floats for both numeric types; dumped as a user writes an int dimension
        # (``depth: {type: int, low: 2, high: 4}``), which validates back to the same spec.
        data = handler(self)
        if self.type == "int":
            for key in ("low", "high", "step"):
                if isinstance(data.get(key), float) and data[key].is_integer():
                    data[key] = int(data[key])
        return data

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
    """Ranges that suit each architecture on 128-512 px tiles, on a GPU."""
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


def cpu_search_space() -> SearchSpace:
    """What trains well within minutes on a few CPU cores. U-Nets of depth 3-4 with 16-32
    filters (0.1-1.9 M parameters; a trial of up to 20 epochs on the tea chips' 122 tiles of
    64 px took 15-90 s on 2 shared cores) and MobileNetV2 U-Nets at width 0.35-0.5 (0.8-2.9 M
    parameters, mostly in cheap depthwise stages; only with ImageNet weights, see
    resolve_search_space). Learning rates where from-scratch and light models train
    fastest; the losses that hold up on imbalanced classes (Focal or CE with Dice), with
    bounded 'balanced' class weights fixed, not searched: the best of a few trials on a small
    val split otherwise tends to be an unweighted model that found the rare class in val by
    luck and misses it elsewhere (tea chips: test tea IoU 0.30-0.40 balanced over 3 seeds,
    0.19-0.29 unweighted; the study's unweighted pick 0.0). Batches of 4-8: on CPU a sample
    costs the same in any batch, and a few hundred tiles still make enough steps per epoch."""
    training = default_training_space()
    training.update(learning_rate=ParamSpec(type="float", low=3e-4, high=3e-3, log=True),
                    batch_size=cat(4, 8), loss=cat("focal+dice", "ce+dice"),
                    class_weights=cat("balanced"))
    models = default_model_spaces()
    models["unet"] = {"depth": ParamSpec(type="int", low=3, high=4), "filters": cat(16, 32),
                      "kernel_size": cat(3), "batch_norm": cat(True),
                      "dropout": ParamSpec(type="float", low=0.0, high=0.3, step=0.1)}
    models["encoder_unet"] = {"encoder": cat("mobilenetv2"), "encoder_width": cat(0.35, 0.5),
                              "encoder_weights": cat("imagenet"), "encoder_depth": cat(4, 5),
                              "decoder_filters": cat(16),
                              "dropout": ParamSpec(type="float", low=0.0, high=0.3, step=0.1)}
    return SearchSpace(architecture=cat("unet", "encoder_unet"), training=training,
                       models=models)


def default_search_space(gpu: bool) -> SearchSpace:
    """The built-in space for a machine with (``gpu``) or without a GPU: on a GPU the
    recipe's ImageNet-encoder U-Nets first (SearchSpace's own defaults), on CPU
    ``cpu_search_space``."""
    return SearchSpace() if gpu else cpu_search_space()


class SearchSpace(BaseModel):
    """What the study searches: the architectures, the training dimensions every
    architecture shares, and each architecture's own. Parts of it a config leaves out come
    from the built-in space of the machine the trials run on (both below)."""

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


def resolve_search_space(space: SearchSpace | None, train: TrainParams, *,
                         gpu: bool | None = None,
                         imagenet_host: tuple[str, int] = IMAGENET_HOST) -> SearchSpace:
    """The space a study searches on this machine, decided once before any trial: ``space``
    as configured, its parts left out (architecture, training, models) and the whole of it
    when unset taken from ``default_search_space`` for whether a GPU is visible here. When
    this machine can neither find ImageNet encoder weights in Keras' cache nor reach their
    download host, the built-in space leaves its encoder U-Nets out (or, when the config
    picks the architectures, their "imagenet" choice; one log line says so);
    a config that asks for it itself gets a ValueError naming the field instead of trials
    that all fail."""
    given = set(space.model_fields_set) if space is not None else set()
    configured_models = set(space.models) if "models" in given else set()
    if given != set(SearchSpace.model_fields):
        if gpu is None:
            from components.train import gpu_visible  # TensorFlow: not for config checks

            gpu = gpu_visible()
        built_in = default_search_space(gpu)
        update = {name: getattr(space, name) for name in given}
        if "models" in given:  # per architecture: the others keep their built-in ranges
            update["models"] = {**built_in.models, **space.models}
        space = built_in.model_copy(update=update)
        log.info("search space: %sthe built-in %s space; architectures %s",
                 "the config's, with the parts it leaves out from " if given else "",
                 "GPU" if gpu else "CPU", ", ".join(map(str, space.architecture.choices)))
    request = _imagenet_request(space, train)
    if request is None:
        return space
    field, encoders = request
    why = imagenet_unavailable(encoders, imagenet_host)
    if why is None:
        return space
    from_config = field.startswith("train.") or "encoder_unet" in configured_models
    if from_config:
        raise ValueError(f"tuning.{field}: 'imagenet' weights cannot be had on this machine: "
                         f"{why}; save them on a machine with internet and give the file's "
                         "path (see segmodels/encoders.py), or null for random weights")
    weights = space.models["encoder_unet"]["encoder_weights"]
    kept = [c for c in weights.choices if c != "imagenet"] or [None]
    others = [a for a in space.architecture.choices if a != "encoder_unet"]
    if kept == [None] and others and "architecture" not in given:
        # The built-in space holds encoder U-Nets for their pretrained features; from
        # random weights they lose to plain U-Nets of the same cost on few tiles (on the
        # tea chips every random-weight MobileNetV2 trial predicted background only).
        log.warning("encoder_weights: 'imagenet' cannot be had here, %s; the built-in space "
                    "leaves out its encoder U-Nets and searches %s", why, ", ".join(others))
        return space.model_copy(update={"architecture": cat(*others)})
    log.warning("encoder_weights: 'imagenet' dropped from the search space, %s; the "
                "encoder U-Nets start from %s", why,
                " or ".join("random weights" if c is None else str(c) for c in kept))
    models = {**space.models, "encoder_unet": {**space.models["encoder_unet"],
                                               "encoder_weights": cat(*kept)}}
    return space.model_copy(update={"models": models})


def _imagenet_request(space: SearchSpace, train: TrainParams
                      ) -> tuple[str, list[tuple[str, float]]] | None:
    """Where the space asks for ImageNet encoder weights (the config field) and for which
    (encoder, width) pairs; None when no trial can ask for them."""
    if "encoder_unet" not in (space.architecture.choices or []):
        return None
    dimensions = space.models.get("encoder_unet", {})
    fixed = train.model_params if train.architecture == "encoder_unet" else {}

    def values(name: str, default: Any) -> list[Any]:
        spec = dimensions.get(name)
        if spec is None:
            return [fixed.get(name, default)]
        if spec.type == "categorical":
            return list(spec.choices)
        return [spec.low, spec.high]

    if "imagenet" not in values("encoder_weights", None):
        return None
    from segmodels.encoder_unet import DEFAULT_ENCODER  # Keras: not for config checks
    from segmodels.encoders import encoder_spec

    field = ("search_space.models.encoder_unet.encoder_weights" if "encoder_weights" in
             dimensions else "train.model_params.encoder_weights")
    pairs = []
    for encoder in values("encoder", DEFAULT_ENCODER):
        try:
            takes_width = len(encoder_spec(str(encoder)).widths) > 1
        except ValueError:
            continue  # an unknown encoder fails its trial with its own message
        pairs += [(str(encoder), float(w) if takes_width else 1.0)
                  for w in values("encoder_width", 1.0)]
    return field, sorted(set(pairs))


def built_in_spaces() -> dict[str, SearchSpace]:
    """The built-in spaces by where they apply (the configuration reference prints them)."""
    return {"with a GPU": default_search_space(gpu=True),
            "on CPU": default_search_space(gpu=False)}


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

"""The train step's options: one trial's architecture, optimizer, loss, augmentation and
budget. Free of Keras and TensorFlow, so a config is checked before either loads
(components/train.py trains with them)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

#: none | d4 (the 8 rotations/reflections) | d4_color (+ photometric jitter of the image)
Augment = Literal["none", "d4", "d4_color"]

#: MLflow param names of a model's own settings (``model.depth``): a trial logs them so, and
#: the parent run logs the best trial's as ``best.model.depth``; Optuna names them
#: ``<architecture>.<setting>`` (components/tune_space.py), which ``run_param_name`` maps.
MODEL_PARAM_PREFIX = "model."


def run_param_name(optuna_name: str) -> str:
    """The MLflow param name of a search dimension named ``optuna_name`` in a study: a
    training setting keeps its name, an architecture's setting (``unet.depth``) is a model
    param (``model.depth``), as the trial runs log it."""
    _, dot, setting = optuna_name.partition(".")
    return f"{MODEL_PARAM_PREFIX}{setting}" if dot else optuna_name


#: Upper bound of batch_size, checked when the config is read (reason in the field).
MAX_BATCH_SIZE = 1024


class TrainParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Defaults are the recipe for 10^2-10^3 tiles: Adam at 1e-3 with 2 epochs of linear
    # warm-up (pretrained encoders meet a random decoder) then cosine decay; CE + Dice
    # (nnU-Net's default: CE for calibrated pixels, Dice for small classes); D4 + photometric
    # augmentation; early stopping on val mIoU. The tune step's search space
    # (components/tune_space.py) explores around them, encoder U-Nets included.
    architecture: str = "unet"
    model_params: dict[str, Any] = Field(default_factory=dict,
                                         description="build_model keyword arguments")
    epochs: int = Field(default=30, ge=1)
    batch_size: int = Field(default=8, ge=1, le=MAX_BATCH_SIZE, description="tiles per "
                            f"training step (at most {MAX_BATCH_SIZE}: a batch is held in "
                            f"memory whole with its activations; {MAX_BATCH_SIZE} tiles of "
                            "512 px x 4 bands are 4 GiB as float32 before any activation)")
    learning_rate: float = Field(default=1e-3, gt=0)
    lr_schedule: Literal["cosine", "constant"] = "cosine"
    warmup_epochs: int = Field(default=2, ge=0, description="epochs of linear LR warm-up")
    encoder_warmup_epochs: int = Field(
        default=0, ge=0, description="epochs a pretrained encoder's gradient stays cut while "
        "the decoder learns (segmodels.EncoderWarmup; other models ignore it)")
    weight_decay: float = Field(default=0.0, ge=0)
    loss: str | dict[str, float] = Field(default="ce+dice", description='segmodels.build_loss '
                                         'spec: "ce", "dice", "ce+dice", {"ce": 0.5, ...}')
    augment: Augment = Field(default="d4_color", description="none | d4 (the 8 rotations/"
                             "reflections) | d4_color (+ photometric jitter of the image)")
    crop_size: int = Field(default=0, ge=0, description="train on random windows of this "
                           "size cut from each tile (validation sees whole tiles); 0 or >= "
                           "the tile size: whole tiles")
    class_weights: Literal["none", "balanced"] | list[float] = "none"
    max_class_weight: float = Field(default=10.0, ge=1.0, description="cap on the 'balanced' "
                                    "(median-frequency) class weights")
    early_stopping_patience: int = Field(default=8, ge=0, description="epochs without a "
                                         "better val mIoU before a trial stops; 0: never")
    seed: int = 0
    overlay_every: int = Field(default=5, ge=1, description="epochs between overlay figures")
    overlay_tiles: int = Field(default=4, ge=0)
    cache_budget_mb: int = Field(default=2048, ge=0)
    accelerate: Literal["auto", "off"] = Field(
        default="auto", description="auto: mixed precision + XLA when a GPU is visible")

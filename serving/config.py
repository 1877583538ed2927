"""What the served model needs besides its weights: band statistics, classes, tiling.

Stored next to the Keras file as a JSON artifact of the MLflow model, so the server takes
raw pixel values and answers with class ids and colours that match training."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from serving.atomic import write_text

_COLOR = re.compile(r"^#[0-9A-Fa-f]{6}$")
MAX_OVERLAP = 0.75


class ServingOptions(BaseModel):
    """The serving knobs a user sets when registering a model; every default is here."""

    model_config = ConfigDict(extra="forbid")

    overlap: float = Field(0.5, ge=0.0, le=MAX_OVERLAP,
                           description="share of a window its neighbours overlap (blending)")
    batch_size: int = Field(8, gt=0, description="windows per forward pass")
    max_pixels: int = Field(64_000_000, gt=0,
                            description="largest request the server takes, all images together")


class ServingConfig(ServingOptions):
    """Everything between raw pixels and a mask, except the network itself."""

    in_channels: int = Field(gt=0)
    num_classes: int = Field(gt=0)
    class_names: list[str]
    class_colors: list[str]
    mean: list[float]
    std: list[float]
    nodata: float | None = None
    ignore_index: int = Field(255, ge=0, le=255)
    patch_size: int = Field(256, gt=0, description="window the network sees, in pixels")
    model_stride: int = Field(1, gt=0, description="patch_size must be a multiple of this")
    scale: float = Field(1.0, gt=0, le=16,
                         description="resampling factor of the training scenes (0.5 halved "
                                     "them); inputs are resampled by it before prediction")
    gsd: float | None = Field(None, gt=0,
                              description="metres per pixel the model was trained at; for "
                                          "inputs in a projected CRS it sets the resampling "
                                          "factor instead of scale")
    input_dtype: str = Field("float32", description="dtype of the training images' pixels: "
                             "the tensor the model's MLflow signature declares")
    train_majority_class: str | None = Field(
        None, description="the class with the most labelled pixels in the model's train "
        "split: the trivial baseline an evaluation of the model on other data answers "
        "everywhere (segpipe evaluate); None for a model of older segpipe")

    @field_validator("input_dtype")
    @classmethod
    def _numeric_dtype(cls, value: str) -> str:
        try:
            dtype = np.dtype(value)
        except TypeError:
            raise ValueError(f"input_dtype {value!r} is not a numpy dtype") from None
        if dtype.kind not in "biuf":
            raise ValueError(f"input_dtype {value!r} is not a real number type")
        return dtype.name

    @model_validator(mode="after")
    def _consistent(self) -> ServingConfig:
        if len(self.class_names) != self.num_classes:
            raise ValueError(f"class_names has {len(self.class_names)} entries, "
                             f"num_classes is {self.num_classes}")
        if len(self.class_colors) != self.num_classes:
            raise ValueError(f"class_colors has {len(self.class_colors)} entries, "
                             f"num_classes is {self.num_classes}")
        if self.train_majority_class not in (None, *self.class_names):
            raise ValueError(f"train_majority_class {self.train_majority_class!r} is not one "
                             f"of class_names")
        for color in self.class_colors:
            if not _COLOR.match(color):
                raise ValueError(f"class colour {color!r} is not #RRGGBB")
        for field in ("mean", "std"):
            values = getattr(self, field)
            if len(values) != self.in_channels:
                raise ValueError(f"{field} has {len(values)} entries, "
                                 f"in_channels is {self.in_channels}")
        if self.patch_size % self.model_stride:
            raise ValueError(f"patch_size {self.patch_size} is not a multiple of "
                             f"model_stride {self.model_stride}")
        if self.num_classes > 255 or self.ignore_index < self.num_classes:
            raise ValueError(f"ignore_index {self.ignore_index} must be >= num_classes "
                             f"{self.num_classes} and fit in uint8")
        return self

    def color_table(self) -> dict[int, tuple[int, int, int, int]]:
        """Class id -> RGBA, in the form rasterio's ``write_colormap`` takes."""
        table = {i: (int(c[1:3], 16), int(c[3:5], 16), int(c[5:7], 16), 255)
                 for i, c in enumerate(self.class_colors)}
        table[self.ignore_index] = (0, 0, 0, 0)
        return table

    def save(self, path: Path) -> None:
        write_text(Path(path), self.model_dump_json(indent=2))

    @classmethod
    def load(cls, path: Path) -> ServingConfig:
        return cls.model_validate_json(Path(path).read_text())

"""Step options as the config file spells them.

Interim copies of the planned component option models (components/ingest.py, tile.py,
split.py), so the config schema validates before those modules land; once they do, these
names become re-exports of the components' own classes, the single source of truth.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PaletteEntry(_Options):
    name: str
    color: str = Field(pattern=r"^#[0-9A-Fa-f]{6}$")


class IngestOptions(_Options):
    mask_dir_names: list[str] = ["masks", "labels", "gt"]
    palette: Literal["auto"] | str | list[PaletteEntry] | None = "auto"
    class_values: dict[int, int] | None = None
    ignore_values: list[int] = []
    ignore_colors: list[str] = []
    color_tolerance: int = Field(0, ge=0, le=255)
    ignore_index: int = Field(255, ge=0, le=255)


class TileOptions(_Options):
    patch_size: int = Field(256, gt=0)
    stride: int | None = Field(None, gt=0)
    scale: float = Field(1.0, gt=0)
    min_valid_fraction: float = Field(0.5, ge=0, le=1)


class SplitOptions(_Options):
    strategy: Literal["random", "scene", "block"] = "scene"
    ratios: tuple[float, float, float] = (0.7, 0.15, 0.15)
    seed: int = 0
    block_size: int | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _ratios_sum_to_one(self) -> SplitOptions:
        if any(r < 0 for r in self.ratios) or abs(sum(self.ratios) - 1.0) > 1e-6:
            raise ValueError(f"ratios must be non-negative and sum to 1, got {self.ratios}")
        return self

"""The data steps' option models, as the config file nests them: the components' own
classes are the single source of truth for their fields, defaults and validation."""

from __future__ import annotations

from components.ingest import IngestOptions, PaletteEntry
from components.split import SplitOptions
from components.tile import TileOptions

__all__ = ["IngestOptions", "PaletteEntry", "SplitOptions", "TileOptions"]

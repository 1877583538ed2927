"""Whether data fits a logged model, told from its serving config alone (two small files),
before the model loads: ``segpipe evaluate`` (components/evaluate_logged.py) and the
registration's scores (components/register.py) check it first.

A source's label classes are read onto the model's by name, after the ingest's
``class_aliases`` (an alias naming no class of the model is refused before the source is
read); a prepared dataset must have the model's class names in its order and its tiling;
both, its band count, and a split to score must have tiles. A mismatch is an
``EvaluationInputError`` naming the data and what to do."""

from __future__ import annotations

import math

from components.artifacts import SPLIT_NAMES, SplitName, TileManifest
from components.class_aliases import check_targets, same_classes
from components.dataset_paths import PreparedDataset
from components.evaluate_options import EvaluationInputError
from components.ingest_options import IngestOptions
from components.raster import SettingError
from components.wording import counted
from serving.config import ServingConfig


def check_fits(config: ServingConfig, model_uri: str, data: str, class_names: list[str],
               bands: int) -> None:
    """The data's classes (names, in order; ``class_0`` of older segpipe is
    ``background``) and band count are the model's."""
    fits = same_classes(class_names, config.class_names)
    if fits and bands == config.in_channels:
        return
    advice = "" if fits else (
        "; evaluate the source it was prepared from instead: a source's label classes map "
        "onto the model's by name, with --class-alias for names that differ")
    raise EvaluationInputError(
        f"{data} does not fit the model {model_uri}: the model predicts "
        f"{config.num_classes} classes ({', '.join(config.class_names)}) from "
        f"{counted(config.in_channels, 'band')}, the data has {len(class_names)} classes "
        f"({', '.join(class_names)}) and {counted(bands, 'band')}{advice}")


def _model_tiling(config: ServingConfig) -> str:
    where = f"{config.gsd:g} m per pixel" if config.gsd else f"scale {config.scale}"
    return f"{config.patch_size} px at {where}"


def _same_resolution(config: ServingConfig, manifest: TileManifest) -> bool:
    """The tiles are at the model's resolution: its metres per pixel when it has one (a
    model of older segpipe has none unless trained with target_gsd), else its scale, of
    tiles resampled by scale alone."""
    if config.gsd is not None:
        return manifest.gsd is not None and math.isclose(manifest.gsd, config.gsd,
                                                         rel_tol=1e-9)
    return manifest.target_gsd is None and manifest.scale == config.scale


def check_tiling(config: ServingConfig, dataset: PreparedDataset, data: str) -> None:
    """A prepared dataset's tiles are the model's windows at its resolution: tile-level
    scores feed them to the network as they are."""
    manifest = dataset.tile_manifest
    if manifest.patch_size == config.patch_size and _same_resolution(config, manifest):
        return
    where = f"{manifest.gsd:g} m per pixel" if manifest.gsd else f"scale {manifest.scale}"
    theirs = f"{manifest.patch_size} px at {where}"
    raise EvaluationInputError(
        f"{data} is tiled {theirs}, the model takes windows of {_model_tiling(config)}: "
        f"evaluate the source it was prepared from (tiled the model's way), or prepare it "
        f"again with the model's --patch-size and --scale/--target-gsd")


def check_split_tiles(dataset: PreparedDataset, split: SplitName, data: str) -> None:
    if dataset.tile_ids(split):
        return
    sizes = ", ".join(f"{name} {len(dataset.tile_ids(name))}" for name in SPLIT_NAMES)
    raise EvaluationInputError(f"{data}: the {split} split has no tiles to score (tiles per "
                               f"split: {sizes}); choose another with --split")


def alias_problem(err: SettingError, source: str, model_uri: str) -> Exception:
    """A problem of the class aliases is the user's input (exit 2), told with its flag."""
    if err.field != "class_aliases":
        return err
    return EvaluationInputError(f"{source} does not fit the model {model_uri}: "
                                f"{err.named('--class-alias')}")


def check_alias_targets(config: ServingConfig, model_uri: str, data: str,
                        ingest: IngestOptions) -> None:
    """Every alias names a class of the model: told from its serving config alone, before
    the source is read."""
    try:
        check_targets(ingest.class_aliases, config.class_names, "the model's classes")
    except SettingError as err:
        raise alias_problem(err, data, model_uri) from None

"""prepare: ingest -> tile -> split -> normalize into one dataset folder, without Kubeflow.

The dataset is built in a temporary sibling and renamed into place only when every step has
finished, so a failed or killed prepare leaves nothing that a re-run would mistake for a
finished artifact (and a re-run over a finished one replaces it whole)."""

from __future__ import annotations

import warnings
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from components.artifacts import SPLIT_NAMES
from components.atomic import atomic_dir, write_json
from components.dataset_paths import DatasetPaths, PreparedDataset
from components.ingest import ingest_source
from components.ingest_options import IngestOptions
from components.normalize import fit_normalization
from components.raster import DataError, ProgressCallback, reworded
from components.split import SplitOptions, SplitWarning, split_tiles
from components.tile import TileOptions, tile_scenes


class PrepareOptions(BaseModel):
    """The data steps' options: the config file's ``data`` section, and ``segpipe prepare``'s."""

    model_config = ConfigDict(extra="forbid")
    ingest: IngestOptions = Field(default_factory=IngestOptions,
                                  description="how scenes, masks and classes are read")
    tile: TileOptions = Field(default_factory=TileOptions, description="patch cutting")
    split: SplitOptions = Field(default_factory=SplitOptions,
                                description="train/val/test split without leakage")


class SplitSummary(BaseModel):
    scenes: int
    tiles: int
    class_shares: dict[str, float] = Field(description="class name -> share of labelled pixels")


class PrepareSummary(BaseModel):
    dataset_dir: str
    classes: list[str]
    bands: int
    layout: str = Field("", description="tile size and stride, the split and its block size "
                        "(chosen from the survey's extent when block_size is not set)")
    nodata: float | None = Field(None, description="the images' nodata value the tiles and "
                                 "statistics were made with (their own tag, else "
                                 "ingest.nodata); None: only NaN marks no data")
    splits: dict[str, SplitSummary]
    warnings: list[str] = []


def summarize(dataset: PreparedDataset) -> PrepareSummary:
    """Scenes, tiles and class pixel shares per split, with the split's warnings."""
    classes, manifest, split = dataset.class_map, dataset.tile_manifest, dataset.split_manifest
    by_id = {t.id: t for t in manifest.tiles}
    summaries = {}
    for name in SPLIT_NAMES:
        tiles = [by_id[t] for t in split.splits.get(name, [])]
        counts = [0] * classes.num_classes
        for t in tiles:
            for c, n in t.class_counts.items():
                counts[c] += n
        total = sum(counts) or 1
        summaries[name] = SplitSummary(
            scenes=len({t.scene for t in tiles}), tiles=len(tiles),
            class_shares={c.name: counts[c.id] / total for c in classes.classes})
    layout = f"{manifest.patch_size} px tiles, stride {manifest.stride}; {split.strategy} split"
    if split.block_size:
        layout += f", {split.block_size} px blocks"
    return PrepareSummary(dataset_dir=str(dataset.root), classes=classes.names,
                          bands=manifest.bands, layout=layout, nodata=manifest.nodata,
                          splits=summaries,
                          warnings=split.warnings)


def _check_output(source: str, out_dir: Path) -> None:
    """The output folder is replaced whole, so it must be absent, empty or a dataset."""
    if out_dir.exists():
        if not out_dir.is_dir():
            raise DataError(f"{out_dir}: exists and is not a folder")
        paths = DatasetPaths(out_dir)
        is_dataset = paths.tiles_manifest.exists() or (out_dir / "summary.json").exists()
        if any(out_dir.iterdir()) and not is_dataset:
            raise DataError(f"{out_dir}: exists, is not empty and is not a segpipe dataset; "
                            "refusing to replace it")
    if not source.startswith("s3://"):
        src, out = Path(source).resolve(), out_dir.resolve()
        if out == src or out.is_relative_to(src) or src.is_relative_to(out):
            raise DataError(f"{out_dir}: the output must lie outside the source {source}")


def prepare_dataset(source: str | Path, out_dir: Path, options: PrepareOptions | None = None,
                    progress: ProgressCallback | None = None) -> PrepareSummary:
    """Build a complete dataset (classes.json, scenes/, tiles/, tiles.json, split.json,
    stats.json, summary.json) at ``out_dir`` from ``source``."""
    options = options or PrepareOptions()
    out_dir = Path(out_dir)
    _check_output(str(source), out_dir)
    with atomic_dir(out_dir) as tmp:
        paths = DatasetPaths(tmp)
        try:
            ingest_source(str(source), tmp, options.ingest, progress)
            tile_scenes(tmp, tmp, options.tile, progress)
            with warnings.catch_warnings():
                # The warnings are kept in split.json and the summary; the CLI shows them.
                warnings.simplefilter("ignore", SplitWarning)
                split_tiles(tmp, paths.split, options.split)
            fit_normalization(tmp, paths.split, paths.stats, progress=progress)
        except DataError as err:
            # The temporary folder is removed on the way out: name the output instead.
            raise reworded(err, lambda text: text.replace(str(tmp), str(out_dir))) from None
        summary = summarize(PreparedDataset(tmp))
        write_json(tmp / "summary.json", summary.model_dump(mode="json") | {
            "dataset_dir": str(out_dir)})
    return summary.model_copy(update={"dataset_dir": str(out_dir)})

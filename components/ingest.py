"""Ingest: any supported source and layout -> standardized scene pairs.

Writes ``out_dir/scenes/<scene>_image.tif`` (source dtype, bands, nodata, CRS and transform
kept; plain JPEG/PNG get crs=None and the identity transform) and ``<scene>_mask.tif``
(uint8 contiguous class ids; ``ignore_index`` where the label is ignored or the image is
nodata/NaN), ``out_dir/scenes.json`` (where each scene came from), then
``out_dir/classes.json`` last, so its presence marks a finished ingest.

Every label is surveyed first (``components.survey``), so a dataset's problems are reported
together before anything is written. Scenes are streamed strip by strip: memory does not
grow with scene size. Error messages name files as the user knows them: inside an archive
``data.zip:images/a.png``, on S3 ``s3://bucket/prefix/images/a.png``."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from components.artifacts import ClassMap, SceneIndex, SceneSource
from components.class_aliases import ClassAliases
from components.dataset_paths import DatasetPaths
from components.discover import Discovery, discover_pairs
from components.discover_rules import data_root
from components.given_split import given_splits
from components.label_spec import find_classes_file, resolve_spec
from components.labelme import survey_labelme
from components.raster import (
    DataError,
    ProgressCallback,
    gdal_env,
    open_raster,
    reworded,
)
from components.scene_writer import write_scene
from components.sources import ExtractLimits, materialize_source
from components.survey import (
    EXAMPLE_FILES,
    MIN_SCENE_EDGE,
    Survey,
    check_options_apply,
    survey_image,
    survey_mask,
    warn_collected,
)
from components.vector_info import crs_text, read_layer_info
from components.vectors import VectorLayer
from components.wording import counted


class PaletteEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    color: str = Field(pattern=r"^#[0-9A-Fa-f]{6}$", description="#RRGGBB")


def _relative(value: str | None, field: str) -> str | None:
    if value is not None and (Path(value).is_absolute() or ".." in Path(value).parts):
        raise ValueError(f"{field} must be a path inside the source, got {value!r}")
    return value


class IngestOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    image_dir: str | None = Field(
        default=None, description="folder of images, relative to the source root (e.g. "
        "'train', 'img', 'images/2017'); default: found by layout")
    mask_dir: str | None = Field(
        default=None, description="folder of labels matching image_dir by relative path and "
        "stem (e.g. 'label', 'ann', 'masks/2017'); default: a sibling of image_dir named in "
        "mask_dir_names")
    mask_dir_names: list[str] = ["masks", "labels", "gt"]
    vector_labels: str | None = Field(
        default=None, description="one GeoJSON/GeoPackage/Shapefile, relative to the source "
        "root, whose polygons label every image (images: image_dir, default all rasters)")
    vector_layer: str | None = Field(
        default=None, description="vector labels: the layer to read, required when a file "
        "has several (e.g. a GeoPackage's 'tea' beside 'aoi')")
    class_attribute: str = Field(default="class", min_length=1,
                                 description="vector labels: the attribute holding the class "
                                 "(text: class names; numbers: class ids, 0 = background)")
    palette: Literal["auto", "classes.json"] | str | list[PaletteEntry] = Field(
        default="auto", description="class names and colours: 'auto' (colours discovered "
        "in colour masks, values in class-id masks, named from a classes.json where one "
        "matches), 'classes.json' (from the source or classes_file), a path to a JSON "
        "palette/classes file, or a list of {name, color}")
    classes_file: str | None = Field(default=None, description="a classes.json outside the "
                                     "source; default: the shallowest classes.json in it")
    class_values: dict[int, int] | None = Field(
        default=None, description="class-id masks and numeric vector classes: raw value "
        "-> contiguous class id")
    class_names: list[str] | None = Field(
        default=None, description="class-id masks and numeric vector classes: names of ids "
        "0..K-1")
    ignore_values: list[int] = Field(default=[], description="class-id masks and numeric "
                                     "vector classes: values to ignore")
    class_aliases: ClassAliases = Field(
        default={}, json_schema_extra={"flag": "--class-alias"},
        description="every label kind: label class name -> the class it is (e.g. {tea: "
        "class_1, Tea: class_1}), by the names the ingest gives (polygon classes, palette "
        "names, class_<value> (value 0: background), class_<RRGGBB>); names aliased to "
        "one class merge; a target is a class of the labels or palette (segpipe evaluate: "
        "of the model)")
    ignore_colors: list[str] = Field(default=[], description="colour masks: '#RRGGBB' colours "
                                     "to ignore")
    color_tolerance: int = Field(default=40, ge=0, le=255,
                                 description="lossy masks: max per-channel colour distance")
    color_table: Literal["colors", "ids"] = Field(
        default="colors", description="single-band masks with a colour table (PNG palette, "
        "GeoTIFF colour map): 'colors' reads each pixel as its table's colour (tables differ "
        "per file); 'ids' reads the raw index (the table is only decoration)")
    min_color_share: float = Field(
        default=1e-4, ge=0, lt=1, description="palette auto, lossless colour masks: a colour "
        "on fewer than this share of the labelled pixels is an error (map it with "
        "ignore_colors); 0 accepts any")
    ignore_index: int = Field(default=255, ge=1, le=255)
    side_by_side: bool | None = Field(
        default=None, description="image|colour-mask halves in one file; None = detect")
    split_lists: str | None = Field(
        default=None, description="folder (relative to the source) with train.txt, val.txt, "
        "test.txt for the 'given' split; default: found in the source")
    max_pixels: int = Field(default=1_000_000_000, ge=1, description="largest image or mask "
                            "(width x height) accepted, checked before decoding")
    max_member_bytes: int = Field(default=16 << 30, ge=1,
                                  description="archives and S3: largest single file")
    max_extract_bytes: int = Field(default=64 << 30, ge=1,
                                   description="archives and S3: most bytes in all")
    max_compression_ratio: float = Field(
        default=200.0, gt=1, description="archives: extracted bytes per archive byte beyond "
        "which extraction stops (zip bombs)")
    max_vector_features: int = Field(default=2_000_000, ge=1,
                                     description="vector labels: most features in one file")
    max_source_files: int = Field(
        default=200_000, ge=1, description="folders and S3: most files the source may hold "
        "(a run lists them all to tell whether the source changed since its cached ingest)")

    @field_validator("image_dir", "mask_dir", "vector_labels", "split_lists")
    @classmethod
    def _inside_source(cls, value: str | None, info) -> str | None:
        return _relative(value, info.field_name)

    @field_validator("palette")
    @classmethod
    def _palette_named(cls, value):
        if isinstance(value, str) and not value.strip():
            raise ValueError("palette must be 'auto', 'classes.json', a path or a list")
        return value

    def extract_limits(self) -> ExtractLimits:
        return ExtractLimits(self.max_member_bytes, self.max_extract_bytes,
                             self.max_compression_ratio)


def _survey(found: Discovery, options: IngestOptions, progress: ProgressCallback | None
            ) -> tuple[Survey, dict[Path, VectorLayer], list[Path]]:
    """What every label holds, and for vector labels the polygons over each scene; the
    scenes no polygon covers are returned (they will be all background)."""
    survey, layers, bare = Survey(), {}, []
    pairs = found.pairs
    for i, pair in enumerate(pairs):
        size = survey_image(pair, survey, options.max_pixels)
        if min(size) < MIN_SCENE_EDGE:
            survey.too_small.append(pair.image)
            continue
        if pair.kind == "labelme":
            survey_labelme(pair, survey, size)
        elif pair.kind == "vector":
            if pair.label not in layers:
                info = found.layers.get(pair.label) or read_layer_info(
                    pair.label, options.vector_layer, options.class_attribute,
                    options.max_vector_features, _crs_of(pair.image))
                layer = layers[pair.label] = VectorLayer(info, options.class_attribute)
                if layer.numeric:
                    survey.add_kind("vector_ids", pair.label)
                    survey.add_values(pair.label, layer.label_counts())
                else:
                    survey.add_kind("vector", pair.label)
                    survey.labels.update(layer.label_counts())
            with open_raster(pair.image) as img:
                if layers[pair.label].place(pair.image, img.crs, img.transform, *size) == 0:
                    bare.append(pair.image)
        else:
            survey_mask(pair, survey, size, options.max_pixels, options.color_table)
        if progress:
            progress("survey", i + 1, len(pairs))
    for layer in layers.values():
        layer.check_overlap()
    return survey, layers, bare


def _relabeller(source: str, root: Path):
    """Paths under a temporary extraction folder -> how the user knows them."""
    local = Path(source).expanduser()
    if local.is_dir() and local.resolve() == root.resolve():
        return lambda text: text
    prefix = source.rstrip("/") + "/" if source.startswith("s3://") else f"{source}:"

    def relabel(text: str) -> str:
        return text.replace(str(root) + os.sep, prefix).replace(str(root), source)
    return relabel


def _crs_of(image: Path) -> str | None:
    with open_raster(image) as src:
        return crs_text(src.crs) if src.crs else None


def find_pairs(root: Path, options: IngestOptions) -> Discovery:
    """The scene pairs the ingest step reads under a local folder ``root``, with the
    ``vector_labels`` file's layer checked from its header (layer choice, class attribute,
    feature count); a DataError when there are none or the layer is unusable (callers check
    a local source with it before starting any work)."""
    found = discover_pairs(root, options.mask_dir_names, options.side_by_side,
                           options.image_dir, options.mask_dir, options.vector_labels)
    if options.vector_labels is not None:
        path = found.pairs[0].label
        found.layers[path] = read_layer_info(path, options.vector_layer,
                                             options.class_attribute,
                                             options.max_vector_features,
                                             _crs_of(found.pairs[0].image))
        _check_extent_overlaps(found)
    return found


#: Scene headers the vector extent check reads at most (about a millisecond each); with
#: more scenes the ingest's survey alone checks the overlap.
EXTENT_CHECK_SCENES = 2_000


def _check_extent_overlaps(found: Discovery) -> None:
    """The vector file's extent (its header's) overlaps no scene footprint (the scenes'
    headers): its CRS is wrong, or it is for other ground. Found now, by the ingest's own
    overlap rule and message, instead of after the survey read every polygon."""
    if len(found.pairs) > EXTENT_CHECK_SCENES:
        return
    layer = VectorLayer.extent_only(found.layers[found.pairs[0].label])
    if layer is None:
        return
    for pair in found.pairs:
        with open_raster(pair.image) as img:
            if img.crs is None:
                return  # the survey says it, naming the scene
            layer.place(pair.image, img.crs, img.transform, img.width, img.height)
    layer.check_overlap()


def _ingest(root: Path, source: str, out_dir: Path, options: IngestOptions,
            progress: ProgressCallback | None, relabel, model: ClassMap | None) -> ClassMap:
    found = find_pairs(root, options)
    survey, layers, bare = _survey(found, options, progress)
    pairs = [p for p in found.pairs if p.image not in survey.too_small]
    if survey.too_small:
        shown = ", ".join(str(p) for p in survey.too_small[:3])
        if not pairs:
            raise DataError(f"every scene is smaller than {MIN_SCENE_EDGE} px on a side, "
                            f"e.g. {shown}")
        what = counted(len(survey.too_small), "scene is", "scenes are")
        survey.warn(f"{what} smaller than {MIN_SCENE_EDGE} px on a side and skipped (an "
                    f"export error?): {shown}")
    if found.unmatched:
        shown = ", ".join(str(p) for p in found.unmatched[:3])
        files = counted(len(found.unmatched), "file without a partner was",
                        "files without a partner were")
        survey.warn(f"{files} skipped (images without a label, or labels without an "
                    f"image), e.g. {shown}")
    check_options_apply(survey, options)
    spec = resolve_spec(survey, find_classes_file(root, options), options, model)
    splits = given_splits(root, pairs, options.split_lists)
    scenes_dir = DatasetPaths(out_dir).scenes_dir
    scenes_dir.mkdir(parents=True, exist_ok=True)
    no_valid = []
    for i, pair in enumerate(pairs):
        if not write_scene(pair, spec, scenes_dir, survey.lossy, options.color_table,
                           layers.get(pair.label) if pair.kind == "vector" else None):
            no_valid.append(pair.image)
        if progress:
            progress("ingest", i + 1, len(pairs))
    if no_valid:
        what = counted(len(no_valid), "image has", "images have")
        survey.warn(f"{what} no valid pixel (all nodata), so no tile: "
                    f"{', '.join(str(p) for p in no_valid[:EXAMPLE_FILES])}"
                    + (f" and {len(no_valid) - EXAMPLE_FILES} more"
                       if len(no_valid) > EXAMPLE_FILES else ""))
    if bare:
        what = counted(len(bare), "scene has no polygon over it and is",
                       "scenes have no polygon over them and are")
        survey.warn(f"{what} all background, e.g. {bare[0]}")
    for layer in layers.values():
        survey.warnings += layer.report()
    base = data_root(root)  # recorded paths (tiles.json, the digest) are the data's own
    index = SceneIndex(source=source, data_root=base.relative_to(root).as_posix(),
                       label_kind=survey.kind,
                       warnings=warn_collected(survey, relabel), scenes=[
        SceneSource(name=p.name, source=p.image.relative_to(base).as_posix(),
                    label=p.label.relative_to(base).as_posix(), given_split=splits[p.name])
        for p in pairs])
    index.save(DatasetPaths(out_dir).scene_index)
    spec.class_map.save(out_dir / "classes.json")
    return spec.class_map


def ingest_source(source: str | Path, out_dir: Path, options: IngestOptions | None = None,
                  progress: ProgressCallback | None = None,
                  model_classes: ClassMap | None = None) -> ClassMap:
    """Read scenes from a folder, archive or ``s3://`` prefix into ``out_dir/scenes`` and
    write ``out_dir/scenes.json`` and ``out_dir/classes.json``. Bad input raises
    ``DataError`` naming file and problem, and leaves nothing behind in ``out_dir``. With
    ``model_classes`` (a model's: ``segpipe evaluate``) the label classes, once aliased,
    map onto them by name; one the model lacks is a ``SettingError`` of class_aliases."""
    options = options or IngestOptions()
    out_dir = Path(out_dir)
    created = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        with gdal_env(), tempfile.TemporaryDirectory(prefix=".ingest-", dir=out_dir) as scratch, \
                materialize_source(str(source), Path(scratch), options.extract_limits()) as root:
            relabel = _relabeller(str(source), root)
            try:
                return _ingest(root, str(source), out_dir, options, progress, relabel,
                               model_classes)
            except DataError as err:
                raise reworded(err, relabel) from None
    except BaseException:
        scenes_dir = DatasetPaths(out_dir).scenes_dir
        if scenes_dir.is_dir() and not any(scenes_dir.iterdir()):
            scenes_dir.rmdir()
        if created and not any(out_dir.iterdir()):
            out_dir.rmdir()
        raise

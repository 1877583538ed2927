"""Ingest: any supported source and layout -> standardized scene pairs.

Writes ``out_dir/scenes/<scene>_image.tif`` (source bands, nodata, CRS and transform kept,
in the bands' type, their common one when they differ: serving/bands.py; a PNG's alpha
channel is no band, its transparent pixels no data, as are those a GeoTIFF's own mask marks;
plain JPEG/PNG get crs=None and the identity transform) and ``<scene>_mask.tif`` (uint8
contiguous class ids; ``ignore_index`` where the label is ignored or the image is
nodata/NaN/transparent/masked),
``out_dir/scenes.json`` (where each scene came from), then
``out_dir/classes.json`` last, so its presence marks a finished ingest.

Every label is surveyed first (``components.survey``), so a dataset's problems are reported
together before anything is written. Scenes are streamed strip by strip: memory does not
grow with scene size. Error messages name files as the user knows them: inside an archive
``data.zip:images/a.png``, on S3 ``s3://bucket/prefix/images/a.png``."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from components.artifacts import ClassMap, SceneIndex, SceneSource
from components.dataset_paths import DatasetPaths
from components.discover import Discovery, ScenePair, discover_pairs
from components.discover_rules import data_root
from components.given_split import given_splits
from components.image_nodata import ImageNodata
from components.ingest_options import IngestOptions
from components.label_spec import find_classes_file, resolve_spec
from components.labelme import survey_labelme
from components.raster import (
    DataError,
    ProgressCallback,
    gdal_env,
    reworded,
)
from components.scene_writer import write_scene
from components.sources import materialize_source
from components.survey import EXAMPLE_FILES, MIN_SCENE_EDGE, Survey, survey_image, survey_mask
from components.survey_checks import check_options_apply, warn_collected
from components.vector_info import LayerInfo, crs_text, read_layer_info
from components.vectors import VectorLayer
from components.wording import counted


def _survey(found: Discovery, options: IngestOptions, nodata: ImageNodata,
            progress: ProgressCallback | None
            ) -> tuple[Survey, dict[Path, VectorLayer], list[Path]]:
    """What every label holds, and for vector labels the polygons over each scene; the
    scenes no polygon covers are returned (they will be all background). ``nodata`` learns
    each image's nodata."""
    survey, layers, bare, empty = Survey(), {}, [], []
    pairs = found.pairs
    for i, pair in enumerate(pairs):
        size = survey_image(pair, survey, options.max_pixels)
        nodata.read(pair)
        if min(size) < MIN_SCENE_EDGE:
            survey.too_small.append(pair.image)
            continue
        if pair.kind == "labelme":
            survey_labelme(pair, survey, size)
        elif pair.kind == "vector":
            if pair.label not in layers:
                info = found.layers.get(pair.label) or read_layer_info(
                    pair.label, options.vector_layer, _class_field(options),
                    options.max_vector_features, _crs_of(pair))
                layers[pair.label] = VectorLayer(info, options.class_attribute,
                                                 options.vector_class)
                _add_layer(survey, info, layers[pair.label])
            with pair.open_image() as img:
                if layers[pair.label].place(pair.image, img.crs, img.transform, *size) == 0:
                    (empty if layers[pair.label].empty else bare).append(pair.image)
        else:
            survey_mask(pair, survey, size, options.max_pixels, options.color_table)
        if progress:
            progress("survey", i + 1, len(pairs))
    for layer in layers.values():
        layer.check_overlap()
    if empty:
        files = [path for path, layer in layers.items() if layer.empty]
        if not survey.kinds:  # every file is empty: polygons with no class yet
            survey.add_kind("vector", files[0])
            if options.vector_class:  # but their one class is known
                survey.labels[options.vector_class] += 0
        survey.warn(f"{counted(len(files), 'vector label file holds', 'vector label files hold')}"
                    f" no feature, so {counted(len(empty), 'scene is', 'scenes are')} all "
                    f"background, as ground no polygon covers: e.g. {files[0]}")
    return survey, layers, bare


def _add_layer(survey: Survey, info: LayerInfo, layer: VectorLayer) -> None:
    """A vector file's label kind and classes; a file without features has neither."""
    if info.empty:
        return
    if layer.numeric:
        survey.add_kind("vector_ids", info.path)
        survey.add_values(info.path, layer.label_counts())
    else:
        survey.add_kind("vector", info.path)
        survey.labels.update(layer.label_counts())


def _relabeller(source: str, root: Path):
    """Paths under a temporary extraction folder -> how the user knows them."""
    local = Path(source).expanduser()
    if local.is_dir() and local.resolve() == root.resolve():
        return lambda text: text
    prefix = source.rstrip("/") + "/" if source.startswith("s3://") else f"{source}:"

    def relabel(text: str) -> str:
        return text.replace(str(root) + os.sep, prefix).replace(str(root), source)
    return relabel


def _class_field(options: IngestOptions) -> str | None:
    """The attribute the vector files need: none when every polygon is ``vector_class``."""
    return None if options.vector_class else options.class_attribute


def _crs_of(pair: ScenePair) -> str | None:
    with pair.open_image() as src:
        return crs_text(src.crs) if src.crs else None


def find_pairs(root: Path, options: IngestOptions) -> Discovery:
    """The scene pairs the ingest step reads under a local folder ``root``, with the
    ``vector_labels`` file's layer checked from its header (layer choice, class attribute,
    feature count); a DataError when there are none or the layer is unusable (callers check
    a local source with it before starting any work)."""
    found = discover_pairs(root, options.mask_dir_names, options.side_by_side,
                           options.image_dir, options.mask_dir, options.vector_labels,
                           options.pair_by)
    if options.vector_labels is not None:
        path = found.pairs[0].label
        found.layers[path] = read_layer_info(path, options.vector_layer,
                                             _class_field(options),
                                             options.max_vector_features,
                                             _crs_of(found.pairs[0]))
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
        with pair.open_image() as img:
            if img.crs is None:
                return  # the survey says it, naming the scene
            layer.place(pair.image, img.crs, img.transform, img.width, img.height)
    layer.check_overlap()


def _ingest(root: Path, source: str, out_dir: Path, options: IngestOptions,
            progress: ProgressCallback | None, relabel, model: ClassMap | None,
            trained_ignored: frozenset[int]) -> ClassMap:
    found = find_pairs(root, options)
    nodata = ImageNodata(options.nodata)
    survey, layers, bare = _survey(found, options, nodata, progress)
    survey.warnings += nodata.warnings()
    pairs = [p for p in found.pairs if p.image not in survey.too_small]
    if survey.too_small:
        shown = ", ".join(str(p) for p in survey.too_small[:3])
        if not pairs:
            raise DataError(f"every scene is smaller than {MIN_SCENE_EDGE} px on a side, "
                            f"e.g. {shown}")
        what = counted(len(survey.too_small), "scene is", "scenes are")
        survey.warn(f"{what} smaller than {MIN_SCENE_EDGE} px on a side and skipped (an "
                    f"export error?): {shown}")
    if unmatched := found.unmatched_line(root):
        survey.warn(unmatched)
    survey.warnings += found.notes
    check_options_apply(survey, options)
    spec = resolve_spec(survey, find_classes_file(root, options), options, model,
                        trained_ignored)
    given = given_splits(root, pairs, options.split_lists)
    scenes_dir = DatasetPaths(out_dir).scenes_dir
    scenes_dir.mkdir(parents=True, exist_ok=True)
    no_valid, source_dtypes = [], {}
    for i, pair in enumerate(pairs):
        written = write_scene(pair, spec, scenes_dir, survey.lossy, options.color_table,
                              nodata.of[pair.image],
                              layers.get(pair.label) if pair.kind == "vector" else None)
        source_dtypes[pair.name] = written.source_dtype
        if not written.valid:
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
                    label=p.label.relative_to(base).as_posix(),
                    given_split=given.splits[p.name], source_dtype=source_dtypes[p.name])
        for p in pairs], given_split_note=given.note)
    index.save(DatasetPaths(out_dir).scene_index)
    spec.class_map.save(out_dir / "classes.json")
    return spec.class_map


def ingest_source(source: str | Path, out_dir: Path, options: IngestOptions | None = None,
                  progress: ProgressCallback | None = None,
                  model_classes: ClassMap | None = None,
                  trained_ignored: frozenset[int] = frozenset()) -> ClassMap:
    """Read scenes from a folder, archive or ``s3://`` prefix into ``out_dir/scenes`` and
    write ``out_dir/scenes.json`` and ``out_dir/classes.json``. Bad input raises
    ``DataError`` naming file and problem, and leaves nothing behind in ``out_dir``. With
    ``model_classes`` (a model's: ``segpipe evaluate``) the label classes, once aliased,
    map onto them by name; one the model lacks is a ``SettingError`` of class_aliases.
    ``trained_ignored``: the mask values the model's training ignored, advised ignored
    (never applied) when the labels hold them."""
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
                               model_classes, trained_ignored)
            except DataError as err:
                raise reworded(err, relabel) from None
    except BaseException:
        scenes_dir = DatasetPaths(out_dir).scenes_dir
        if scenes_dir.is_dir() and not any(scenes_dir.iterdir()):
            scenes_dir.rmdir()
        if created and not any(out_dir.iterdir()):
            out_dir.rmdir()
        raise

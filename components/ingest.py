"""Ingest: any supported source and layout -> standardized scene pairs.

Writes ``out_dir/scenes/<scene>_image.tif`` (source dtype, bands, nodata, CRS and transform
kept; plain JPEG/PNG get crs=None and the identity transform) and ``<scene>_mask.tif``
(uint8 contiguous class ids; ``ignore_index`` where the label is ignored or the image is
nodata/NaN), then ``out_dir/classes.json`` last, so its presence marks a finished ingest.
Scenes are streamed strip by strip: memory does not grow with scene size."""

from __future__ import annotations

import json
import tempfile
import warnings
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import rasterio
from pydantic import BaseModel, ConfigDict, Field
from rasterio.errors import NotGeoreferencedWarning
from rasterio.features import rasterize
from rasterio.transform import Affine
from rasterio.windows import Window

from components.artifacts import ClassMap
from components.atomic import atomic_path
from components.discover import LOSSY_SUFFIXES, ScenePair, discover_pairs
from components.labels import (
    ClassEntry,
    ClassesFile,
    LabelSpec,
    auto_palette,
    color_spec,
    discover_colors,
    labelme_spec,
    map_colors,
    map_values,
    parse_color,
    read_classes_file,
    rgb_codes,
    value_spec,
)
from components.raster import (
    DataError,
    ProgressCallback,
    geotiff_profile,
    invalid_pixels,
    open_raster,
    strip_windows,
)
from components.sources import materialize_source


class PaletteEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    color: str = Field(pattern=r"^#[0-9A-Fa-f]{6}$", description="#RRGGBB")


class IngestOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mask_dir_names: list[str] = ["masks", "labels", "gt"]
    palette: Literal["auto", "classes.json"] | str | list[PaletteEntry] | None = Field(
        default="auto", description="colour masks: a palette, 'classes.json' (from the source "
        "or classes_file), a path to a JSON palette/classes file, or 'auto' (discovered); "
        "None accepts class-id masks only")
    classes_file: str | None = Field(default=None, description="a classes.json outside the "
                                     "source; default: the shallowest classes.json in it")
    class_values: dict[int, int] | None = Field(
        default=None, description="class-id masks: raw value -> contiguous class id")
    class_names: list[str] | None = None
    ignore_values: list[int] = []
    ignore_colors: list[str] = []
    color_tolerance: int = Field(default=40, ge=0, le=255,
                                 description="lossy masks: max per-channel colour distance")
    ignore_index: int = Field(default=255, ge=1, le=255)
    side_by_side: bool | None = Field(
        default=None, description="image|colour-mask halves in one file; None = detect")


@dataclass
class _Survey:
    kind: str | None = None  # "ids" | "colors" | "labelme"
    values: Counter = field(default_factory=Counter)
    labels: set[str] = field(default_factory=set)
    lossy: bool = False
    bands: int | None = None
    first_image: Path | None = None


def _image_window(pair: ScenePair, src) -> Window:
    if pair.kind == "side_by_side":
        return Window(0, 0, src.width // 2, src.height)
    return Window(0, 0, src.width, src.height)


def _label_window(pair: ScenePair, src) -> Window:
    if pair.kind == "side_by_side":
        half = src.width // 2
        return Window(half, 0, half, src.height)
    return Window(0, 0, src.width, src.height)


def _read_labelme(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
        assert isinstance(data["shapes"], list)
    except (OSError, ValueError, KeyError, AssertionError, TypeError) as err:
        raise DataError(f"{path}: not a LabelMe JSON file with a 'shapes' list ({err})") from err
    return data


def _survey_pair(pair: ScenePair, survey: _Survey) -> None:
    with open_raster(pair.image) as src:
        window = _image_window(pair, src)
        size, bands = (int(window.width), int(window.height)), src.count
    if survey.bands is None:
        survey.bands, survey.first_image = bands, pair.image
    elif bands != survey.bands:
        raise DataError(f"{pair.image}: {bands} bands, but {survey.first_image} has "
                        f"{survey.bands}; every scene needs the same bands")
    if pair.kind == "labelme":
        kind = "labelme"
        data = _read_labelme(pair.label)
        declared = (data.get("imageWidth"), data.get("imageHeight"))
        if None not in declared and tuple(declared) != size:
            raise DataError(f"{pair.label}: labels are {declared[0]}x{declared[1]} but image "
                            f"{pair.image} is {size[0]}x{size[1]}")
        survey.labels.update(str(s.get("label")) for s in data["shapes"])
    else:
        with open_raster(pair.label) as src:
            window = _label_window(pair, src)
            if (int(window.width), int(window.height)) != size:
                raise DataError(f"{pair.label}: mask is {int(window.width)}x"
                                f"{int(window.height)} but image {pair.image} is "
                                f"{size[0]}x{size[1]}")
            if src.count == 2 or src.count > 4:
                raise DataError(f"{pair.label}: mask has {src.count} bands; expected 1 (class "
                                "ids) or 3/4 (RGB colours)")
            kind = "ids" if src.count == 1 else "colors"
            survey.lossy |= pair.label.suffix.lower() in LOSSY_SUFFIXES or src.driver == "JPEG"
            for strip in strip_windows(int(window.width), int(window.height)):
                block = src.read(window=Window(window.col_off, strip.row_off, strip.width,
                                               strip.height))
                data = block[0] if kind == "ids" else rgb_codes(block)
                values, counts = np.unique(data, return_counts=True)
                survey.values.update(dict(zip(values.tolist(), counts.tolist(), strict=True)))
    if survey.kind is None:
        survey.kind = kind
    elif kind != survey.kind:
        raise DataError(f"{pair.label}: {kind} labels, but earlier scenes have {survey.kind} "
                        "labels; one dataset needs one label kind")


def _find_classes_file(root: Path, options: IngestOptions) -> ClassesFile | None:
    if options.classes_file:
        return read_classes_file(Path(options.classes_file))
    found = sorted(root.rglob("classes.json"), key=lambda p: (len(p.parts), str(p)))
    return read_classes_file(found[0]) if found else None


def _resolve_spec(survey: _Survey, classes: ClassesFile | None,
                  options: IngestOptions) -> LabelSpec:
    palette = None
    if isinstance(options.palette, list):
        palette = [ClassEntry(p.name, parse_color(p.color, "palette")) for p in options.palette]
    elif isinstance(options.palette, str) and options.palette not in ("auto", "classes.json"):
        palette = read_classes_file(Path(options.palette)).entries
    if survey.kind == "labelme":
        return labelme_spec(survey.labels, classes, palette, options.ignore_index)
    if survey.kind == "ids":
        ignore = set(options.ignore_values)
        if classes is not None and classes.ignore_index is not None:
            ignore.add(classes.ignore_index)
        names = options.class_names or ([p.name for p in palette] if palette else None)
        values = Counter({v: n for v, n in survey.values.items() if v not in ignore})
        return value_spec(values, classes, options.class_values, names, ignore,
                          options.ignore_index)
    if options.palette is None:
        raise DataError(f"{survey.first_image}: masks are RGB colours but palette is None; "
                        "give a palette, 'classes.json' or 'auto'")
    if palette is None and options.palette == "classes.json":
        if classes is None:
            raise DataError("palette 'classes.json' but no classes.json in the source and no "
                            "classes_file given")
        palette = classes.entries
    if palette is None:
        codes = discover_colors(survey.values, survey.lossy, options.color_tolerance)
        tolerance = options.color_tolerance if survey.lossy else 0
        palette = auto_palette(codes, classes, options.ignore_colors, tolerance)
    return color_spec(palette, options.ignore_colors, options.color_tolerance,
                      options.ignore_index)


def _labelme_shapes(path: Path, spec: LabelSpec) -> list[tuple[dict, int]]:
    shapes = []
    for shape in _read_labelme(path)["shapes"]:
        label = str(shape.get("label"))
        if label not in spec.label_ids:
            raise DataError(f"{path}: label {label!r} is not a known class "
                            f"{spec.class_map.names}")
        points = np.asarray(shape.get("points", []), dtype=float)
        kind = shape.get("shape_type") or "polygon"
        if kind == "rectangle" and len(points) == 2:
            (x0, y0), (x1, y1) = points
            points = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
        elif kind == "circle" and len(points) == 2:
            radius = np.hypot(*(points[1] - points[0]))
            angles = np.linspace(0, 2 * np.pi, 33)[:-1]
            points = points[0] + radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)
        elif kind != "polygon" or len(points) < 3:
            continue  # lines and points cover no area
        ring = [*map(tuple, points.tolist()), tuple(points[0].tolist())]
        shapes.append(({"type": "Polygon", "coordinates": [ring]}, spec.label_ids[label]))
    return shapes


def _write_scene(pair: ScenePair, spec: LabelSpec, scenes_dir: Path, lossy: bool) -> None:
    shapes = _labelme_shapes(pair.label, spec) if pair.kind == "labelme" else None
    with open_raster(pair.image) as img:
        window = _image_window(pair, img)
        width, height = int(window.width), int(window.height)
        georeferenced = img.crs is not None
        crs = img.crs if georeferenced else None
        transform = img.transform if georeferenced else Affine.identity()
        nodata = img.nodata
        image_profile = geotiff_profile(width, height, img.count, img.dtypes[0], crs,
                                        transform, nodata)
        mask_profile = geotiff_profile(width, height, 1, "uint8", crs, transform, spec.ignore)
        image_path = scenes_dir / f"{pair.name}_image.tif"
        mask_path = scenes_dir / f"{pair.name}_mask.tif"
        with ExitStack() as stack:
            label_src = (None if pair.kind == "labelme"
                         else stack.enter_context(open_raster(pair.label)))
            # Plain JPEG/PNG scenes are written with the identity transform on purpose.
            stack.enter_context(warnings.catch_warnings())
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with atomic_path(image_path) as tmp_image, atomic_path(mask_path) as tmp_mask, \
                    rasterio.open(tmp_image, "w", **image_profile) as dst_image, \
                    rasterio.open(tmp_mask, "w", **mask_profile) as dst_mask:
                for strip in strip_windows(width, height):
                    block = img.read(window=strip)
                    dst_image.write(block, window=strip)
                    if shapes is not None:
                        mask = rasterize(shapes, out_shape=(int(strip.height), width), fill=0,
                                         transform=Affine.translation(0, strip.row_off),
                                         dtype="uint8") if shapes else \
                            np.zeros((int(strip.height), width), np.uint8)
                    else:
                        label_window = _label_window(pair, label_src)
                        raw = label_src.read(window=Window(label_window.col_off, strip.row_off,
                                                           strip.width, strip.height))
                        mask = (map_values(raw[0], spec, pair.label) if raw.shape[0] == 1
                                else map_colors(raw, spec, pair.label, lossy))
                    mask[invalid_pixels(block, nodata)] = spec.ignore
                    dst_mask.write(mask[None], window=strip)


def ingest_source(source: str | Path, out_dir: Path, options: IngestOptions | None = None,
                  progress: ProgressCallback | None = None) -> ClassMap:
    """Read scenes from a folder, archive or ``s3://`` prefix into ``out_dir/scenes`` and
    write ``out_dir/classes.json``. Bad input raises ``DataError`` naming file and problem."""
    options = options or IngestOptions()
    out_dir = Path(out_dir)
    scenes_dir = out_dir / "scenes"
    scenes_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".ingest-", dir=out_dir) as scratch, \
            materialize_source(str(source), Path(scratch)) as root:
        pairs = discover_pairs(root, options.mask_dir_names, options.side_by_side)
        survey = _Survey()
        for i, pair in enumerate(pairs):
            _survey_pair(pair, survey)
            if progress:
                progress("survey", i + 1, len(pairs))
        spec = _resolve_spec(survey, _find_classes_file(root, options), options)
        for i, pair in enumerate(pairs):
            _write_scene(pair, spec, scenes_dir, survey.lossy)
            if progress:
                progress("ingest", i + 1, len(pairs))
    spec.class_map.save(out_dir / "classes.json")
    return spec.class_map

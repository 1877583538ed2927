"""Ingest's first pass: read every label once, before anything is written, and report every
problem of the dataset in one go (every unknown colour or value with its pixels and files,
colours too rare to be a class, options that do not apply to the labels found)."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from components.discover import ScenePair
from components.discover_rules import LOSSY_SUFFIXES
from components.image_nodata import source_bands
from components.label_place import image_window, place_label
from components.masks import IGNORE_CODE, mask_format
from components.raster import DataError, check_png, check_size, strip_windows
from components.wording import counted

# How many files a message names for one colour or value before it says "and N more".
EXAMPLE_FILES = 3
# How many unknown colours or values one message lists in full.
MAX_LISTED = 100
# A scene with an edge shorter than this (the smallest patch_size) is an export error (a 1x1
# chip), not a scene: skipped with a warning rather than padded into a tile of one pixel.
MIN_SCENE_EDGE = 8


class IngestWarning(UserWarning):
    """The labels were read, but not exactly as stored (alpha dropped, polygons skipped)."""


KIND_WORDS = {"ids": "class-id masks", "colors": "colour masks (RGB, RGBA or colour-table)",
              "labelme": "LabelMe polygons", "vector": "vector polygons",
              "vector_ids": "vector polygons with numeric class ids"}


@dataclass
class Survey:
    kinds: dict[str, Path] = field(default_factory=dict)  # label kind -> first label file
    values: Counter = field(default_factory=Counter)  # class value or colour code -> pixels
    files: dict = field(default_factory=lambda: defaultdict(list))  # value -> first files
    file_counts: Counter = field(default_factory=Counter)  # value -> number of files
    labels: Counter = field(default_factory=Counter)  # LabelMe / vector label -> shapes
    lossy: bool = False
    rgba: list[Path] = field(default_factory=list)
    indexed: list[Path] = field(default_factory=list)
    bands: int | None = None
    first_image: Path | None = None
    warnings: list[str] = field(default_factory=list)
    label_files: int = 0  # raster label files whose values were counted
    too_small: list[Path] = field(default_factory=list)  # images skipped: MIN_SCENE_EDGE
    # class-id masks: a declared nodata value -> the label files declaring it
    label_nodata: dict = field(default_factory=lambda: defaultdict(list))
    # raster labels that cover only part of their image: (label, pixels uncovered, pixels)
    partial: list[tuple[Path, int, int]] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return next(iter(self.kinds))

    def add_values(self, path: Path, counts: Counter) -> None:
        self.label_files += 1
        self.values.update(counts)
        for value in counts:
            self.file_counts[value] += 1
            if len(self.files[value]) < EXAMPLE_FILES:
                self.files[value].append(path)

    def add_kind(self, kind: str, path: Path) -> None:
        self.kinds.setdefault(kind, path)
        if len(self.kinds) > 1:
            (a, first), (b, second) = list(self.kinds.items())[:2]
            hint = ""
            if {a, b} == {"ids", "colors"} and self.indexed:
                # a grey colour table saved over class ids by one tool and not by another
                hint = (f"; if the colour tables (e.g. of {self.indexed[0]}) only decorate "
                        "class ids, read them as ids with ingest.color_table: ids "
                        "(--color-table ids)")
            raise DataError(f"{second}: {KIND_WORDS[b]}, but {first} has {KIND_WORDS[a]}; one "
                            f"dataset needs one label kind{hint}")

    def warn(self, message: str) -> None:
        self.warnings.append(message)

    def where(self, value, limit: int = EXAMPLE_FILES) -> str:
        """The first files (at most ``limit``) holding ``value``, and how many more do."""
        shown = self.files[value][:limit]
        files = ", ".join(str(p) for p in shown)
        more = self.file_counts[value] - len(shown)
        return files + (f" and {counted(more, 'more file')}" if more > 0 else "")


def check_file(path: Path, src, max_pixels: int) -> None:
    """Cheap checks before any pixel is decoded: the declared size and, for PNG, that the
    file is whole (GDAL reads a truncated PNG as zeros without a word)."""
    check_size(path, src.width, src.height, max_pixels)
    if src.driver == "PNG":
        check_png(path)


#: Formats GDAL decodes from the first row to read any part (no blocks to skip to).
WHOLE_FILE_DRIVERS = ("PNG", "JPEG")


def check_label_file(path: Path, src, max_pixels: int) -> None:
    """``check_file`` for a label, which is read only over its image's window (never more
    pixels than the image, which ``check_file`` held to ``max_pixels``): a label larger than
    ``max_pixels`` (one exported for a wider area) is taken when the blocks that window
    decodes are within it, and refused when it is stored as one block (a PNG or JPEG, a
    one-strip GeoTIFF) or in blocks larger than ``max_pixels``."""
    if src.width * src.height <= max_pixels:
        check_file(path, src, max_pixels)
        return
    whole = src.driver in WHOLE_FILE_DRIVERS
    rows, cols = (src.height, src.width) if whole else src.block_shapes[0]
    if rows * cols > max_pixels:
        stored = (f"a {src.driver} is decoded whole" if whole else
                  f"it is stored in blocks of {cols}x{rows} pixels ({cols * rows:,}), each "
                  f"decoded whole")
        raise DataError(f"{path}: {src.width}x{src.height} pixels ({src.width * src.height:,})"
                        f" is more than max_pixels ({max_pixels:,}), and {stored} to read any "
                        f"part of it; crop it to its image, save it as a tiled GeoTIFF "
                        f"(gdal_translate -co TILED=YES) or raise max_pixels")


def survey_image(pair: ScenePair, survey: Survey, max_pixels: int) -> tuple[int, int]:
    with pair.open_image() as src:
        check_file(pair.image, src, max_pixels)
        window = image_window(pair, src)
        size, bands = (int(window.width), int(window.height)), len(source_bands(src).indexes)
    if survey.bands is None:
        survey.bands, survey.first_image = bands, pair.image
    elif bands != survey.bands:
        raise DataError(f"{pair.image}: {counted(bands, 'band')}, but {survey.first_image} has "
                        f"{survey.bands}; every scene needs the same bands")
    return size


def survey_mask(pair: ScenePair, survey: Survey, size: tuple[int, int], max_pixels: int,
                color_table: str) -> None:
    with pair.open_label() as src:
        check_label_file(pair.label, src, max_pixels)
        with pair.open_image() as image:
            place = place_label(pair, image, src)
        if unlabelled := place.unlabelled(*size):
            survey.partial.append((pair.label, unlabelled, size[0] * size[1]))
        fmt = mask_format(src, pair.label, color_table)
        if fmt.indexed:
            survey.indexed.append(pair.label)  # before add_kind, whose error names it
        survey.add_kind(fmt.kind, pair.label)
        if fmt.alpha:
            survey.rgba.append(pair.label)
        survey.lossy |= pair.label.suffix.lower() in LOSSY_SUFFIXES or src.driver == "JPEG"
        counts: Counter = Counter()
        for strip in strip_windows(*size):
            data = place.read(src, pair.label, fmt, strip)
            if fmt.kind == "ids" and np.issubdtype(data.dtype, np.floating):
                data = data[~np.isnan(data)]
            values, pixels = np.unique(data, return_counts=True)
            for value, n in zip(values.tolist(), pixels.tolist(), strict=True):
                counts[int(value) if float(value).is_integer() else value] += n
        counts.pop(IGNORE_CODE if fmt.kind == "colors" else None, None)
        survey.add_values(pair.label, counts)
        if fmt.kind == "ids" and src.nodata is not None and not np.isnan(src.nodata):
            nodata = float(src.nodata)
            survey.label_nodata[int(nodata) if nodata.is_integer() else nodata].append(
                pair.label)

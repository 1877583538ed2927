"""The ingest step's options (components/ingest.py): where the labels are, how their
values or colours become classes, and the limits on what a source may hold. Apart from the
step, so that the pipeline's config, the CLI and the web app read them without loading
the rasters' and vectors' code."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from components.class_aliases import ClassAliases
from components.labels import BACKGROUND_NAMES
from components.name_patterns import check_id_pattern
from components.sources import ExtractLimits


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
        "'train', 'img', 'images/2017', '2_Ortho_RGB'), or a folder whose image and label "
        "folders are found as without it (e.g. 'tiff' of a dataset shipped as tiff/ and "
        "png/ copies); default: found by layout")
    mask_dir: str | None = Field(
        default=None, description="folder of labels matching image_dir by relative path and "
        "stem (e.g. 'label', 'ann', 'masks/2017'), or image_dir itself when images and "
        "labels share a folder (told apart by stem suffixes: a_sat.jpg, a_mask.png); "
        "default: the folder beside image_dir named as its labels (a label word such as "
        "masks, gt, annotations, or image_dir's name plus one: train_labels)")
    mask_dir_names: list[str] = Field(
        default=["masks", "labels", "gt"], description="more names of label folders, "
        "besides those with a label word (masks, masks_png, labels, gt, gts_for_participants, "
        "ann, annotations, SegmentationClass ...), compared in any case")
    pair_by: str | None = Field(
        default=None, description="a regular expression whose first group, searched in an "
        "image's and a label's file name without the extension, is the scene id they share "
        "(e.g. '^(?:SN_|buildings_)(.+)$' for SN_x.tif + buildings_x.geojson): images and "
        "labels in two folders pair by it instead of by the name rules (same stem, known "
        "suffixes, the folder's name as first or last word)")
    vector_labels: str | None = Field(
        default=None, description="one GeoJSON/GeoPackage/Shapefile, relative to the source "
        "root, whose polygons label every image (images: image_dir, default all rasters); "
        "vector files one per image (SpaceNet's) pair with their images as raster labels do, "
        "by image_dir and mask_dir")
    vector_layer: str | None = Field(
        default=None, description="vector labels: the layer to read, required when a file "
        "has several (e.g. a GeoPackage's 'tea' beside 'aoi')")
    class_attribute: str = Field(default="class", min_length=1,
                                 description="vector labels: the attribute holding the class "
                                 "(text: class names; numbers: class ids, 0 = background); "
                                 "files without one, all of one class: vector_class")
    vector_class: str | None = Field(
        default=None, description="vector labels: the class of every polygon, for files with "
        "no class attribute because all their polygons are of one class (SpaceNet's "
        "buildings, building footprints, an OSM extract of one feature type): the classes "
        "are background and this one; instead of class_attribute")
    palette: Literal["auto", "classes.json"] | str | list[PaletteEntry] = Field(
        default="auto", description="class names and colours: 'auto' (colours discovered "
        "in colour masks, values in class-id masks, named from a classes.json where one "
        "matches), 'classes.json' (from the source or classes_file), a path to a palette "
        "or classes file (JSON: a list of {name, color} or a classes.json; CSV: name,r,g,b "
        "as a class_dict.csv), or a list of {name, color}")
    classes_file: str | None = Field(default=None, description="a classes.json (or "
                                     "class_dict.csv) outside the source; default: the "
                                     "shallowest classes.json in it")
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
                                     "to ignore (a palette class of one is no class)")
    color_tolerance: int = Field(
        default=40, ge=0, le=255, description="colour masks, every format: a mask colour "
        "whose largest channel difference (0-255) from a palette or ignore colour is at most "
        "this is read as it (off-colours of compression; 127 binarizes 0/255 palettes at "
        "128); lossless masks: only when it is the one colour that near, and less common "
        "than min_color_share; 0: exact colours only")
    color_table: Literal["colors", "ids"] = Field(
        default="colors", description="single-band masks with a colour table (PNG palette, "
        "GeoTIFF colour map): 'colors' reads each pixel as its table's colour (tables differ "
        "per file); 'ids' reads the raw index (the table is only decoration)")
    min_color_share: float = Field(
        default=1e-4, ge=0, lt=1, description="lossless colour masks: a colour on fewer than "
        "this share of the labelled pixels is no class: read as the one class or ignore "
        "colour within color_tolerance, else an error (map it with ignore_colors); a colour "
        "off the palette on more is a missing class, an error; 0: every colour is a class "
        "(palette auto)")
    ignore_index: int = Field(default=255, ge=1, le=255)
    nodata: float | None = Field(
        default=None, description="images: the pixel value that marks no data in images "
        "that declare none (e.g. 0 for a mosaic merged with 0 fill); an image's own nodata "
        "tag wins (one that differs is reported); a pixel is nodata when every band holds it")
    side_by_side: bool | None = Field(
        default=None, description="image|colour-mask halves in one file; None = detect")
    split_lists: str | None = Field(
        default=None, description="folder (relative to the source) with train.txt, val.txt, "
        "test.txt for the 'given' split; default: found in the source")
    max_pixels: int = Field(default=1_000_000_000, ge=1, description="largest image or mask "
                            "(width x height) accepted, checked before decoding; a mask "
                            "larger than its image (only the image's part is read) may pass "
                            "it when stored in blocks within it")
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

    @field_validator("pair_by")
    @classmethod
    def _pair_by_valid(cls, value: str | None) -> str | None:
        return value if value is None else check_id_pattern("pair_by", value,
                                                           "^(?:SN_|buildings_)(.+)$")

    @field_validator("vector_class")
    @classmethod
    def _vector_class_alone(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        value = value.strip()
        if not value:
            raise ValueError("must be a class name (e.g. building)")
        if value.lower() in BACKGROUND_NAMES:
            raise ValueError(f"{value!r} is the ground no polygon covers, not a class of "
                             "polygons; name the class the polygons are (e.g. building)")
        # Compared with the default, not the fields set: the pipeline hands each step its
        # section with every default written out.
        attribute = info.data.get("class_attribute")
        if attribute not in (None, cls.model_fields["class_attribute"].default):
            raise ValueError(f"{value!r} makes every polygon one class, but class_attribute "
                             f"{attribute!r} reads each polygon's class from a field: set "
                             "one of them, not both")
        return value

    @field_validator("palette")
    @classmethod
    def _palette_named(cls, value):
        if isinstance(value, str) and not value.strip():
            raise ValueError("palette must be 'auto', 'classes.json', a path or a list")
        return value

    def extract_limits(self) -> ExtractLimits:
        return ExtractLimits(self.max_member_bytes, self.max_extract_bytes,
                             self.max_compression_ratio)

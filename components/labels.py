"""Turn whatever labels a dataset ships into contiguous class ids.

Class-id masks may use any values (0/255, 1..5, ...): they map to 0..K-1 through the config,
a ``classes.json`` that lists values, or sorted order. Colour masks map through a palette
from the config, a ``classes.json``, or ``auto`` (colours discovered in the masks, named from
``classes.json`` where colours match; published ``classes.json`` files often disagree with
their masks). A mask colour within the tolerance of a palette colour is read as the nearest
one (components/color_snap.py): lossless masks through the table the survey fixed, lossy
(JPEG) masks, whose every pixel may be off, pixel by pixel."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from components.artifacts import ClassInfo, ClassMap
from components.classes_file import (
    ClassEntry,
    ClassesFile,
    code_color,
    color_code,
    parse_color,
)
from components.color_snap import code_channels, nearest_colors
from components.masks import IGNORE_CODE
from components.raster import DataError

DEFAULT_COLORS = ["#000000", "#E6194B", "#3CB44B", "#FFE119", "#4363D8", "#F58231",
                  "#911EB4", "#46F0F0", "#F032E6", "#BCF60C", "#FABEBE", "#008080"]
BACKGROUND_NAMES = {"background", "_background_"}
# Lossy masks: at most this share of pixels may be further than the tolerance from every
# palette colour (JPEG ringing at class edges); those become ignored. More means a bad palette.
MAX_LOSSY_OUTLIER_FRACTION = 0.05


@dataclass
class LabelSpec:
    """How raw labels map to class ids (shared by every scene of a dataset)."""
    class_map: ClassMap
    value_ids: dict[int, int] = field(default_factory=dict)   # class-id masks
    color_ids: dict[int, int] = field(default_factory=dict)   # colour masks: code -> id
    label_ids: dict[str, int] = field(default_factory=dict)   # LabelMe labels
    tolerance: int = 0

    @property
    def ignore(self) -> int:
        return self.class_map.ignore_index


#: The most classes: ids are uint8, and one value is the ignore index.
MAX_CLASSES = 254


def class_map_of(names: list[str], colors: list[str | None], ignore_index: int) -> ClassMap:
    if len(names) > MAX_CLASSES or ignore_index < len(names):
        raise DataError(f"{len(names)} classes do not fit below ignore index {ignore_index}")
    return ClassMap(classes=[ClassInfo(id=i, name=n,
                                       color=c or DEFAULT_COLORS[i % len(DEFAULT_COLORS)])
                             for i, (n, c) in enumerate(zip(names, colors, strict=True))],
                    ignore_index=ignore_index)


def value_spec(values: Counter, classes: ClassesFile | None, class_values: dict[int, int] | None,
               class_names: list[str] | None, ignore_values: set[int],
               ignore_index: int) -> LabelSpec:
    """Spec for single-band class-id masks whose non-ignored raw values are ``values``.
    A value nothing names is ``class_<value>``, but 0, the common value of the ground no
    class covers, is ``background``, as polygons name the ground they leave uncovered
    (before, ``class_0``: ``components.class_aliases.LEGACY_BACKGROUND``)."""
    by_value = {e.value: e for e in classes.entries if e.value is not None} if classes else {}
    if class_values:
        mapping = dict(class_values)
    elif by_value:
        mapping = {v: i for i, v in enumerate(sorted(by_value))}
    else:
        mapping = {v: i for i, v in enumerate(sorted(values))}
    num = max(mapping.values(), default=-1) + 1
    if sorted(set(mapping.values())) != list(range(num)):
        raise DataError(f"class_values {class_values} must map onto contiguous ids 0..K-1")
    raw_of = {i: v for v, i in sorted(mapping.items(), reverse=True)}
    if not class_names and classes and not by_value and len(classes.entries) == num:
        # A classes.json without values, one entry per class: names (and colours) in order.
        by_value = {raw_of[i]: e for i, e in enumerate(classes.entries)}
    if class_names:
        if len(class_names) != num:
            raise DataError(f"class_names has {len(class_names)} names for {num} classes")
        names = list(class_names)
    else:
        named = {e.name.lower() for e in by_value.values()}
        zero = "class_0" if named & BACKGROUND_NAMES else "background"  # not two backgrounds
        names = [by_value[raw_of[i]].name if raw_of[i] in by_value
                 else zero if raw_of[i] == 0 else f"class_{raw_of[i]}"
                 for i in range(num)]
    colors = [by_value[raw_of[i]].color if raw_of[i] in by_value else None for i in range(num)]
    ids = dict(mapping)
    ids.update({v: ignore_index for v in ignore_values})
    return LabelSpec(class_map_of(names, colors, ignore_index), value_ids=ids)


def discover_colors(counts: Counter, lossy: bool, tolerance: int,
                    min_share: float = 0.002) -> list[int]:
    """Palette codes seen in masks. Lossy masks scatter one colour over many nearby values,
    so colours are pooled in 8-level bins, each bin scored by the pixels within half the
    tolerance of it (a density), and the densest bins far enough from those already kept
    become palette colours (the count-weighted mean of their neighbourhood)."""
    if not lossy:
        return sorted(counts)
    codes = np.array(list(counts), dtype=np.int64)
    weights = np.array(list(counts.values()), dtype=np.float64)
    rgb = code_channels(codes)
    bins, inverse = np.unique(rgb // 8, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    bin_counts = np.bincount(inverse, weights=weights, minlength=len(bins))
    bin_means = np.stack([np.bincount(inverse, weights=weights * rgb[:, c], minlength=len(bins))
                          for c in range(3)], axis=1) / np.maximum(bin_counts, 1)[:, None]
    total = weights.sum()
    # Bins holding a trace of pixels only add noise and cost; at most 2048 are compared.
    keep = np.argsort(-bin_counts, kind="stable")[:2048]
    keep = keep[bin_counts[keep] >= 1e-4 * total]
    means, weights_ = bin_means[keep], bin_counts[keep]
    near = np.abs(means[:, None, :] - means[None, :, :]).max(axis=2) <= max(tolerance / 2, 8)
    density = near.astype(np.float64) @ weights_
    kept: list[np.ndarray] = []
    for b in np.argsort(-density, kind="stable"):
        if density[b] < min_share * total:
            break
        centre = np.rint((near[b] * weights_) @ means / density[b]).astype(np.int64)
        if all(np.abs(centre - k).max() > tolerance for k in kept) and \
                not _is_blend(centre, kept, tolerance / 2):
            kept.append(centre)
    return sorted(int((r << 16) | (g << 8) | b_) for r, g, b_ in kept)


def _is_blend(color: np.ndarray, kept: list[np.ndarray], tolerance: float) -> bool:
    """JPEG edges between two classes leave colours on the line between them: not a class."""
    for i, a in enumerate(kept):
        for b in kept[i + 1:]:
            direction = (b - a).astype(np.float64)
            t = float((color - a) @ direction / max(direction @ direction, 1e-9))
            if 0.1 < t < 0.9 and np.abs(a + t * direction - color).max() <= tolerance:
                return True
    return False


def ignored_codes(ignore_colors: list[str]) -> set[int]:
    """``ingest.ignore_colors`` as colour codes."""
    return {color_code(parse_color(c, "ignore_colors")) for c in ignore_colors}


def near_ignore_only(codes: list[int], ignored: set[int], tolerance: int) -> set[int]:
    """Of ``codes`` (colours common enough to be classes), those within ``tolerance`` of an
    ignore colour and of no other colour: read as ignored, as a given palette reads them.
    One within it of two (greys 1, 2, 3 beside ignored 0) is no off-colour of either."""
    _, distance, _ = nearest_colors(np.array(codes, np.int64), np.array([*ignored], np.int64))
    candidates = [c for c, gap in zip(codes, distance.tolist(), strict=True) if gap <= tolerance]
    if not candidates:
        return set()
    # each candidate is within the tolerance of itself too: 2 means one ignore colour only
    _, _, within = nearest_colors(np.array(candidates, np.int64),
                                  np.array([*ignored, *codes], np.int64), tolerance)
    return {c for c, n in zip(candidates, within.tolist(), strict=True) if n == 2}


def color_spec(palette: list[ClassEntry], ignore_colors: list[str], tolerance: int,
               ignore_index: int, read_as: dict[int, int] | None = None) -> LabelSpec:
    """``read_as``: colours off the palette -> the palette (or ignore) colour each is read
    as (lossless masks; components/color_snap.py)."""
    for entry in palette:
        if entry.color is None:
            raise DataError(f"palette class {entry.name!r} has no colour")
    names = [e.name for e in palette]
    colors = [e.color for e in palette]
    ids = {color_code(c): i for i, c in enumerate(colors)}
    ids.update(dict.fromkeys(ignored_codes(ignore_colors), ignore_index))
    ids.update({code: ids[target] for code, target in (read_as or {}).items()})
    ids[IGNORE_CODE] = ignore_index
    return LabelSpec(class_map_of(names, colors, ignore_index), color_ids=ids, tolerance=tolerance)


def auto_palette(codes: list[int], classes: ClassesFile | None, ignore_colors: list[str],
                 tolerance: int) -> list[ClassEntry]:
    """Discovered colours, in ``classes.json`` order where a colour matches an entry there
    (within ``tolerance``), then the rest named by their colour."""
    ignored = ignored_codes(ignore_colors)
    remaining = [c for c in codes if c not in ignored]
    palette = []
    for entry in classes.entries if classes else []:
        if entry.color is None:
            continue
        target = code_channels(np.int64(color_code(entry.color)))
        match = next((c for c in remaining
                      if np.abs(code_channels(np.int64(c)) - target).max() <= tolerance), None)
        if match is not None:
            remaining.remove(match)
            palette.append(ClassEntry(entry.name, code_color(match)))
    palette += [ClassEntry(f"class_{code_color(c)[1:]}", code_color(c)) for c in remaining]
    return palette


def labelme_spec(labels: set[str], classes: ClassesFile | None,
                 palette: list[ClassEntry] | None, ignore_index: int) -> LabelSpec:
    entries = palette or (classes.entries if classes else None)
    if entries:
        names = [e.name for e in entries]
        colors = [e.color for e in entries]
    else:
        names = sorted(label for label in labels if label.lower() not in BACKGROUND_NAMES)
        colors = [None] * len(names)
    if not any(n.lower() in BACKGROUND_NAMES for n in names):
        names, colors = ["background", *names], [None, *colors]
    ids = {n: i for i, n in enumerate(names)}
    ids.update({alias: ids[n] for n in names if n.lower() in BACKGROUND_NAMES
                for alias in BACKGROUND_NAMES})
    return LabelSpec(class_map_of(names, colors, ignore_index), label_ids=ids)


def map_values(block: np.ndarray, spec: LabelSpec, path: Path) -> np.ndarray:
    """(H, W) raw class values -> (H, W) uint8 ids (NaN is ignored); unknown values raise
    naming the file (ingest's survey reports them all before this runs)."""
    values, inverse = np.unique(block, return_inverse=True)
    lut = np.empty(len(values), np.uint8)
    for i, v in enumerate(values.tolist()):
        if v != v:  # NaN: no label
            lut[i] = spec.ignore
            continue
        if int(v) != v or int(v) not in spec.value_ids:
            known = sorted(k for k, i_ in spec.value_ids.items() if i_ != spec.ignore)
            raise DataError(f"{path}: mask value {v} is not a known class value (known: "
                            f"{', '.join(map(str, known))}); map it with class_values or ignore "
                            "it with ignore_values")
        lut[i] = spec.value_ids[int(v)]
    return lut[inverse.reshape(block.shape)]


def map_colors(colors: np.ndarray, spec: LabelSpec, path: Path, lossy: bool) -> np.ndarray:
    """(H, W) colour codes (``components.masks.read_mask``) -> (H, W) uint8 ids. Lossless:
    the spec's table (palette colours and those the survey read as one) or an error naming
    the colour; lossy: nearest palette colour within the tolerance, else ignored."""
    codes, inverse = np.unique(colors, return_inverse=True)
    inverse = inverse.reshape(colors.shape)
    lut = np.full(len(codes), spec.ignore, np.uint8)
    if not lossy:
        for i, code in enumerate(codes.tolist()):
            if code not in spec.color_ids:
                raise DataError(f"{path}: mask colour {code_color(code)} is not in the palette "
                                f"({', '.join(code_color(c) for c in spec.color_ids if c >= 0)})"
                                "; add it to the palette or map it with ignore_colors")
            lut[i] = spec.color_ids[code]
        return lut[inverse]
    known = {c: i for c, i in spec.color_ids.items() if c != IGNORE_CODE}
    palette_codes = np.array(list(known), dtype=np.int64)
    palette_ids = np.array(list(known.values()), dtype=np.uint8)
    nearest, distance, _ = nearest_colors(codes, palette_codes)
    close = (distance <= spec.tolerance) & (codes != IGNORE_CODE)
    lut[close] = palette_ids[nearest[close]]
    out = lut[inverse]
    pixels = np.bincount(inverse.ravel(), minlength=len(codes))
    outliers = pixels[~close & (codes != IGNORE_CODE)].sum()
    if outliers > MAX_LOSSY_OUTLIER_FRACTION * inverse.size:
        far = ~close & (codes != IGNORE_CODE)
        worst = codes[far][np.argmax(pixels[far])]
        raise DataError(f"{path}: {outliers / inverse.size:.0%} of mask pixels are further than "
                        f"{spec.tolerance} from every palette colour (e.g. {code_color(worst)}); "
                        "check the palette or raise color_tolerance")
    return out

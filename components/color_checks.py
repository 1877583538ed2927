"""The survey's verdicts on colour masks (components/survey.py collects, these judge):
colours read as their nearest palette colour, colours too far from every one, colours too
rare to be a class, near-identical colours that become two classes, and palette colours
that ``ignore_colors`` takes out. A message shows a few colours, the most pixels first,
then says how many more: a noisy dataset has thousands."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from components.classes_file import ClassEntry, code_color, color_code, parse_color
from components.color_snap import Snapping, code_channels
from components.labels import MAX_CLASSES
from components.raster import DataError
from components.survey import Survey
from components.wording import counted

#: Colours one message shows (each with its pixels and first file) before "and N more".
COLOURS_SHOWN = 5
#: Pairs of near-identical classes one warning shows.
PAIRS_SHOWN = 3
#: The largest color_tolerance a message suggests: half the channel range. Further, a colour
#: is nearer the other end of a channel than its palette colour's (DeepGlobe: "binarize at
#: 128"), no longer a slightly-off copy of it.
MAX_SUGGESTED_TOLERANCE = 127


def ignored_codes(ignore_colors: list[str]) -> set[int]:
    return {color_code(parse_color(c, "ignore_colors")) for c in ignore_colors}


def describe(code: int, names: Mapping[int, str]) -> str:
    """``#00FFFF (low_vegetation)``: a colour and the class it is, unless the class is only
    named by the colour (``class_00FFFF``)."""
    color = code_color(code)
    named = code in names and names[code] != f"class_{color[1:]}"
    return f"{color} ({names[code]})" if named else color


def share(pixels: int, total: int) -> str:
    """A share of the labelled pixels, never a bare 0.00% for a few pixels."""
    return "under 0.01%" if 0 < pixels < 1e-4 * total else f"{pixels / max(total, 1):.2%}"


def colour_listing(survey: Survey, codes: list[int], detail=lambda code: "") -> str:
    """The first ``COLOURS_SHOWN`` of ``codes`` with their pixels and first file, then how
    many more there are and their pixels."""
    shown = codes[:COLOURS_SHOWN]
    lines = [f"colour {code_color(c)}: {counted(survey.values[c], 'pixel')} in "
             f"{survey.where(c, limit=1)}{detail(c)}" for c in shown]
    if len(codes) > len(shown):
        rest = sum(survey.values[c] for c in codes[len(shown):])
        lines.append(f"and {counted(len(codes) - len(shown), 'more colour')} "
                     f"({counted(rest, 'pixel')})")
    return "; ".join(lines)


def _by_pixels(survey: Survey, codes) -> list[int]:
    return sorted(codes, key=lambda c: (-survey.values[c], c))


def _nearest(snapping: Snapping, names: Mapping[int, str]):
    """A far colour's distance from its nearest palette colour, for a listing."""
    def detail(code: int) -> str:
        nearest = snapping.far[code]
        return (f", {snapping.distance[code]} from {describe(nearest, names)}"
                if nearest >= 0 else "")
    return detail


def _raise_advice(snapping: Snapping, codes: list[int]) -> str:
    largest = snapping.largest(codes)
    if largest > MAX_SUGGESTED_TOLERANCE:
        return ""
    return (f", or raise color_tolerance to {largest} to read each as its nearest "
            "palette colour")


def palette_without_ignored(palette: list[ClassEntry], ignored: set[int],
                            survey: Survey) -> list[ClassEntry]:
    """A palette colour also in ``ignore_colors`` (DeepGlobe's class_dict.csv lists
    'unknown', which its users ignore) is no class: its pixels are ignored, so as a class it
    would be an output of the model that no pixel trains or scores."""
    dropped = [e for e in palette if e.color and color_code(e.color) in ignored]
    if not dropped:
        return palette
    kept = [e for e in palette if e not in dropped]
    if not kept:
        raise DataError("every palette colour is in ignore_colors: no class is left")
    listed = ", ".join(f"{e.name!r} ({e.color})" for e in dropped)
    survey.warn(f"{counted(len(dropped), 'palette class is', 'palette classes are')} also in "
                f"ignore_colors, so {'its' if len(dropped) == 1 else 'their'} pixels are "
                f"ignored and {'it is' if len(dropped) == 1 else 'they are'} left out of the "
                f"classes (an output no pixel trains): {listed}")
    return kept


def check_palette_colors(survey: Survey, snapping: Snapping, names: Mapping[int, str]) -> None:
    """Lossless masks against a given palette: a colour beyond the tolerance of every
    palette colour is a class the palette lacks (or the wrong palette), not noise; read as
    ignored it would silently drop that class, so it is an error."""
    far = _by_pixels(survey, snapping.far)
    if not far:
        return
    listing = colour_listing(survey, far, _nearest(snapping, names))
    raise DataError(f"{counted(len(far), 'mask colour is', 'mask colours are')} not in the "
                    f"palette and further than color_tolerance ({snapping.tolerance}) from "
                    f"each of its colours (by the largest channel difference): {listing}. "
                    "Add the classes the palette lacks, or map the colours to the ignore "
                    "class with ignore_colors" + _raise_advice(snapping, far))


def rare_colors(survey: Survey, codes: list[int], min_share: float) -> list[int]:
    """Of ``codes`` (the colours that would be classes), those on fewer than ``min_share``
    of their pixels: an antialiased edge or a stray brush stroke, not a class."""
    total = sum(survey.values[c] for c in codes)
    return [c for c in codes if survey.values[c] < min_share * total]


def check_rare_colors(survey: Survey, snapping: Snapping, classes: int, min_share: float,
                      names: Mapping[int, str]) -> None:
    """Palette auto, lossless masks: a rare colour no class colour is within the tolerance of
    is an error; as a class of its own it would silently spoil the model."""
    rare = _by_pixels(survey, snapping.far)
    if not rare:
        return
    each = "" if len(rare) == 1 else " each"
    listing = colour_listing(survey, rare, _nearest(snapping, names))
    lower = (", lower min_color_share to make them classes"
             if classes + len(rare) <= MAX_CLASSES else "")
    raise DataError(f"{counted(len(rare), 'mask colour covers', 'mask colours cover')} "
                    f"less than {min_share:.4%} of the labelled pixels{each}, too few to be "
                    f"a class, and further than color_tolerance ({snapping.tolerance}) from "
                    f"every colour that is one: {listing}. Map them to the ignore class with "
                    f"ignore_colors, fix the masks{lower}" + _raise_advice(snapping, rare))


def check_class_count(palette: list[ClassEntry], ignore_index: int, min_share: float) -> None:
    """Palette auto: more colours found than classes fit (a noisy mask read with
    min_color_share 0, a photo read as a mask) said as such, with what reads them."""
    limit = min(MAX_CLASSES, ignore_index)
    if len(palette) <= limit:
        return
    why = (": min_color_share 0 makes every colour a class (above 0, as by default, a rarer "
           "colour is read as the nearest class colour within color_tolerance)"
           if min_share == 0 else "")
    raise DataError(f"{len(palette):,} mask colours would each be a class, more than the "
                    f"{limit} that fit below ignore index {ignore_index}{why}. Give the "
                    "palette (ingest.palette): every colour within color_tolerance of one of "
                    "its colours is read as it")


def warn_snapped(survey: Survey, snapping: Snapping, names: Mapping[int, str]) -> None:
    """Lossless masks: how many colours and pixels were read as a palette colour."""
    snapped = _by_pixels(survey, snapping.read_as)
    if not snapped:
        return
    pixels = snapping.pixels(survey.values)
    total = sum(survey.values.values())
    one = len(snapped) == 1
    examples = ", ".join(f"{code_color(c)} as {describe(snapping.read_as[c], names)} "
                         f"({counted(survey.values[c], 'pixel')} in "
                         f"{survey.where(c, limit=1)})" for c in snapped[:3])
    survey.warn(f"labels: {counted(len(snapped), 'colour', 'colours')} off the palette, at "
                f"most {snapping.largest(snapped)} from a palette colour on a channel "
                f"(color_tolerance {snapping.tolerance}), {'is' if one else 'are'} read as "
                f"the nearest one: {counted(pixels, 'pixel')} ({share(pixels, total)} of the "
                f"labelled pixels), e.g. {examples}. If {'it is' if one else 'one is'} a "
                "class of its own, list it in a palette (ingest.palette) or lower "
                "color_tolerance")


def warn_lossy(survey: Survey, snapping: Snapping) -> None:
    """Lossy (JPEG) masks: every colour is off a little; say how many pixels were read as a
    palette colour and how many were too far, so ignored (compression rings at class
    edges; components/labels.py allows a share of each file)."""
    snapped, far = snapping.pixels(survey.values), snapping.pixels(survey.values, far=True)
    if not snapped + far:
        return
    total = sum(survey.values.values())
    worst = _by_pixels(survey, snapping.far)
    ignored = (f"{counted(far, 'pixel')} ({share(far, total)}) further from every palette "
               f"colour are ignored, e.g. colour {code_color(worst[0])} "
               f"({counted(survey.values[worst[0]], 'pixel')} in "
               f"{survey.where(worst[0], limit=1)})" if worst
               else "none is further from every palette colour")
    survey.warn(f"labels: lossy (JPEG) masks: {counted(snapped, 'pixel')} "
                f"({share(snapped, total)} of the labelled pixels) off the palette are read as "
                f"the nearest palette colour within color_tolerance ({snapping.tolerance}); "
                f"{ignored}")


def warn_near_duplicates(survey: Survey, palette: list[ClassEntry], tolerance: int,
                         aliases: Mapping[str, str]) -> None:
    """Palette auto, lossless masks: two colours common enough to be classes, within the
    tolerance of each other (#FEFEFE beside #FFFFFF), become two classes; they are kept (a
    dataset may code its classes as greys 1, 2, 3) and named, with their shares, unless
    ``aliases`` (ingest.class_aliases) already makes them one."""
    codes = [color_code(e.color) for e in palette if e.color]
    names = {color_code(e.color): e.name for e in palette if e.color}
    rgb = code_channels(np.array(codes, np.int64)).reshape(-1, 3)
    gaps = np.abs(rgb[:, None, :] - rgb[None, :, :]).max(axis=2)
    merged = {code: aliases.get(name, name) for code, name in names.items()}
    pairs = sorted(((int(gaps[i, j]), a, b) for i, a in enumerate(codes)
                    for j, b in enumerate(codes)
                    if i < j and gaps[i, j] <= tolerance and merged[a] != merged[b]),
                   key=lambda p: (p[0], -min(survey.values[p[1]], survey.values[p[2]])))
    if not pairs:
        return
    total = sum(survey.values.values())

    def class_share(code: int) -> str:
        color = "" if names[code] == f"class_{code_color(code)[1:]}" else f" {code_color(code)}"
        return f"{names[code]}{color} ({share(survey.values[code], total)})"

    shown = []
    for gap, a, b in pairs[:PAIRS_SHOWN]:
        rarer, commoner = sorted((a, b), key=lambda c: survey.values[c])
        shown.append(f"{class_share(rarer)} is {counted(gap, 'level')} from "
                     f"{class_share(commoner)}")
    more = (f"; and {counted(len(pairs) - PAIRS_SHOWN, 'more pair')}"
            if len(pairs) > PAIRS_SHOWN else "")
    _, a, b = pairs[0]
    rarer, commoner = sorted((a, b), key=lambda c: survey.values[c])
    survey.warn(f"{counted(len(pairs), 'pair of colours', 'pairs of colours')} within "
                f"color_tolerance ({tolerance}) of each other became separate classes, each "
                f"pair may be one (shares of the labelled pixels): {'; '.join(shown)}{more}. "
                f"If so, merge them with ingest.class_aliases (e.g. "
                f"{{{names[rarer]}: {names[commoner]}}}) or give a palette: a colour within "
                "color_tolerance of a palette colour is read as it")

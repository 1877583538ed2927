"""The survey's verdicts on colour masks (components/survey.py collects, these judge):
colours read as their nearest palette colour, colours too far from every one, colours too
rare to be a class, near-identical colours that become two classes, and palette colours
that ``ignore_colors`` takes out. A message shows a few colours, the most pixels first,
then says how many more: a noisy dataset has thousands."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from components.classes_file import ClassEntry, code_color, color_code
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
        if code in snapping.ambiguous:
            return (f", within color_tolerance of {snapping.ambiguous[code]} palette colours "
                    f"(nearest {describe(nearest, names)}, {snapping.distance[code]}), so "
                    "read as none")
        return (f", {snapping.distance[code]} from {describe(nearest, names)}"
                if nearest >= 0 else "")
    return detail


def tolerance_cluster(distances: list[int]) -> int:
    """Of far colours' distances, the largest of the cluster of small ones: the sorted
    distances up to the first jump to more than twice the last plus 8. Further colours are
    more likely classes of their own than off-colours, and a tolerance covering them would
    read them as a class they are not."""
    ordered = sorted(distances)
    for i in range(1, len(ordered)):
        if ordered[i] > 2 * ordered[i - 1] + 8:
            return ordered[i - 1]
    return ordered[-1] if ordered else 0


def _raise_advice(snapping: Snapping, codes: list[int]) -> str:
    """A tolerance that reads the cluster of slightly-off colours, never one wide enough to
    take in the distant colours (named as likely missing classes) or those already within
    the tolerance of two palette colours (a larger tolerance cannot make one nearest)."""
    single = [c for c in codes if c not in snapping.ambiguous]
    largest = tolerance_cluster([snapping.distance[c] for c in single])
    if not single or largest > MAX_SUGGESTED_TOLERANCE:
        return ""
    distant = [c for c in single if snapping.distance[c] > largest]
    advice = (f", or raise color_tolerance to {largest} to read each of the nearer ones as "
              "its palette colour")
    if distant:
        shown = ", ".join(code_color(c) for c in distant[:COLOURS_SHOWN])
        more = f" and {len(distant) - COLOURS_SHOWN} more" if len(distant) > COLOURS_SHOWN else ""
        advice += f"; the distant {shown}{more} are more likely classes the palette lacks"
    return advice


def check_common_colors(survey: Survey, snapping: Snapping, min_share: float,
                        names: Mapping[int, str], ignored: set[int]) -> None:
    """Lossless masks: a colour off the palette on at least ``min_share`` of the labelled
    pixels is a class the palette lacks, not an off-colour: read as the palette (or ignore)
    colour within the tolerance it would silently merge two classes (#E60000 into ISPRS
    clutter #FF0000). ``min_share`` 0 turns the check off."""
    if min_share <= 0:
        return
    total = sum(n for c, n in survey.values.items() if c >= 0 and c not in ignored)
    common = _by_pixels(survey, [c for c in snapping.read_as
                                 if survey.values[c] >= min_share * max(total, 1)])
    if not common:
        return

    def detail(code: int) -> str:
        return (f" ({share(survey.values[code], total)} of the labelled pixels), "
                f"{snapping.distance[code]} from {describe(snapping.read_as[code], names)}")

    one = len(common) == 1
    raise DataError(f"{counted(len(common), 'mask colour', 'mask colours')} off the palette, "
                    f"each within color_tolerance ({snapping.tolerance}) of one palette or "
                    f"ignore colour, cover{'s' if one else ''} at least min_color_share "
                    f"({min_share:.4%}) of the labelled pixels{'' if one else ' each'}: too "
                    "many to be off-colours of it, so a class the palette lacks, not read as "
                    f"it: {colour_listing(survey, common, detail)}. Add the classes to the "
                    "palette (ingest.palette), map them to the ignore class with "
                    "ignore_colors, or lower color_tolerance below their distance; if they "
                    "are off-colours after all, raise min_color_share above their share")


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
                    f"palette and not within color_tolerance ({snapping.tolerance}) of exactly "
                    f"one of its colours (by the largest channel difference): {listing}. "
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
                    f"a class, and not within color_tolerance ({snapping.tolerance}) of "
                    f"exactly one colour that is one: {listing}. Map them to the ignore class with "
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
                         aliases: Mapping[str, str], ignored: set[int] = frozenset()) -> None:
    """Palette auto, lossless masks: two colours common enough to be classes, within the
    tolerance of each other (#FEFEFE beside #FFFFFF) or of an ignore colour, become two
    classes (or a class beside ignored pixels); they are kept (a dataset may code its classes
    as greys 1, 2, 3) and named, with their shares, unless ``aliases`` (ingest.class_aliases)
    already makes them one. One warning says how many pairs there are, a few of them."""
    names = {color_code(e.color): e.name for e in palette if e.color}
    names.update({code: "ignored" for code in ignored if code not in names})
    codes = list(names)
    rgb = code_channels(np.array(codes, np.int64)).reshape(-1, 3)
    gaps = np.abs(rgb[:, None, :] - rgb[None, :, :]).max(axis=2)
    merged = {code: aliases.get(name, name) for code, name in names.items()}
    pairs = sorted(((int(gaps[i, j]), a, b) for i, a in enumerate(codes)
                    for j, b in enumerate(codes)
                    if i < j and gaps[i, j] <= tolerance and merged[a] != merged[b]
                    and not (a in ignored and b in ignored)),
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
    classes = [p for p in pairs if p[1] not in ignored and p[2] not in ignored]
    example = ""
    if classes:
        rarer, commoner = sorted(classes[0][1:], key=lambda c: survey.values[c])
        example = f" (e.g. {{{names[rarer]}: {names[commoner]}}})"
    survey.warn(f"{counted(len(pairs), 'pair of colours', 'pairs of colours')} within "
                f"color_tolerance ({tolerance}) of each other became separate classes (or a "
                f"class beside an ignore colour), each pair may be one (shares of the "
                f"labelled pixels): {'; '.join(shown)}{more}. If so, merge them with "
                f"ingest.class_aliases{example}, add the colour to ignore_colors, or give a "
                "palette; a colour within color_tolerance of two of these is read as none "
                "of them")

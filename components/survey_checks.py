"""The survey's verdicts (components/survey.py collects, these judge): class-id values
outside the known ones, values rare enough to be stray, options that do not apply to the
labels found; and the warnings it collected, issued. Colours: components/color_checks.py."""

from __future__ import annotations

import warnings
from collections import Counter

from components.raster import DataError
from components.survey import KIND_WORDS, MAX_LISTED, IngestWarning, Survey
from components.wording import counted

# A class-id mask value found without a classes.json or class_values is a class of its own;
# one this rare is more likely a stray value (a brush slip, a nodata value the export
# changed) and is warned about: under RARE_VALUE_SHARE of the labelled pixels, or under
# RARE_SINGLE_FILE_SHARE and in one label file of at least RARE_SINGLE_FILE_OF.
RARE_VALUE_SHARE = 1e-4
RARE_SINGLE_FILE_SHARE = 1e-3
RARE_SINGLE_FILE_OF = 3


def _value(value) -> str:
    return f"value {value}"


def _listing(survey: Survey, items: list, label) -> str:
    shown = items[:MAX_LISTED]
    lines = [f"{label(v)}: {counted(survey.values[v], 'pixel')} in {survey.where(v)}"
             for v in shown]
    if len(items) > len(shown):
        rest = sum(survey.values[v] for v in items[len(shown):])
        lines.append(f"and {len(items) - len(shown)} more ({counted(rest, 'pixel')})")
    return "; ".join(lines)


def _shares(survey: Survey, values: Counter, found: list[int]) -> str:
    total = sum(values.values())
    return "; ".join(f"value {v}: {counted(values[v], 'pixel')} "
                     f"({values[v] / total:.3%} of the labelled pixels) in {survey.where(v)}"
                     for v in found[:MAX_LISTED])


def warn_negative_values(survey: Survey, values: Counter) -> None:
    """One warning naming the negative class-id mask values (found, not declared), which
    become classes: published datasets mark unlabelled pixels so (Sen1Floods11's -1 in
    int16 labels that declare no nodata), and trained as a class they teach the model to
    predict 'no data'."""
    negative = sorted((v for v in values if v < 0), key=lambda v: -values[v])
    if not negative:
        return
    one = len(negative) == 1
    listed = negative[:MAX_LISTED]
    what = counted(len(negative), "negative mask value becomes a class",
                   "negative mask values become classes")
    survey.warn(f"labels: {what} of {'its' if one else 'their'} own, though a negative "
                "class id is almost always nodata (Sen1Floods11 marks unlabelled pixels -1): "
                f"{_shares(survey, values, negative)}. If {'it is' if one else 'they are'} "
                f"nodata, ignore {'it' if one else 'them'} with ingest.ignore_values: {listed} "
                f"(--ignore-values {','.join(map(str, listed))})")


def warn_rare_values(survey: Survey, values: Counter) -> None:
    """One warning naming the class-id mask values (found, not declared) rare enough to be
    stray values rather than classes, with their pixels and files; negative values are
    ``warn_negative_values``'s."""
    total = sum(values.values())
    if not total:
        return
    rare = sorted((v for v, n in values.items()
                   if v >= 0 and (n < RARE_VALUE_SHARE * total or (
                       n < RARE_SINGLE_FILE_SHARE * total and survey.file_counts[v] == 1
                       and survey.label_files >= RARE_SINGLE_FILE_OF))),
                  key=lambda v: values[v])
    if not rare:
        return
    shown = _shares(survey, values, rare)
    listed = ", ".join(map(str, rare[:MAX_LISTED]))
    survey.warn(f"{counted(len(rare), 'mask value is', 'mask values are')} so rare that "
                f"{'it' if len(rare) == 1 else 'each'} may be a stray value rather than a "
                f"class, yet becomes a class of {'its' if len(rare) == 1 else 'their'} own: "
                f"{shown}. If stray, ignore with ingest.ignore_values: [{listed}] (or list the "
                "classes with ingest.class_values)")


def check_known_values(survey: Survey, known: set[int], ignore_values: set[int]) -> None:
    unknown = sorted((v for v in survey.values if v not in known | ignore_values),
                     key=lambda v: -survey.values[v])
    if unknown:
        what = counted(len(unknown), "mask value is not a known class value",
                       "mask values are not known class values")
        raise DataError(f"{what} (known: "
                        f"{', '.join(map(str, sorted(known)))}): "
                        f"{_listing(survey, unknown, _value)}. Map them with class_values or "
                        "ignore them with ignore_values")


def label_nodata_ignored(survey: Survey, named: set, ignore: set) -> set:
    """The nodata values class-id masks declare that are ignored, as if listed in
    ingest.ignore_values: each, unless a class_values or classes.json entry names it as a
    class (``named``), or it is 0 and nothing lists the classes, for 0 is the usual
    background (a GIS export's default nodata): kept, with a warning saying how to ignore
    it. One line per value says how many pixels it leaves out."""
    ignored = set()
    for value, files in survey.label_nodata.items():
        if value in named:
            continue
        pixels = survey.values.get(value, 0)
        declared = f"declared by {counted(len(files), 'label file')}, e.g. {files[0]}"
        if value == 0 and not named and value not in ignore:
            if pixels:
                survey.warn(f"labels: {counted(pixels, 'pixel')} equal the label rasters' "
                            f"nodata value 0 ({declared}), kept as a class: 0 is usually "
                            "the background. If they are unlabelled, ignore them with "
                            "ingest.ignore_values: [0]")
            continue
        ignored.add(value)
        if pixels:
            survey.warn(f"labels: {counted(pixels, 'pixel')} equal the label rasters' nodata "
                        f"value {value} ({declared}), ignored; if {value} is a class, name "
                        "it in ingest.class_values or a classes.json")
    return ignored


# Options that only mean something for some label kinds: giving one for another kind is an
# error, never silently ignored.
_APPLIES_TO = {
    "class_values": ({"ids", "vector_ids"}, "class-id masks and numeric polygon classes"),
    "class_names": ({"ids", "vector_ids"}, "class-id masks and numeric polygon classes; "
                    "colour and named polygon classes are named by a palette or classes.json"),
    "ignore_values": ({"ids", "vector_ids"}, "class-id masks and numeric polygon classes; "
                      "for colour masks use ignore_colors"),
    "ignore_colors": ({"colors"}, "colour masks; for class-id masks use ignore_values"),
    "color_tolerance": ({"colors"}, "colour masks"),
    "min_color_share": ({"colors"}, "colour masks"),
    "class_attribute": ({"vector", "vector_ids"}, "vector polygons"),
    "vector_class": ({"vector"}, "vector polygons"),
    "vector_layer": ({"vector", "vector_ids"}, "vector polygons"),
}


def check_options_apply(survey: Survey, options) -> None:
    kind = survey.kind
    for name, (kinds, what) in _APPLIES_TO.items():
        default = type(options).model_fields[name].get_default(call_default_factory=True)
        if getattr(options, name) != default and kind not in kinds:
            raise DataError(f"option {name} does not apply: the labels are "
                            f"{KIND_WORDS[kind]} (e.g. {survey.kinds[kind]}), and {name} is "
                            f"for {what}")


def warn_collected(survey: Survey, relabel) -> list[str]:
    """Turn what the survey noticed into warnings (issued, and returned for the index)."""
    if survey.rgba:
        survey.warn(f"{counted(len(survey.rgba), 'mask has', 'masks have')} an alpha band "
                    f"(e.g. {survey.rgba[0]}): "
                    "alpha is dropped and fully transparent pixels are ignored")
    if survey.partial:
        unlabelled, pixels = (sum(p[i] for p in survey.partial) for i in (1, 2))
        label, most, of = max(survey.partial, key=lambda p: p[1] / p[2])
        one = len(survey.partial) == 1
        what = counted(len(survey.partial), "scene's label covers only part of its image",
                       "scenes' labels cover only part of their image")
        images, labels = ("its image's", "its label") if one else ("their images'",
                                                                     "their labels")
        survey.warn(f"{what}: {unlabelled:,} of {images} {pixels:,} pixels "
                    f"({unlabelled / pixels:.1%}) lie outside {labels} and are ignored (never "
                    "trained on or scored)" + (f": {label}" if one else
                                               f"; most in {label} ({most / of:.0%} of its "
                                               "image)"))
    messages = [relabel(m) for m in survey.warnings]
    for message in messages:
        warnings.warn(message, IngestWarning, stacklevel=3)
    return messages

"""From what the survey saw and the options, one ``LabelSpec`` for the whole dataset; every
check that can fail on the labels as a whole runs here, before any scene is written."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from components.artifacts import ClassMap
from components.class_aliases import (
    alias_classes,
    alias_polygon_labels,
    background_onto_legacy,
    check_targets,
    legacy_alias_names,
    unused_aliases,
    unused_warning,
)
from components.classes_file import (
    ClassEntry,
    ClassesFile,
    color_code,
    parse_color,
    read_classes_file,
)
from components.color_checks import (
    check_class_count,
    check_common_colors,
    check_palette_colors,
    check_rare_colors,
    palette_without_ignored,
    rare_colors,
    warn_lossy,
    warn_near_duplicates,
    warn_snapped,
)
from components.color_snap import snap_colors
from components.labels import (
    BACKGROUND_NAMES,
    LabelSpec,
    auto_palette,
    color_spec,
    discover_colors,
    ignored_codes,
    labelme_spec,
    near_ignore_only,
    value_spec,
)
from components.raster import DataError
from components.survey import MAX_LISTED, Survey
from components.survey_checks import (
    check_known_values,
    label_nodata_ignored,
    warn_negative_values,
    warn_rare_values,
)
from components.wording import counted


def natural_order(labels) -> list[str]:
    """Numbers by value, then names: "2" before "10"."""
    return sorted(labels, key=lambda s: (0, float(s), s) if _is_number(s) else (1, 0.0, s))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def find_classes_file(root: Path, options) -> ClassesFile | None:
    if options.classes_file:
        return read_classes_file(Path(options.classes_file))
    found = sorted(root.rglob("classes.json"), key=lambda p: (len(p.parts), str(p)))
    return read_classes_file(found[0]) if found else None


def _given_palette(options) -> list[ClassEntry] | None:
    if isinstance(options.palette, list):
        return [ClassEntry(p.name, parse_color(p.color, "palette")) for p in options.palette]
    if options.palette not in ("auto", "classes.json"):
        return read_classes_file(Path(options.palette)).entries
    return None


def _shape_spec(survey: Survey, classes: ClassesFile | None, palette: list[ClassEntry] | None,
                options) -> LabelSpec:
    """LabelMe and vector polygons: their labels are class names (under their aliases);
    uncovered is background."""
    labels = alias_polygon_labels(survey.labels, options.class_aliases)
    entries = palette or (classes.entries if classes else None)
    if entries:
        known = {e.name for e in entries} | BACKGROUND_NAMES
        unknown = sorted((lab for lab in labels if lab not in known),
                         key=lambda lab: -labels[lab])
        if unknown:
            listed = ", ".join(f"{lab!r} ({counted(labels[lab], 'polygon')})"
                               for lab in unknown)
            what = counted(len(unknown), "polygon class is", "polygon classes are")
            raise DataError(f"{what} not in the palette or "
                            f"classes.json (known: {', '.join(e.name for e in entries)}): "
                            f"{listed}")
        spec = labelme_spec(set(labels), classes, palette, options.ignore_index)
    else:
        ordered = [ClassEntry(lab) for lab in natural_order(
            lab for lab in labels if lab.lower() not in BACKGROUND_NAMES)]
        spec = labelme_spec(set(labels), None, ordered or None, options.ignore_index)
    for source, target in options.class_aliases.items():
        if source in survey.labels:  # the polygons still hold the source's name
            spec.label_ids[source] = spec.label_ids[target]
    return spec


def _value_spec(survey: Survey, classes: ClassesFile | None, palette: list[ClassEntry] | None,
                options) -> LabelSpec:
    ignore = set(options.ignore_values)
    if classes is not None and classes.ignore_index is not None:
        ignore.add(classes.ignore_index)
    listed = {e.value for e in classes.entries if e.value is not None} if classes else set()
    known = set(options.class_values or {}) or listed
    ignore |= label_nodata_ignored(survey, known, ignore)
    if known:
        check_known_values(survey, known, ignore)
    bad = [v for v in survey.values if isinstance(v, float)]
    if bad:
        raise DataError(f"mask values {', '.join(map(str, bad[:5]))} (e.g. in "
                        f"{survey.where(bad[0])}) are not whole numbers; class-id masks hold "
                        "integers")
    names = options.class_names or ([p.name for p in palette] if palette else None)
    values = Counter({v: n for v, n in survey.values.items() if v not in ignore})
    if not known:  # every value found is a class: say which look like strays or nodata
        warn_rare_values(survey, values)
        if not names:
            warn_negative_values(survey, values)
    return value_spec(values, classes, options.class_values, names, ignore, options.ignore_index)


def _code_spec(survey: Survey, classes: ClassesFile | None, palette: list[ClassEntry] | None,
               options) -> LabelSpec:
    """Vector polygons with numeric class codes: class ids as in a class-id mask, where the
    ground no polygon covers has value 0 (a polygon coded 0 is background too)."""
    ignore = set(options.ignore_values)
    if classes is not None and classes.ignore_index is not None:
        ignore.add(classes.ignore_index)
    listed = {e.value for e in classes.entries if e.value is not None} if classes else set()
    known = set(options.class_values or {}) or listed
    unknown = sorted(v for v in survey.values if known and v not in known | ignore | {0})
    if unknown:
        shown = "; ".join(f"{v} ({counted(survey.values[v], 'polygon')} in {survey.where(v)})"
                          for v in unknown[:MAX_LISTED])
        what = counted(len(unknown), "polygon class code is not a known class value",
                       "polygon class codes are not known class values")
        raise DataError(f"{what} (known: {', '.join(map(str, sorted(known)))}): {shown}. Map them "
                        "with class_values or ignore them with ignore_values")
    values = Counter({v: n for v, n in survey.values.items() if v not in ignore})
    if 0 not in ignore:
        values[0] += 0  # uncovered ground is value 0 whether or not a polygon says so
    mapping = options.class_values
    if mapping is None:
        mapping = {v: i for i, v in enumerate(sorted((listed | {0}) - ignore if listed
                                                     else set(values)))}
    elif 0 not in mapping and 0 not in ignore:
        raise DataError("class_values gives no id to 0, the value of ground no polygon "
                        "covers; add 0 (e.g. {0: 0, ...}) or list 0 in ignore_values")
    names = options.class_names or ([p.name for p in palette] if palette else None)
    return value_spec(values, classes, mapping, names, ignore, options.ignore_index)


def _color_spec(survey: Survey, classes: ClassesFile | None, palette: list[ClassEntry] | None,
                options) -> LabelSpec:
    """Colour masks: the palette given (or the classes.json's), else the colours found
    (``auto``: in lossless masks, those on at least ``min_color_share`` of the pixels); every
    other colour within ``color_tolerance`` of a palette or ignore colour is read as the
    nearest one (components/color_snap.py), and one further is an error (lossless) or
    ignored (lossy)."""
    if palette is None and options.palette == "classes.json":
        palette = classes.entries
    ignored = ignored_codes(options.ignore_colors)
    tolerance, lossy = options.color_tolerance, survey.lossy
    given = palette is not None
    if given:
        palette = palette_without_ignored(palette, ignored, survey)
    else:
        codes = discover_colors(survey.values, lossy, tolerance)
        if not lossy:
            kept = [c for c in codes if c not in ignored]
            if options.min_color_share > 0:
                rare = set(rare_colors(survey, kept, options.min_color_share))
                kept = [c for c in kept if c not in rare]
            # as with a given palette: a colour within the tolerance of an ignore colour is
            # read as it (when that is the only one near), or said to be a class it is not
            codes = [c for c in kept if c not in near_ignore_only(kept, ignored, tolerance)]
        palette = auto_palette(codes, classes, options.ignore_colors, tolerance if lossy else 0)
        check_class_count(palette, options.ignore_index, options.min_color_share)
    names = {color_code(e.color): e.name for e in palette if e.color}
    names.update({code: "ignored" for code in ignored})
    snapping = snap_colors(survey.values, [*names], tolerance, unique=not lossy)
    if lossy:
        warn_lossy(survey, snapping)
    else:
        check_common_colors(survey, snapping, options.min_color_share, names, ignored)
        if given:
            check_palette_colors(survey, snapping, names)
        else:
            check_rare_colors(survey, snapping, len(palette), options.min_color_share, names)
            warn_near_duplicates(survey, palette, tolerance, options.class_aliases, ignored)
        warn_snapped(survey, snapping, names)
    return color_spec(palette, options.ignore_colors, tolerance, options.ignore_index,
                      {} if lossy else snapping.read_as)


def _check_alias_targets(aliases: dict[str, str], names: list[str],
                         model: ClassMap | None) -> None:
    """Every alias names one of ``names`` (the labels' and their palette's classes), or with
    ``model``, one of the model's classes."""
    if model is not None:
        check_targets(aliases, model.names, "the model's classes")
    else:
        check_targets(aliases, names, "the classes of the labels and their palette",
                      "; a class of a new name needs its own entry in the palette or "
                      "classes.json")


def resolve_spec(survey: Survey, classes: ClassesFile | None, options,
                 model: ClassMap | None = None,
                 trained_ignored: frozenset[int] = frozenset()) -> LabelSpec:
    """The labels' spec, their classes renamed and merged by ``options.class_aliases``; with
    ``model`` (the classes of the model the labels are read for), the model's classes in its
    order, a label class it lacks an error. A value the model's training ignored
    (``trained_ignored``) that the labels hold as a class is advised ignored: in that
    error, else in a warning (value 0, named background, matches the model's background)."""
    if options.palette == "classes.json" and classes is None:
        # for every kind of label: class-id masks would otherwise get auto names silently
        raise DataError("palette 'classes.json' but no classes.json in the source and no "
                        "classes_file given")
    palette = _given_palette(options)
    aliases = options.class_aliases
    polygons = survey.kind in ("labelme", "vector")
    if polygons:
        # targets first: an unknown one would otherwise read as a polygon class missing
        # from the palette
        listed = [e.name for e in palette or (classes.entries if classes else [])]
        _check_alias_targets(aliases, ["background", *listed, *survey.labels], model)
        spec = _shape_spec(survey, classes, palette, options)
    elif survey.kind == "vector_ids":
        spec = _code_spec(survey, classes, palette, options)
    elif survey.kind == "ids":
        spec = _value_spec(survey, classes, palette, options)
    else:
        spec = _color_spec(survey, classes, palette, options)
    if not polygons:
        aliases = legacy_alias_names(aliases, spec.class_map.names, targets_too=model is None)
        _check_alias_targets(aliases, spec.class_map.names, model)
    # What the labels call their classes: for polygons, their own labels and the ground
    # no polygon covers.
    names = ([n for n in spec.class_map.names if n.lower() in BACKGROUND_NAMES]
             + list(survey.labels)) if polygons else spec.class_map.names
    unused = unused_aliases(aliases, names)
    if unused:
        survey.warn(unused_warning(unused, names))
    if model is not None:
        aliases = background_onto_legacy(aliases, spec.class_map.names, model.names)
    spec = alias_classes(spec, aliases, model.names if model else None,
                         [c.color for c in model.classes] if model else None,
                         polygons=polygons, unused=unused, trained_ignored=trained_ignored)
    _warn_trained_ignored(survey, spec, trained_ignored)
    return spec


def _warn_trained_ignored(survey: Survey, spec: LabelSpec, trained_ignored: frozenset[int]):
    held = sorted(v for v, i in spec.value_ids.items()
                  if i != spec.ignore and v in trained_ignored)
    for value in held:
        name = spec.class_map.names[spec.value_ids[value]]
        survey.warn(f"label value {value} ({name}) was ignored in the model's training: if "
                    f"it marks no data here too, ignore it with ingest.ignore_values: "
                    f"[{value}] (--ignore-values {value}); else it is scored as {name}")

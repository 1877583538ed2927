"""Class aliases (``ingest.class_aliases``): label class names -> the classes they are.

Labels from different hands name one class differently: 'tea' and 'Tea', a palette's 'bg',
a GIS raster's unnamed value 1 (``class_1``). An alias renames a label class, as the ingest
names it, to a known class: one the labels or their palette already have, or, when the
labels are read for a model (``segpipe evaluate``), one of the model's. Sources aliased to
one class merge into it. Raster Vision's vector ``class_name_mapping`` does the renaming
for polygon classes; here it applies to every label kind, on the names the ingest gives.

An alias whose source is no label class is a warning, not an error: alias lists are written
to cover the variants several surveys use (``{tea: class_1, Tea: class_1}``), and any one
source holds only some of them. A typo still shows: the class it meant to rename stays, and
is refused by ``segpipe evaluate`` as unknown to the model (naming the unused alias)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator

from components.labels import BACKGROUND_NAMES, LabelSpec, class_map_of
from components.raster import SettingError

FIELD = "class_aliases"

#: What the ingest named raw value 0 of class-id masks when nothing named it, before it was
#: named ``background`` (as polygons name the ground they leave uncovered). Models
#: registered then keep it: their serving config carries their class names.
LEGACY_BACKGROUND = "class_0"


def aliases_as_text(value: object) -> object:
    """YAML reads a class named ``2`` as a number: such keys and values are the names'
    text. Anything else is left to pydantic (a boolean, YAML's ``yes``, is refused)."""
    if not isinstance(value, dict):
        return value

    def text(item: object) -> object:
        return str(item) if isinstance(item, int) and not isinstance(item, bool) else item

    return {text(k): text(v) for k, v in value.items()}


def check_alias_chains(aliases: dict[str, str]) -> dict[str, str]:
    """Names are not empty, and no target is itself aliased: aliases apply in one step, so
    ``{Tea: tea, tea: class_1}`` would leave 'Tea' as 'tea' (say ``Tea: class_1``)."""
    for source, target in aliases.items():
        if not source.strip() or not target.strip():
            raise ValueError(f"{source!r} -> {target!r}: class names must not be empty")
        if aliases.get(target, target) != target:
            raise ValueError(f"{target!r} is both a target ({source} -> {target}) and an "
                             f"alias ({target} -> {aliases[target]}); map every name straight "
                             f"to its final class ({source}: {aliases[target]})")
    return aliases


#: The options' field: names as text, checked to apply in one step.
ClassAliases = Annotated[dict[str, str], BeforeValidator(aliases_as_text),
                         AfterValidator(check_alias_chains)]


def _arrows(pairs: Iterable[tuple[str, str]]) -> str:
    return ", ".join(f"{s} -> {t}" for s, t in pairs)


def check_targets(aliases: dict[str, str], known: Iterable[str], whose: str,
                  hint: str = "") -> None:
    """Every alias names a known class (``known``, described as ``whose``: "the model's
    classes", say): a ``SettingError`` naming the aliases and listing the known names
    otherwise, with ``hint`` after them."""
    known = list(dict.fromkeys(known))
    bad = [(s, t) for s, t in aliases.items() if s != t and t not in known]
    if not bad:
        return
    targets = list(dict.fromkeys(t for _, t in bad))
    said = f"{', '.join(map(repr, targets))} {'is' if len(targets) == 1 else 'are'} not"
    raise SettingError(f"{{setting}} {_arrows(bad)}: {said} among {whose} "
                       f"({', '.join(known)}){hint}", FIELD)


def unused_aliases(aliases: dict[str, str], names: Iterable[str]) -> list[tuple[str, str]]:
    """The aliases whose source is none of ``names`` (the labels' classes)."""
    present = set(names)
    return [(s, t) for s, t in aliases.items() if s != t and s not in present]


def _unmatched(unused: list[tuple[str, str]]) -> str:
    return f"class alias{'es' if len(unused) > 1 else ''} {_arrows(unused)} matched no label class"


def unused_warning(unused: list[tuple[str, str]], names: Iterable[str]) -> str:
    return (f"{_unmatched(unused)} (the labels' classes: {', '.join(dict.fromkeys(names))}; "
            "names are compared exactly, case included)")


def legacy_alias_names(aliases: dict[str, str], names: list[str],
                       targets_too: bool) -> dict[str, str]:
    """Aliases written for the old name of an unnamed value 0 (``class_0``) apply to its
    new one, ``background``, when the labels have that and no ``class_0``: as sources, and
    with ``targets_too`` (targets among the labels' classes, not a model's), as targets."""
    if LEGACY_BACKGROUND in names or "background" not in names:
        return aliases

    def new(name: str) -> str:
        return "background" if name == LEGACY_BACKGROUND else name

    return {new(s): new(t) if targets_too else t for s, t in aliases.items()}


def _is_background(name: str) -> bool:
    return name.lower() in BACKGROUND_NAMES


def background_onto_legacy(aliases: dict[str, str], names: list[str],
                           model_names: list[str]) -> dict[str, str]:
    """For a model of older segpipe, whose unnamed value 0 is ``class_0`` and which has no
    class named background: the labels' background class (value 0 of unnamed id masks, or
    the ground no polygon covers) is that class, unless an alias says otherwise."""
    if LEGACY_BACKGROUND not in model_names or any(map(_is_background, model_names)):
        return aliases
    found = {n: LEGACY_BACKGROUND for n in names if _is_background(n) and n not in aliases}
    return {**aliases, **found}


def same_classes(data_names: list[str], model_names: list[str]) -> bool:
    """The data's classes are the model's, in order, ``class_0`` and ``background`` one
    class: a dataset and a model of segpipe before and after value 0 was named background."""
    def key(name: str) -> str:
        return "background" if name == LEGACY_BACKGROUND else name

    return [key(n) for n in data_names] == [key(n) for n in model_names]


def alias_polygon_labels(labels: Counter, aliases: dict[str, str]) -> Counter:
    """Polygon label counts under the names their aliases give (merged where two meet)."""
    renamed: Counter = Counter()
    for label, count in labels.items():
        renamed[aliases.get(label, label)] += count
    return renamed


def _example(name: str, model_names: list[str]) -> str:
    same = [m for m in model_names if m.lower() == name.lower()]
    return f"{name}={same[0] if same else '<class>'}"


class UnknownClassesError(SettingError):
    """Label classes a model lacks (raised by ``alias_classes``). ``values_of``: the raw
    mask values behind each label class; ``trained_ignored``: the values the model's
    training ignored, advised ignored whatever the ingest named them (value 0 is
    ``background``, a class of most models)."""

    def __init__(self, unknown: list[str], model_names: list[str], polygons: bool,
                 unused: list[tuple[str, str]], trained_ignored: frozenset[int] = frozenset(),
                 values_of: dict[str, list[int]] | None = None):
        self.unknown, self.model_names, self.polygons = unknown, model_names, polygons
        self.unused, self.trained_ignored = unused, trained_ignored
        self.values_of = values_of or {}
        super().__init__(self._template(), FIELD)

    def reworded(self, reword: Callable[[str], str]) -> UnknownClassesError:
        return self  # class names only: no path to reword

    def named(self, setting: str, others: dict[str, str] | None = None) -> str:
        """The aliases' setting as the front end names it, and ignore_values as it names
        its sibling: ``--ignore-values -1,7`` beside ``--class-alias``, else
        ``ingest.ignore_values: [-1, 7]``."""
        text = super().named(setting, others)
        values = sorted({v for n in self.unknown if self._nodata_reason(n)
                         for v in self._values(n)}
                        | {v for vs in self._trained_known().values() for v in vs})
        if setting.startswith("--"):
            ignore = f"--ignore-values {','.join(map(str, values))}"
        else:
            owner = setting.rpartition(".")[0]
            ignore = f"{owner + '.' if owner else ''}ignore_values: {values}"
        return text.replace("{ignore}", ignore)

    def _values(self, name: str) -> list[int]:
        if name in self.values_of:
            return self.values_of[name]
        return [] if (value := _class_value(name)) is None else [value]

    def _nodata_reason(self, name: str) -> str | None:
        values = self._values(name)
        if any(v in self.trained_ignored for v in values):
            return "ignored in the model's training"
        if any(v < 0 for v in values):
            return "a negative value, almost always nodata"
        return None

    def _trained_known(self) -> dict[str, list[int]]:
        """The label classes of a model's name whose values its training ignored."""
        return {n: held for n, values in self.values_of.items() if n not in self.unknown
                and (held := sorted(v for v in values if v in self.trained_ignored))}

    def _template(self) -> str:
        """Each class named, with the alias that would map it (a class of the model whose
        name differs only by case is offered), those that look like nodata with the
        ignore_values that leaves them out (mapped, they would be scored as a class), and
        the aliases that matched nothing (a typo there is the usual cause)."""
        unknown, model_names = self.unknown, self.model_names

        def shown(name: str) -> str:
            ground = self.polygons and name.lower() in BACKGROUND_NAMES
            return repr(name) + (" (the ground no polygon covers)" if ground else "")

        if len(unknown) == 1:
            what = f"label class {shown(unknown[0])} is not one of"
        else:
            what = f"label classes {', '.join(shown(n) for n in unknown)} are not among"
        text = f"{what} the model's classes ({', '.join(model_names)})"
        nodata = {n: r for n in unknown if (r := self._nodata_reason(n))}
        said = [f"{n} ({r})" for n, r in nodata.items()] + [
            f"{n} (value {', '.join(map(str, vs))}, ignored in the model's training)"
            for n, vs in self._trained_known().items()]
        if said:
            listed = " and ".join(said)
            one = len(said) == 1
            text += (f"; {listed} {'is no class' if one else 'are no classes'} to map: "
                     f"ignore {'it' if one else 'them'} with {{ignore}}")
        mapped = [n for n in unknown if n not in nodata]
        if mapped:
            fix = " ".join(f"{{setting}} {_example(n, model_names)}" for n in mapped)
            which = ("it" if len(unknown) == 1 else "each" if not nodata
                     else mapped[0] if len(mapped) == 1 else "the others")
            text += f"; map {which} onto one: {fix}"
        if self.unused:
            text += (f" (the {_unmatched(self.unused)}; names are compared exactly, case "
                     "included)")
        return text


def _class_value(name: str) -> int | None:
    """The mask value behind a class the ingest named for it (``class_-1``), else None."""
    digits = name.removeprefix("class_")
    return int(digits) if name.startswith("class_") and digits.lstrip("-").isdigit() else None


def alias_classes(spec: LabelSpec, aliases: dict[str, str], model_names: list[str] | None,
                  model_colors: list[str] | None = None, *, polygons: bool = False,
                  unused: list[tuple[str, str]] | None = None,
                  trained_ignored: Iterable[int] = ()) -> LabelSpec:
    """``spec`` with its classes renamed by ``aliases`` and those of one name merged; with
    ``model_names``, the classes are the model's, in its order (a class of the model the
    labels lack has no pixels), and a label class the model lacks is an error (advising
    ``trained_ignored``, the values the model's training ignored, ignored)."""
    names = spec.class_map.names
    renamed = [aliases.get(n, n) for n in names]
    if model_names is not None:
        unknown = [n for n in dict.fromkeys(renamed) if n not in model_names]
        if unknown:
            values_of: dict[str, list[int]] = {}
            for value, i in sorted(spec.value_ids.items()):
                if i != spec.ignore:
                    values_of.setdefault(renamed[i], []).append(value)
            raise UnknownClassesError(unknown, model_names, polygons, unused or [],
                                      frozenset(trained_ignored), values_of)
        final = list(model_names)
        colors: list[str | None] = list(model_colors or [None] * len(final))
    else:
        final = list(dict.fromkeys(renamed))
        first = {}
        for name, info in zip(renamed, spec.class_map.classes, strict=True):
            first.setdefault(name, info.color)
        colors = [first[n] for n in final]
    if final == names and model_colors is None:
        return spec
    index = {name: i for i, name in enumerate(final)}
    new_id = {old: index[name] for old, name in enumerate(renamed)}

    def remap(ids: dict) -> dict:
        return {key: i if i == spec.ignore else new_id[i] for key, i in ids.items()}

    return LabelSpec(class_map_of(final, colors, spec.ignore), value_ids=remap(spec.value_ids),
                     color_ids=remap(spec.color_ids), label_ids=remap(spec.label_ids),
                     tolerance=spec.tolerance)

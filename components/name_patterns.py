"""Regular expressions in options that take an id out of a name (``split.group_by``: a
scene's group from its source path; ``ingest.pair_by``: a scene id from an image's and a
label's file name): checked when the options are made, so a typo fails before any work."""

from __future__ import annotations

import re


def check_id_pattern(option: str, value: str, example: str, alternatives: str = "") -> str:
    """``value`` when it compiles and has a capturing group (whose first match is the id);
    else a ValueError naming ``option`` (``alternatives``: what else the option may be, as
    "'parent', a .csv path or ")."""
    try:
        pattern = re.compile(value)
    except re.error as err:
        raise ValueError(f"{option} {value!r} is not {alternatives}a valid regular expression "
                         f"({err})") from None
    if pattern.groups < 1:
        raise ValueError(f"{option} {value!r}: the regular expression needs a capturing "
                         f"group, e.g. {example!r}")
    return value

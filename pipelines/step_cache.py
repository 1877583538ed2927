"""The local run's step cache and the steps' output formats (components/output_formats.py).

A step's output format is one of its inputs, so an entry cached by code that wrote another
format is never reused: kfp misses it and the step runs again. Beside kfp's cache the
formats of the last run that used it are recorded, so that the run can say in one line why
steps it might have expected to be cache hits run again."""

from __future__ import annotations

import json
from pathlib import Path

from components.atomic import write_json
from components.output_formats import OUTPUT_FORMATS

#: kfp.local's cache folder under the pipeline root (kfp/local/cache.py get_local_cache).
CACHE_FOLDER = ".kfp_cache"
RECORD = "step-output-formats.json"


def _recorded(pipeline_root: Path) -> dict[str, int]:
    try:
        data = json.loads((pipeline_root / RECORD).read_text())
    except (OSError, ValueError):
        return {}  # none: the cache predates recorded formats (or it is unreadable)
    return {k: v for k, v in data.items() if isinstance(v, int)} if isinstance(data, dict) \
        else {}


def stale_steps(pipeline_root: Path) -> list[str]:
    """The steps whose entries in the cache under ``pipeline_root`` were written in another
    output format than this code's (none when the cache is empty or absent)."""
    cache = pipeline_root / CACHE_FOLDER
    if not cache.is_dir() or not any(cache.glob("*.json")):
        return []
    recorded = _recorded(pipeline_root)
    return [step for step, version in OUTPUT_FORMATS.items() if recorded.get(step) != version]


def check_cached_formats(pipeline_root: Path) -> str | None:
    """One line naming the steps whose cached outputs are of an older format (they run
    again), or None; and records this code's formats for the next run."""
    stale = stale_steps(pipeline_root)
    pipeline_root.mkdir(parents=True, exist_ok=True)
    write_json(pipeline_root / RECORD, OUTPUT_FORMATS)
    if not stale:
        return None
    return (f"cached outputs of {', '.join(stale)} are from code that wrote another format: "
            f"{'it runs' if len(stale) == 1 else 'they run'} again")

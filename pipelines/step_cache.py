"""The local run's step cache: the steps' output formats (components/output_formats.py),
the source's listing (components/source_fingerprint.py), and what ``--no-cache`` does.

A step's output format is one of its inputs, so an entry cached by code that wrote another
format is never reused: kfp misses it and the step runs again. The same holds for the
ingest's source fingerprint. Beside kfp's cache the formats and the source listing of the
last run that used it are recorded, so that the run can say in one line why steps it might
have expected to be cache hits run again."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

from components.atomic import write_json
from components.output_formats import OUTPUT_FORMATS
from components.source_fingerprint import Listing, describe_changes, fingerprint, list_source

if TYPE_CHECKING:
    from pipelines.config import PipelineConfig

#: kfp.local's cache folder under the pipeline root (kfp/local/cache.py get_local_cache).
CACHE_FOLDER = ".kfp_cache"
RECORD = "step-output-formats.json"
#: One JSON per source: its listing at the last run. A dot folder, as kfp's .kfp_cache: the
#: web app takes kfp-outputs' other folders for the runner's run folders.
SOURCE_LISTINGS = ".source-listings"


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
    again), or None. Reads only: ``record_step_cache`` records this code's formats once the
    data steps have run."""
    stale = stale_steps(pipeline_root)
    if not stale:
        return None
    return (f"cached outputs of {', '.join(stale)} are from code that wrote another format: "
            f"{'it runs' if len(stale) == 1 else 'they run'} again")


def _listing_record(pipeline_root: Path, source: str) -> Path:
    return (pipeline_root / SOURCE_LISTINGS /
            f"{hashlib.sha256(source.encode()).hexdigest()[:16]}.json")


def check_source_listing(pipeline_root: Path, source: str, listing: Listing) -> str | None:
    """One line saying how the source changed since the last run of it whose data steps
    completed with this cache (its ingest runs again), or None. Reads only."""
    try:
        before = json.loads(_listing_record(pipeline_root, source).read_text())
    except (OSError, ValueError):
        before = None
    if not isinstance(before, dict) or not isinstance(before.get("files"), dict) or \
            not (pipeline_root / CACHE_FOLDER).is_dir():
        return None
    changes = describe_changes(before["files"], listing)
    return (f"source changed since the cached ingest: {changes} - ingest runs again"
            if changes else None)


def record_step_cache(pipeline_root: Path, source: str, listing: Listing) -> None:
    """Record this code's output formats and ``source``'s ``listing`` as those of the cache's
    entries: only once the data steps have completed (their entries are then this run's).
    Recorded before, a run that failed or was stopped before its ingest would leave notes
    matching the source and code while the entries are older, and the next run would
    re-ingest without saying why."""
    pipeline_root.mkdir(parents=True, exist_ok=True)
    write_json(pipeline_root / RECORD, OUTPUT_FORMATS)
    record = _listing_record(pipeline_root, source)
    record.parent.mkdir(parents=True, exist_ok=True)
    write_json(record, {"source": source, "files": listing})


#: The pipeline's tasks that start only after every data step completed
#: (pipelines/pipeline.py); start-run comes before them, finish-run may run after any.
AFTER_DATA_STEPS = frozenset({"tune-worker", "select-best", "evaluate", "register"})


def data_steps_completed(failed_step: str | None) -> bool:
    """Whether a run that failed in ``failed_step`` (None: unknown) got past its data
    steps."""
    return failed_step in AFTER_DATA_STEPS


def drop_cache_entries(pipeline_root: Path) -> int:
    """Remove every entry of the cache under ``pipeline_root`` (the outputs they point to
    stay); the count. A ``--no-cache`` run does this and then runs with the cache on: kfp's
    local runner neither reads nor writes entries when caching is off, so the next cached
    run would reuse the entries from before it; this way it reuses this run's outputs."""
    removed = 0
    for entry in (pipeline_root / CACHE_FOLDER).glob("*.json"):
        entry.unlink(missing_ok=True)
        removed += 1
    return removed


def prepare_step_cache(pipeline_root: Path, config: PipelineConfig
                       ) -> tuple[str, list[str], Listing]:
    """Before a local run: the fingerprint of what ``config.source`` holds (the ingest's
    cache key; a DataError when it cannot be listed or holds too many files), the lines
    to show about the cache (steps that run again, and why), and the listing to record with
    ``record_step_cache`` once the data steps have run. With ``config.cache`` off the
    cache's entries are dropped (the run keeps kfp's cache on, writing fresh ones)."""
    listing = list_source(config.source, config.data.ingest.max_source_files)
    changed = check_source_listing(pipeline_root, config.source, listing)
    stale = check_cached_formats(pipeline_root)
    if not config.cache:
        drop_cache_entries(pipeline_root)
        return fingerprint(listing), [], listing
    return fingerprint(listing), [line for line in (changed, stale) if line], listing

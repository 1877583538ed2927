"""The local run's step cache: the steps' output formats (components/output_formats.py),
the source's listing (components/source_fingerprint.py), and what ``--no-cache`` does.

A step's output format is one of its inputs, so an entry cached by code that wrote another
format is never reused: kfp misses it and the step runs again. The same holds for the
ingest's source fingerprint. Both are also in the metadata of the step's output artifact,
which kfp keeps in the cache entry: what the run says about the cache before it starts (in
one line, why steps it might have expected to be cache hits run again) is read from the
entries themselves, so it holds however the run that wrote them ended, SIGKILL included.
Beside the cache, the source's listing at each fingerprint is kept, to say what changed."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from components.atomic import write_json
from components.output_formats import OUTPUT_FORMATS
from components.source_fingerprint import Listing, describe_changes, fingerprint, list_source

if TYPE_CHECKING:
    from pipelines.config import PipelineConfig

#: kfp.local's cache folder under the pipeline root (kfp/local/cache.py get_local_cache).
CACHE_FOLDER = ".kfp_cache"
#: The source's listing at each fingerprint, one folder per source. A dot folder, as kfp's
#: .kfp_cache: the web app takes kfp-outputs' other folders for the runner's run folders.
SOURCE_LISTINGS = ".source-listings"
#: The cached data steps by the name of their output artifact (pipelines/kfp_components.py).
STEP_OF_OUTPUT = {"scenes": "ingest", "tiles": "tile", "split": "split", "stats": "normalize"}


def cached_outputs(pipeline_root: Path) -> Iterator[tuple[str, dict]]:
    """(step, artifact metadata) of every cache entry under ``pipeline_root`` that kfp would
    reuse: one of a data step whose output is still there (kfp treats a missing one as a
    miss, kfp/local/cache.py)."""
    for entry in sorted((pipeline_root / CACHE_FOLDER).glob("*.json")):
        try:
            outputs = json.loads(entry.read_text())
        except (OSError, ValueError):
            continue  # kfp skips it too
        if not isinstance(outputs, dict):
            continue
        for name, value in outputs.items():
            step = STEP_OF_OUTPUT.get(name)
            if step and isinstance(value, dict) and Path(str(value.get("uri", ""))).exists():
                yield step, value.get("metadata") or {}


def _format_of(metadata: dict) -> int | None:
    value = metadata.get("output_format")  # kfp keeps numbers as floats
    return int(value) if isinstance(value, (int, float)) else None


def stale_steps(pipeline_root: Path) -> list[str]:
    """The steps with entries in the cache under ``pipeline_root``, none of them in this
    code's output format (none when the cache is empty or absent)."""
    formats: dict[str, set[int | None]] = {}
    for step, metadata in cached_outputs(pipeline_root):
        formats.setdefault(step, set()).add(_format_of(metadata))
    return [step for step, version in OUTPUT_FORMATS.items()
            if step in formats and version not in formats[step]]


def check_cached_formats(pipeline_root: Path) -> str | None:
    """One line naming the steps whose cached outputs are all of an older format (they run
    again), or None. Reads only."""
    stale = stale_steps(pipeline_root)
    if not stale:
        return None
    return (f"cached outputs of {', '.join(stale)} are from code that wrote another format: "
            f"{'it runs' if len(stale) == 1 else 'they run'} again")


def _listings_folder(pipeline_root: Path, source: str) -> Path:
    return (pipeline_root / SOURCE_LISTINGS /
            hashlib.sha256(source.encode()).hexdigest()[:16])


def record_source_listing(pipeline_root: Path, source: str, listing: Listing) -> None:
    """Keep ``listing`` as what ``source`` held at its fingerprint (true whatever the run
    then does), and drop the listings no cached ingest was made from."""
    folder = _listings_folder(pipeline_root, source)
    folder.mkdir(parents=True, exist_ok=True)
    current = fingerprint(listing)
    write_json(folder / f"{current}.json", {"source": source, "files": listing})
    cached = _cached_fingerprints(pipeline_root)
    for path in folder.glob("*.json"):
        if path.stem not in cached and path.stem != current:
            path.unlink(missing_ok=True)


def _cached_fingerprints(pipeline_root: Path) -> set[str]:
    """The source fingerprints of the cached ingests of this code's format."""
    return {str(metadata.get("source_fingerprint")) for step, metadata
            in cached_outputs(pipeline_root)
            if step == "ingest" and _format_of(metadata) == OUTPUT_FORMATS["ingest"]}


def _read_listing(path: Path) -> Listing | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    files = data.get("files") if isinstance(data, dict) else None
    return files if isinstance(files, dict) else None


def check_source_listing(pipeline_root: Path, source: str, listing: Listing) -> str | None:
    """One line saying how the source changed since its newest cached ingest, when no cached
    ingest is of what it holds now (the ingest runs again), or None. Reads only."""
    cached = _cached_fingerprints(pipeline_root)
    if fingerprint(listing) in cached:
        return None  # the ingest of the source as it is now is a cache hit
    folder = _listings_folder(pipeline_root, source)
    candidates = [path for path in folder.glob("*.json") if path.stem in cached]
    # A cache from before listings were kept per fingerprint: its one listing of the source.
    legacy = folder.with_suffix(".json")
    if legacy.is_file():
        candidates.append(legacy)
    listings = [(path.stat().st_mtime_ns, _read_listing(path)) for path in candidates]
    before = [(when, files) for when, files in listings
              if files is not None and fingerprint(files) in cached]
    if not before:
        return None  # nothing of this source in the cache: the ingest is news to no one
    changes = describe_changes(max(before, key=lambda item: item[0])[1], listing)
    return (f"source changed since the cached ingest: {changes} - ingest runs again"
            if changes else None)


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
                       ) -> tuple[str, list[str]]:
    """Before a local run: the fingerprint of what ``config.source`` holds (the ingest's
    cache key; a DataError when it cannot be listed or holds too many files), the lines
    to show about the cache (steps that run again, and why); the listing is kept for the
    next run's lines. With ``config.cache`` off the cache's entries are dropped (the run
    keeps kfp's cache on, writing fresh ones)."""
    listing = list_source(config.source, config.data.ingest.max_source_files)
    changed = check_source_listing(pipeline_root, config.source, listing)
    stale = check_cached_formats(pipeline_root)
    if not config.cache:
        drop_cache_entries(pipeline_root)
    record_source_listing(pipeline_root, config.source, listing)
    news = [line for line in (changed, stale) if line] if config.cache else []
    return fingerprint(listing), news

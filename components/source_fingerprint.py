"""A cheap fingerprint of what a source holds, so that a change inside it is part of the
ingest step's cache key (Kubeflow's key covers the step's inputs, and the source's *name*
alone does not change when a label is edited or a chip deleted).

The listing is taken before a run is submitted, by whoever submits it (``segpipe run``,
``segpipe submit``): no file is read, only listed. A local folder: every file's relative
path, size and modification time (ns); an archive: the archive file's own size and
modification time; ``s3://bucket/prefix``: every object's key, size and ETag (one
``list_objects_v2`` page per 1,000 keys). The count is bounded by ``max_files``, checked as
the listing goes, before it grows past the bound."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

from components.raster import DataError

#: relative path (or S3 key below the prefix) -> "size mtime_ns" (or "size etag")
Listing = dict[str, str]


def list_source(source: str, max_files: int) -> Listing:
    """The listing of ``source``; a DataError when it holds more than ``max_files`` files,
    does not exist or cannot be listed."""
    if source.startswith("s3://"):
        entries: Iterator[tuple[str, str]] = s3_entries(source)
    else:
        path = Path(source).expanduser()
        if not path.exists():
            raise DataError(f"{source}: no such file or folder")
        entries = _folder_entries(path) if path.is_dir() else iter([(path.name, _stamp(path))])
    listing: Listing = {}
    for name, stamp in entries:
        if len(listing) >= max_files:
            raise DataError(f"{source}: holds more than {max_files:,} files (max_source_files), "
                            f"the most a run lists to tell whether the source changed since "
                            f"its cached ingest; pack the scenes into an archive or raise "
                            f"ingest.max_source_files")
        listing[name] = stamp
    return listing


def fingerprint(listing: Listing) -> str:
    """A short digest of ``listing``: equal for equal listings, whatever their order."""
    text = json.dumps(sorted(listing.items()), separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def describe_changes(before: Listing, now: Listing) -> str:
    """'1 file added, 2 removed, 1 modified' (the non-zero counts), or '' when equal."""
    added = len(now.keys() - before.keys())
    removed = len(before.keys() - now.keys())
    modified = sum(1 for name in now.keys() & before.keys() if now[name] != before[name])
    counts = [(added, "added"), (removed, "removed"), (modified, "modified")]
    words = [f"{n} {verb}" for n, verb in counts if n]
    if not words:
        return ""
    first = next(n for n, _ in counts if n)
    words[0] = words[0].replace(" ", f" file{'s' if first > 1 else ''} ", 1)
    return ", ".join(words)


def _stamp(path: Path) -> str:
    stat = path.stat()
    return f"{stat.st_size} {stat.st_mtime_ns}"


def _folder_entries(root: Path) -> Iterator[tuple[str, str]]:
    for folder, _dirs, files in os.walk(root):
        for name in files:
            path = Path(folder) / name
            try:
                stamp = _stamp(path)
            except OSError:  # a dangling link, a file removed while listing
                continue
            yield path.relative_to(root).as_posix(), stamp


def s3_entries(uri: str) -> Iterator[tuple[str, str]]:
    """Every object under ``uri`` (a prefix) as (its key below the prefix, "size etag"), a
    ``list_objects_v2`` page at a time; a DataError naming ``uri`` when S3 cannot list it."""
    from components.sources import _s3_location, s3_client, s3_error

    bucket, prefix = _s3_location(uri)
    try:
        pages = s3_client().get_paginator("list_objects_v2").paginate(Bucket=bucket,
                                                                     Prefix=prefix)
        for page in pages:
            for obj in page.get("Contents", []):
                if not obj["Key"].endswith("/"):
                    yield obj["Key"][len(prefix):], f"{obj.get('Size', 0)} {obj.get('ETag', '')}"
    except DataError:
        raise
    except Exception as err:  # botocore raises many unrelated types; name the source
        raise s3_error(uri, "list objects", err) from err

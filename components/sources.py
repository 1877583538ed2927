"""Where scenes come from: a local folder, a ``.zip``/``.tar`` archive (extracted safely) or
an ``s3://bucket/prefix`` (through boto3, so ``AWS_ENDPOINT_URL`` and the usual credential
variables apply). Each source is materialised as a local folder for discovery."""

from __future__ import annotations

import os
import stat
import tarfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from components.raster import DataError

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")


def _is_archive(path: Path) -> bool:
    return path.name.lower().endswith(ARCHIVE_SUFFIXES)


def _safe_member_path(archive: str | Path, name: str, dest: Path) -> Path:
    """Refuse absolute names and ``..`` components: nothing may land outside ``dest``."""
    pure = PurePosixPath(name.replace("\\", "/"))
    if pure.is_absolute() or ".." in pure.parts or (pure.parts and ":" in pure.parts[0]):
        raise DataError(f"{archive}: member {name!r} would extract outside the target folder")
    target = (dest / pure).resolve()
    if not target.is_relative_to(dest.resolve()):
        raise DataError(f"{archive}: member {name!r} would extract outside the target folder")
    return target


def extract_zip(archive: Path, dest: Path) -> None:
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            target = _safe_member_path(archive, info.filename, dest)
            if stat.S_ISLNK(info.external_attr >> 16):
                raise DataError(f"{archive}: member {info.filename!r} is a symbolic link; "
                                "links are not extracted")
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as dst:
                while block := src.read(1 << 20):
                    dst.write(block)


def extract_tar(archive: Path, dest: Path) -> None:
    with tarfile.open(archive) as tf:
        members = tf.getmembers()
        for member in members:
            _safe_member_path(archive, member.name, dest)
            if member.issym() or member.islnk():
                raise DataError(f"{archive}: member {member.name!r} is a link; "
                                "links are not extracted")
            if not (member.isfile() or member.isdir()):
                raise DataError(f"{archive}: member {member.name!r} is not a regular file")
        # The "data" filter (Python >= 3.11.4) re-checks every member as a second defence.
        if hasattr(tarfile, "data_filter"):
            tf.extractall(dest, members=members, filter="data")
        else:
            tf.extractall(dest, members=members)


def download_s3_prefix(uri: str, dest: Path) -> int:
    """Download every object under ``s3://bucket/prefix`` into ``dest``; return the count."""
    import boto3

    without_scheme = uri[len("s3://"):]
    bucket, _, prefix = without_scheme.partition("/")
    if not bucket:
        raise DataError(f"{uri}: no bucket in S3 URI")
    client = boto3.client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None)
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    count = 0
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket,
                                                                      Prefix=prefix):
            for obj in page.get("Contents", []):
                key = obj["Key"]
                if key.endswith("/"):
                    continue
                target = _safe_member_path(uri, key[len(prefix):], dest)
                target.parent.mkdir(parents=True, exist_ok=True)
                client.download_file(bucket, key, str(target))
                count += 1
    except DataError:
        raise
    except Exception as err:  # botocore raises many unrelated types; name the source
        raise DataError(f"{uri}: cannot list or download objects ({err})") from err
    return count


@contextmanager
def materialize_source(source: str, scratch: Path) -> Iterator[Path]:
    """Yield a local folder holding the scenes of ``source``; downloads and extractions go
    under ``scratch`` (the caller removes it)."""
    if source.startswith("s3://"):
        dest = scratch / "s3"
        dest.mkdir(parents=True)
        if download_s3_prefix(source, dest) == 0:
            raise DataError(f"{source}: no objects under this S3 prefix")
        yield dest
        return
    path = Path(source).expanduser()
    if not path.exists():
        raise DataError(f"{source}: no such file or folder")
    if path.is_dir():
        yield path
    elif _is_archive(path):
        dest = scratch / "archive"
        dest.mkdir(parents=True)
        try:
            if path.name.lower().endswith(".zip"):
                extract_zip(path, dest)
            else:
                extract_tar(path, dest)
        except (zipfile.BadZipFile, tarfile.TarError) as err:
            raise DataError(f"{path}: cannot read archive ({err})") from err
        yield dest
    else:
        raise DataError(f"{source}: not a folder, a .zip/.tar archive or an s3:// prefix")

"""Where scenes come from: a local folder, a ``.zip``/``.tar`` archive (extracted safely) or
an ``s3://bucket/prefix`` (through boto3, so ``AWS_ENDPOINT_URL`` and the usual credential
variables apply). Each source is materialised as a local folder for discovery.

Archives are extracted within limits: no member over ``member_bytes`` (declared in its
header or actually written), no more than ``total_bytes`` in all, and no more than
``ratio`` times the archive's own size once past ``RATIO_FLOOR`` (a zip bomb: a few MB of
zeros that inflate to GiBs). Members are counted as they are written, so a header that lies
about its size is caught too. S3 objects are held to the same byte limits before any
download."""

from __future__ import annotations

import errno
import lzma
import os
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from components.raster import DataError

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")
# Below this many extracted bytes the compression ratio is not checked: small archives of
# small, very compressible files are normal.
RATIO_FLOOR = 64 << 20


@dataclass(frozen=True)
class ExtractLimits:
    member_bytes: int = 16 << 30
    total_bytes: int = 64 << 30
    ratio: float = 200.0


class _Budget:
    """Counts bytes as they are written and stops the extraction at the first limit.
    ``member`` names a member as the user knows it (an S3 object by its URL)."""

    def __init__(self, archive: str | Path, limits: ExtractLimits, packed: int,
                 member: Callable[[str], str] | None = None) -> None:
        self.archive, self.limits, self.packed, self.total = archive, limits, packed, 0
        self.member = member or (lambda name: f"{archive}: member {name!r}")

    def declared(self, name: str, size: int) -> None:
        if size > self.limits.member_bytes:
            raise DataError(f"{self.member(name)} declares {size:,} bytes, more than the "
                            f"{self.limits.member_bytes:,} allowed per member")

    def declared_total(self, total: int) -> None:
        if total > self.limits.total_bytes:
            raise DataError(f"{self.archive}: members declare {total:,} bytes in all, more "
                            f"than the {self.limits.total_bytes:,} allowed")
        self._ratio(total, "declares")

    def _ratio(self, total: int, verb: str) -> None:
        if total > RATIO_FLOOR and total > self.limits.ratio * max(self.packed, 1):
            raise DataError(f"{self.archive}: {verb} {total:,} bytes from {self.packed:,}, "
                            f"more than {self.limits.ratio:g} times its size (a zip bomb?)")

    def wrote(self, name: str, member_total: int, declared: int, count: int) -> None:
        self.total += count
        if member_total > min(declared, self.limits.member_bytes):
            raise DataError(f"{self.member(name)} inflates past "
                            f"{min(declared, self.limits.member_bytes):,} bytes (its declared "
                            "size or the per-member limit)")
        if self.total > self.limits.total_bytes:
            raise DataError(f"{self.archive}: extracts to more than the "
                            f"{self.limits.total_bytes:,} bytes allowed")
        self._ratio(self.total, "inflates to")


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


def _zip_members(archive: Path, zf: zipfile.ZipFile, dest: Path,
                 budget: _Budget) -> list[zipfile.ZipInfo]:
    """The members, once their names, kinds and declared sizes pass (the central directory
    alone: nothing is inflated)."""
    infos = zf.infolist()
    for info in infos:
        _safe_member_path(archive, info.filename, dest)
        budget.declared(info.filename, info.file_size)
        if stat.S_ISLNK(info.external_attr >> 16):
            raise DataError(f"{archive}: member {info.filename!r} is a symbolic link; "
                            "links are not extracted")
    budget.declared_total(sum(i.file_size for i in infos))
    return infos


class SourceWriteError(DataError):
    """Writing a source's files to our own disk failed (full disk, quota, permissions): not
    the source's fault, so the message names the destination, not the archive as damaged. A
    DataError all the same, so every caller's one-line error path reports it."""


def _write_failure(source: str | Path, name: str, target: Path, err: OSError,
                   doing: str = "extracting") -> DataError:
    what = f"member {name!r} of {source}" if name else str(source)
    return SourceWriteError(f"{target}: write failure {doing} {what} ({err.strerror or err}); "
                            f"the source was read, the destination disk refused the data")


def _make_dirs(archive: str | Path, name: str, folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise _write_failure(archive, name, folder, err) from None


def _write_member(archive: Path, name: str, src: BinaryIO, target: Path, budget: _Budget,
                  declared: int) -> None:
    """Copy one member out, counted against the budget. Errors of reading ``src`` (the
    archive) propagate as they are; those of writing ``target`` are a SourceWriteError."""
    _make_dirs(archive, name, target.parent)
    try:
        dst = open(target, "wb")  # noqa: SIM115 (closed below, its own errors told apart)
    except OSError as err:
        raise _write_failure(archive, name, target, err) from None
    failure: OSError | None = None
    try:
        written = 0
        while block := src.read(1 << 20):
            written += len(block)
            budget.wrote(name, written, declared, len(block))
            try:
                dst.write(block)
            except OSError as err:
                failure = err
                break
    finally:
        try:
            dst.close()  # flushes the last block: a full disk may only show here
        except OSError as err:
            failure = failure or err
    if failure is not None:
        raise _write_failure(archive, name, target, failure) from None


def extract_zip(archive: Path, dest: Path, limits: ExtractLimits | None = None) -> None:
    budget = _Budget(archive, limits or ExtractLimits(), archive.stat().st_size)
    with zipfile.ZipFile(archive) as zf:
        infos = _zip_members(archive, zf, dest, budget)
        for info in infos:
            target = _safe_member_path(archive, info.filename, dest)
            if info.is_dir():
                _make_dirs(archive, info.filename, target)
                continue
            try:
                with zf.open(info) as src:
                    _write_member(archive, info.filename, src, target, budget, info.file_size)
            except (zipfile.BadZipFile, zlib.error, EOFError) as err:  # reading, not writing
                raise DataError(f"{archive}: member {info.filename!r} is damaged "
                                f"({_reason(err)})") from None


def _tar_members(archive: Path, tf: tarfile.TarFile, dest: Path,
                 budget: _Budget) -> list[tarfile.TarInfo]:
    """The members, once their names, kinds and sizes pass (their headers: an uncompressed
    tar is listed by seeking, a compressed one only by decompressing all of it)."""
    members: list[tarfile.TarInfo] = []
    try:
        members.extend(tf)
    except _UNREADABLE as err:  # a compressed tar cut short fails only here, at its end
        after = f" beyond member {members[-1].name!r}" if members else ""
        raise DataError(f"{archive}: cannot read archive{after} ({_reason(err)})") from None
    for member in members:
        _safe_member_path(archive, member.name, dest)
        if member.issym() or member.islnk():
            raise DataError(f"{archive}: member {member.name!r} is a link; "
                            "links are not extracted")
        if not (member.isfile() or member.isdir()):
            raise DataError(f"{archive}: member {member.name!r} is not a regular file")
        budget.declared(member.name, member.size)
    # A tar member's data is exactly its declared size, so the headers are the truth.
    budget.declared_total(sum(m.size for m in members))
    return members


def extract_tar(archive: Path, dest: Path, limits: ExtractLimits | None = None) -> None:
    budget = _Budget(archive, limits or ExtractLimits(), archive.stat().st_size)
    with tarfile.open(archive) as tf:
        for member in _tar_members(archive, tf, dest, budget):
            # The "data" filter (Python >= 3.11.4) re-checks every member as a second defence.
            if hasattr(tarfile, "data_filter"):
                member = tarfile.data_filter(member, str(dest))
            target = _safe_member_path(archive, member.name, dest)
            if member.isdir():
                _make_dirs(archive, member.name, target)
                continue
            src = tf.extractfile(member)
            if src is None:  # not a regular file: refused by _tar_members already
                raise DataError(f"{archive}: member {member.name!r} is not a regular file")
            with src:
                _write_member(archive, member.name, src, target, budget, member.size)


def _s3_location(uri: str) -> tuple[str, str]:
    """``s3://bucket/prefix`` -> (bucket, "prefix/"): a prefix names a folder."""
    bucket, _, prefix = uri[len("s3://"):].partition("/")
    if not bucket:
        raise DataError(f"{uri}: no bucket in S3 URI")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return bucket, prefix


def _s3_client():
    import boto3

    return boto3.client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None)


def download_s3_prefix(uri: str, dest: Path, limits: ExtractLimits | None = None) -> int:
    """Download every object under ``s3://bucket/prefix`` into ``dest``; return the count.
    Every object is listed first, so the byte limits hold before anything is downloaded."""
    bucket, prefix = _s3_location(uri)
    client = _s3_client()
    limits = limits or ExtractLimits()
    budget = _Budget(uri, limits, 0, member=lambda key: f"s3://{bucket}/{key}")
    try:
        objects = [(obj["Key"], int(obj.get("Size", 0)))
                   for page in client.get_paginator("list_objects_v2").paginate(
                       Bucket=bucket, Prefix=prefix)
                   for obj in page.get("Contents", []) if not obj["Key"].endswith("/")]
        for key, size in objects:
            _safe_member_path(uri, key[len(prefix):], dest)
            budget.declared(key, size)
        total = sum(size for _, size in objects)
        if total > limits.total_bytes:
            raise DataError(f"{uri}: objects hold {total:,} bytes in all, more than the "
                            f"{limits.total_bytes:,} allowed")
        for key, _ in objects:
            target = _safe_member_path(uri, key[len(prefix):], dest)
            _make_dirs(uri, key, target.parent)
            try:
                client.download_file(bucket, key, str(target))
            except OSError as err:
                if err.errno not in _WRITE_ERRNOS:
                    raise
                raise _write_failure(f"s3://{bucket}", key, target, err, "downloading") from None
        count = len(objects)
    except DataError:
        raise
    except Exception as err:  # botocore raises many unrelated types; name the source
        raise DataError(f"{uri}: cannot list or download objects ({err})") from err
    return count


# A download's errors that are our disk's, not the bucket's: full, over quota, file too
# large for it, read-only.
_WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS)

# What reading a damaged or foreign archive raises.
_UNREADABLE = (zipfile.BadZipFile, tarfile.TarError, zlib.error, lzma.LZMAError, EOFError,
               OSError)


def _reason(err: BaseException) -> str:
    """An archive error in one line (tarfile lists every compression it tried, a line each)."""
    if isinstance(err, tarfile.ReadError) and "\n" in str(err):
        return "not a tar archive, plain or compressed (gz, bz2, xz)"
    return " ".join(str(err).split())


#: The most keys ``check_source`` lists under an S3 prefix: one listing request.
S3_CHECK_KEYS = 1000


def check_source(source: str, limits: ExtractLimits | None = None) -> None:
    """What a cheap listing shows wrong with an ``s3://`` or archive source, before a run
    starts rather than in its ingest step: an S3 prefix without objects (among its first
    ``S3_CHECK_KEYS`` keys) or one it cannot list; an archive that does not open, holds no
    files, or whose zip directory or plain tar headers break the extraction's rules. A
    compressed tar is only opened: listing it means decompressing it. Local folders are
    checked by discovery (``components.ingest.find_pairs``)."""
    limits = limits or ExtractLimits()
    if source.startswith("s3://"):
        _check_s3(source, limits)
        return
    path = Path(source).expanduser()
    if not path.exists():
        raise DataError(f"{source}: no such file or folder")
    if path.is_dir():
        return
    if not _is_archive(path):
        raise DataError(f"{source}: not a folder, a .zip/.tar archive or an s3:// prefix")
    budget, nowhere = _Budget(path, limits, path.stat().st_size), path.parent / ".check"
    try:
        if path.name.lower().endswith(".zip"):
            with zipfile.ZipFile(path) as zf:
                files = [i for i in _zip_members(path, zf, nowhere, budget) if not i.is_dir()]
        elif path.name.lower().endswith(".tar"):
            with tarfile.open(path) as tf:
                files = [m for m in _tar_members(path, tf, nowhere, budget) if m.isfile()]
        else:
            with tarfile.open(path) as tf:
                first = tf.next()
                files = [first] if first is not None else []
    except _UNREADABLE as err:
        raise DataError(f"{path}: cannot read archive ({_reason(err)})") from None
    if not files:
        raise DataError(f"{path}: the archive holds no files")


def _check_s3(uri: str, limits: ExtractLimits) -> None:
    bucket, prefix = _s3_location(uri)
    try:
        page = _s3_client().list_objects_v2(Bucket=bucket, Prefix=prefix,
                                            MaxKeys=S3_CHECK_KEYS)
    except Exception as err:  # botocore raises many unrelated types; name the source
        raise DataError(f"{uri}: cannot list objects ({err})") from err
    budget = _Budget(uri, limits, 0, member=lambda key: f"s3://{bucket}/{key}")
    objects = [obj for obj in page.get("Contents", []) if not obj["Key"].endswith("/")]
    for obj in objects:
        budget.declared(obj["Key"], int(obj.get("Size", 0)))
    if not objects and not page.get("IsTruncated"):
        raise DataError(f"{uri}: no objects under this S3 prefix")


@contextmanager
def materialize_source(source: str, scratch: Path,
                       limits: ExtractLimits | None = None) -> Iterator[Path]:
    """Yield a local folder holding the scenes of ``source``; downloads and extractions go
    under ``scratch`` (the caller removes it)."""
    if source.startswith("s3://"):
        dest = scratch / "s3"
        _make_dirs(source, "", dest)
        if download_s3_prefix(source, dest, limits) == 0:
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
        _make_dirs(path, "", dest)
        try:
            if path.name.lower().endswith(".zip"):
                extract_zip(path, dest, limits)
            else:
                extract_tar(path, dest, limits)
        except _UNREADABLE as err:
            raise DataError(f"{path}: cannot read archive ({_reason(err)})") from None
        yield dest
    else:
        raise DataError(f"{source}: not a folder, a .zip/.tar archive or an s3:// prefix")

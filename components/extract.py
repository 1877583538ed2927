"""Archives extracted safely, for sources given as a ``.zip``/``.tar``: members are refused
when their names would land outside the target folder, when they are links or special files,
and past the limits: no member over ``member_bytes`` (declared in its header or actually
written), no more than ``total_bytes`` in all, and no more than ``ratio`` times the archive's
own size once past ``RATIO_FLOOR`` (a zip bomb: a few MB of zeros that inflate to GiBs).
Members are counted as they are written, so a header that lies about its size is caught too.
Reading errors (a damaged archive) are told from writing errors (our own disk:
SourceWriteError). S3 downloads (components/sources.py) use the same limits and writes."""

from __future__ import annotations

import lzma
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Callable
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


class Budget:
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


def is_archive(path: Path) -> bool:
    return path.name.lower().endswith(ARCHIVE_SUFFIXES)


def safe_member_path(archive: str | Path, name: str, dest: Path) -> Path:
    """Refuse absolute names and ``..`` components: nothing may land outside ``dest``."""
    pure = PurePosixPath(name.replace("\\", "/"))
    if pure.is_absolute() or ".." in pure.parts or (pure.parts and ":" in pure.parts[0]):
        raise DataError(f"{archive}: member {name!r} would extract outside the target folder")
    target = (dest / pure).resolve()
    if not target.is_relative_to(dest.resolve()):
        raise DataError(f"{archive}: member {name!r} would extract outside the target folder")
    return target


def zip_members(archive: Path, zf: zipfile.ZipFile, dest: Path,
                 budget: Budget) -> list[zipfile.ZipInfo]:
    """The members, once their names, kinds and declared sizes pass (the central directory
    alone: nothing is inflated)."""
    infos = zf.infolist()
    for info in infos:
        safe_member_path(archive, info.filename, dest)
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


def write_failure(source: str | Path, name: str, target: Path, err: OSError,
                   doing: str = "extracting") -> DataError:
    what = f"member {name!r} of {source}" if name else str(source)
    return SourceWriteError(f"{target}: write failure {doing} {what} ({err.strerror or err}); "
                            f"the source was read, the destination disk refused the data")


def make_dirs(archive: str | Path, name: str, folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise write_failure(archive, name, folder, err) from None


def _write_member(archive: Path, name: str, src: BinaryIO, target: Path, budget: Budget,
                  declared: int) -> None:
    """Copy one member out, counted against the budget. Errors of reading ``src`` (the
    archive) propagate as they are; those of writing ``target`` are a SourceWriteError."""
    make_dirs(archive, name, target.parent)
    try:
        dst = open(target, "wb")  # noqa: SIM115 (closed below, its own errors told apart)
    except OSError as err:
        raise write_failure(archive, name, target, err) from None
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
        raise write_failure(archive, name, target, failure) from None


def extract_zip(archive: Path, dest: Path, limits: ExtractLimits | None = None) -> None:
    budget = Budget(archive, limits or ExtractLimits(), archive.stat().st_size)
    with zipfile.ZipFile(archive) as zf:
        infos = zip_members(archive, zf, dest, budget)
        for info in infos:
            target = safe_member_path(archive, info.filename, dest)
            if info.is_dir():
                make_dirs(archive, info.filename, target)
                continue
            try:
                with zf.open(info) as src:
                    _write_member(archive, info.filename, src, target, budget, info.file_size)
            except (zipfile.BadZipFile, zlib.error, EOFError) as err:  # reading, not writing
                raise DataError(f"{archive}: member {info.filename!r} is damaged "
                                f"({reason(err)})") from None


def tar_members(archive: Path, tf: tarfile.TarFile, dest: Path,
                 budget: Budget) -> list[tarfile.TarInfo]:
    """The members, once their names, kinds and sizes pass (their headers: an uncompressed
    tar is listed by seeking, a compressed one only by decompressing all of it)."""
    members: list[tarfile.TarInfo] = []
    try:
        members.extend(tf)
    except UNREADABLE as err:  # a compressed tar cut short fails only here, at its end
        after = f" beyond member {members[-1].name!r}" if members else ""
        raise DataError(f"{archive}: cannot read archive{after} ({reason(err)})") from None
    for member in members:
        safe_member_path(archive, member.name, dest)
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
    budget = Budget(archive, limits or ExtractLimits(), archive.stat().st_size)
    with tarfile.open(archive) as tf:
        for member in tar_members(archive, tf, dest, budget):
            # The "data" filter (Python >= 3.11.4) re-checks every member as a second defence.
            if hasattr(tarfile, "data_filter"):
                member = tarfile.data_filter(member, str(dest))
            target = safe_member_path(archive, member.name, dest)
            if member.isdir():
                make_dirs(archive, member.name, target)
                continue
            src = tf.extractfile(member)
            if src is None:  # not a regular file: refused by tar_members already
                raise DataError(f"{archive}: member {member.name!r} is not a regular file")
            with src:
                _write_member(archive, member.name, src, target, budget, member.size)


# What reading a damaged or foreign archive raises.
UNREADABLE = (zipfile.BadZipFile, tarfile.TarError, zlib.error, lzma.LZMAError, EOFError,
               OSError)


def reason(err: BaseException) -> str:
    """An archive error in one line (tarfile lists every compression it tried, a line each)."""
    if isinstance(err, tarfile.ReadError) and "\n" in str(err):
        return "not a tar archive, plain or compressed (gz, bz2, xz)"
    return " ".join(str(err).split())

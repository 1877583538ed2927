"""Checks of the files a command will write, made before the work that produces them."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from pipelines.cli.errors import fail


def same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)  # hard links and symlinks too
    except OSError:  # one of them does not exist (yet)
        return a.resolve() == b.resolve()


def check_writable(option: str, path: Path) -> None:
    """Exit 2 unless ``path`` can be created: not a folder, and its nearest existing folder
    takes a new file (missing folders below it are created when the file is written).
    Tried with a real file, as permission bits say nothing to root or on /proc."""
    if path.is_dir():
        raise fail(f"{option} {path} is a folder; give a file name", 2)
    folder = path.absolute().parent
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        raise fail(f"{option} {path}: {folder} is not a folder", 2)
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise fail(f"{option} {path}: cannot create files in {folder} "
                   f"({exc.strerror or exc})", 2) from None


def check_writable_folder(option: str, path: Path) -> None:
    """Exit 2 unless ``path`` is a folder that takes new files, or can be created as one (its
    nearest existing folder takes a new folder). Tried for real, as ``check_writable``
    does, leaving nothing behind."""
    if path.exists() and not path.is_dir():
        raise fail(f"{option} {path} is a file; give a folder", 2)
    folder = path.absolute()
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        raise fail(f"{option} {path}: {folder} is not a folder", 2)
    try:
        with tempfile.TemporaryDirectory(dir=folder), tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise fail(f"{option} {path}: cannot create files and folders in {folder} "
                   f"({exc.strerror or exc})", 2) from None


def check_suffix(option: str, path: Path, what: str, suffixes: tuple[str, ...]) -> None:
    """Exit 2 unless ``path`` ends in one of ``suffixes`` (any case): a mask named .png
    would be a GeoTIFF all the same, which other programs then misread."""
    if path.suffix.lower() not in suffixes:
        named = f"'{path.suffix}'" if path.suffix else "no extension"
        raise fail(f"{option} {path}: {named}, but {what} is written; name it "
                   f"{' or '.join(suffixes)}", 2)


def file_path(option: str, raw: str) -> Path:
    """``raw`` (the option's text, before it becomes a Path, which drops a trailing slash)
    as the path of a file to write: exit 2 when a trailing slash names a folder."""
    if raw.endswith(("/", os.sep)) or (os.altsep and raw.endswith(os.altsep)):
        raise fail(f"{option} {raw} ends in a slash, so it names a folder; give a file name", 2)
    return Path(raw)

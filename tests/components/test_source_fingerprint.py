"""The source's fingerprint (a part of the ingest's cache key): it changes with any file
added, removed or rewritten, for folders, archives and S3 prefixes (moto's server), and the
listing stops at its file limit."""

from __future__ import annotations

import os

import boto3
import pytest

from components.raster import DataError
from components.source_fingerprint import describe_changes, fingerprint, list_source


def test_a_folder_edit_removal_or_addition_changes_the_fingerprint(tmp_path):
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "a.tif").write_bytes(b"1234")
    (tmp_path / "b.tif").write_bytes(b"1234")
    before = list_source(str(tmp_path), 10)
    assert set(before) == {"labels/a.tif", "b.tif"}
    assert fingerprint(before) == fingerprint(dict(reversed(before.items())))
    stat = (tmp_path / "labels" / "a.tif").stat()
    (tmp_path / "labels" / "a.tif").write_bytes(b"4321")  # same size, new content
    os.utime(tmp_path / "labels" / "a.tif", ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    edited = list_source(str(tmp_path), 10)
    assert fingerprint(edited) != fingerprint(before)
    (tmp_path / "b.tif").unlink()
    (tmp_path / "c.tif").write_bytes(b"")
    now = list_source(str(tmp_path), 10)
    assert describe_changes(before, now) == "1 file added, 1 removed, 1 modified"
    assert describe_changes(now, now) == ""


def test_an_archive_is_fingerprinted_by_its_own_size_and_time(tmp_path):
    archive = tmp_path / "scenes.zip"
    archive.write_bytes(b"PK" * 10)
    before = list_source(str(archive), 1)
    archive.write_bytes(b"PK" * 11)
    assert fingerprint(list_source(str(archive), 1)) != fingerprint(before)


def test_a_source_with_more_files_than_the_limit_is_refused_by_name(tmp_path):
    for i in range(4):
        (tmp_path / f"{i}.tif").write_bytes(b"")
    assert len(list_source(str(tmp_path), 4)) == 4
    with pytest.raises(DataError, match=r"^.*: holds more than 3 files \(max_source_files\)"):
        list_source(str(tmp_path), 3)
    with pytest.raises(DataError, match="no such file or folder"):
        list_source(str(tmp_path / "nope"), 3)


def test_an_s3_prefix_is_fingerprinted_by_keys_sizes_and_etags(moto_endpoint):
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="scenes")
    s3.put_object(Bucket="scenes", Key="survey/images/a.tif", Body=b"abcd")
    s3.put_object(Bucket="scenes", Key="other/b.tif", Body=b"not under the prefix")
    before = list_source("s3://scenes/survey", 10)
    assert list(before) == ["images/a.tif"]
    s3.put_object(Bucket="scenes", Key="survey/images/a.tif", Body=b"dcba")  # same size
    assert describe_changes(before, list_source("s3://scenes/survey", 10)) == "1 file modified"
    with pytest.raises(DataError, match=r"s3://missing/x: cannot list objects"):
        list_source("s3://missing/x", 10)

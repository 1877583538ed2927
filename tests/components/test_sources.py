"""Sources: archives (safe extraction) and S3 through moto's standalone server over HTTP
(the moto_endpoint fixture in tests/conftest.py)."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import boto3
import numpy as np
import pytest
import rasterio

from components.ingest import ingest_source
from components.ingest_options import IngestOptions
from components.raster import DataError

REPO_ROOT = Path(__file__).resolve().parents[2]


def _scene_names(out: Path) -> list[str]:
    return sorted(p.name for p in (out / "scenes").glob("*_image.tif"))


def test_zip_and_tar_archives_are_ingested(binary_source, tmp_path):
    zipped = shutil.make_archive(str(tmp_path / "data"), "zip", binary_source.parent,
                                 binary_source.name)
    tarred = shutil.make_archive(str(tmp_path / "data"), "gztar", binary_source.parent,
                                 binary_source.name)
    for archive, out in ((zipped, tmp_path / "z"), (tarred, tmp_path / "t")):
        classes = ingest_source(archive, out)
        assert classes.num_classes == 2
        assert _scene_names(out) == [f"chip{i}_image.tif" for i in range(4)]
        assert not any(p.name.startswith(".ingest-") for p in out.iterdir())
    with rasterio.open(tmp_path / "t" / "scenes" / "chip2_image.tif") as src:
        assert src.crs.to_epsg() == 32650 and src.transform.c == 600000.0 + 128.0


def test_zip_with_path_traversal_is_refused(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../outside.txt", "x")
    with pytest.raises(DataError, match=r"evil\.zip: member '\.\./outside\.txt' would extract"):
        ingest_source(archive, tmp_path / "out")
    assert not (tmp_path / "outside.txt").exists()


def test_tar_with_link_out_is_refused(tmp_path):
    archive = tmp_path / "evil.tar"
    with tarfile.open(archive, "w") as tf:
        link = tarfile.TarInfo("data/escape")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tf.addfile(link)
        payload = b"hello"
        info = tarfile.TarInfo("data/readme.txt")
        info.size = len(payload)
        tf.addfile(info, io.BytesIO(payload))
    with pytest.raises(DataError, match=r"evil\.tar: member 'data/escape' is a link"):
        ingest_source(archive, tmp_path / "out")


def test_corrupt_archive_names_the_file(tmp_path):
    archive = tmp_path / "broken.zip"
    archive.write_bytes(b"PK not really")
    with pytest.raises(DataError, match=r"broken\.zip: cannot read archive"):
        ingest_source(archive, tmp_path / "out")


def test_s3_prefix_is_downloaded_and_ingested(binary_source, tmp_path, moto_endpoint):
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="scenes")
    for path in binary_source.rglob("*.tif"):
        s3.upload_file(str(path), "scenes", f"survey/2024/{path.relative_to(binary_source)}")
    s3.put_object(Bucket="scenes", Key="other/ignored.tif", Body=b"not under the prefix")
    out = tmp_path / "out"
    classes = ingest_source("s3://scenes/survey/2024", out)
    assert classes.names == ["background", "class_255"]
    assert _scene_names(out) == [f"chip{i}_image.tif" for i in range(4)]
    with rasterio.open(out / "scenes" / "chip1_mask.tif") as src:
        assert set(np.unique(src.read(1))) == {0, 1}
    with pytest.raises(DataError, match=r"s3://scenes/nothing: no objects"):
        ingest_source("s3://scenes/nothing", tmp_path / "empty")


def test_errors_inside_an_archive_name_the_member_not_the_temp_folder(binary_source, tmp_path):
    archive = shutil.make_archive(str(tmp_path / "survey"), "zip", binary_source.parent,
                                  binary_source.name)
    with pytest.raises(DataError) as err:
        ingest_source(archive, tmp_path / "out", IngestOptions(class_values={0: 0}))
    message = str(err.value)
    assert f"{archive}:binary/labels/chip0.tif" in message and "value 255" in message
    assert ".ingest-" not in message and not (tmp_path / "out").exists()


def test_a_damaged_zip_member_is_named_with_its_archive(tmp_path):
    archive = tmp_path / "survey.zip"
    payload = bytes(range(256)) * 4096  # compressible: deflate data worth damaging
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("scenes/a_image.tif", payload)
        zf.writestr("scenes/b_image.tif", payload[::-1])
    with zipfile.ZipFile(archive) as zf:
        info = zf.getinfo("scenes/b_image.tif")
    data = bytearray(archive.read_bytes())
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    middle = start + info.compress_size // 2
    data[middle:middle + 16] = bytes(16)  # the directory still lists it whole
    archive.write_bytes(bytes(data))
    with pytest.raises(DataError, match=rf"^{archive}: member 'scenes/b_image\.tif' is "
                                        r"damaged \("):
        ingest_source(archive, tmp_path / "out")


def test_a_tar_cut_short_names_the_last_member_it_reached(tmp_path):
    archive = tmp_path / "survey.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        for name in ("scenes/a_image.tif", "scenes/b_image.tif"):
            payload = np.random.default_rng(len(name)).bytes(200_000)  # incompressible
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tf.addfile(info, io.BytesIO(payload))
    archive.write_bytes(archive.read_bytes()[:300_000])  # in the second member's data
    with pytest.raises(DataError, match=rf"^{archive}: cannot read archive beyond member "
                                        r"'scenes/b_image\.tif' \("):
        ingest_source(archive, tmp_path / "out")


def test_s3_limits_name_the_object_by_its_url(tmp_path, moto_endpoint):
    from components.sources import check_source

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="scenes")
    s3.put_object(Bucket="scenes", Key="survey/2024/images/a.tif", Body=b"x" * 64)
    options = IngestOptions(max_member_bytes=10)
    expected = (r"^s3://scenes/survey/2024/images/a\.tif declares 64 bytes, more than the 10 "
                r"allowed per member$")
    with pytest.raises(DataError, match=expected):
        ingest_source("s3://scenes/survey/2024", tmp_path / "out", options)
    with pytest.raises(DataError, match=expected):
        check_source("s3://scenes/survey/2024", options.extract_limits())


@pytest.mark.parametrize("endpoint, problem", [
    # boto3's ValueError or urllib's, a traceback from `segpipe predict`
    ("127.0.0.1:9000", r"AWS_ENDPOINT_URL 127\.0\.0\.1:9000: must be http\(s\)://host:port"),
    ("http://alice:hunter2@[::1", r"AWS_ENDPOINT_URL http://alice:\*\*\*@\[::1: not a URL"),
    # an endpoint that does not answer, quoted by boto3 with its password
    ("http://alice:hunter2@127.0.0.1:9", r"s3://tea/a: cannot list or download objects \(Could "
                                         r"not connect to the endpoint URL: \"http://alice:"
                                         r"\*\*\*@127\.0\.0\.1:9/"),
])
def test_an_s3_endpoint_is_named_in_one_line_without_its_password(tmp_path, monkeypatch,
                                                                  endpoint, problem):
    from components.sources import materialize_source

    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # no retries of the closed port
    with pytest.raises(DataError) as caught, materialize_source("s3://tea/a", tmp_path):
        pass
    message = str(caught.value)
    assert re.search(f"^{problem}", message) and "\n" not in message, message
    assert "hunter2" not in message


def test_a_refused_unsigned_download_names_aws_no_sign_request(moto_endpoint, monkeypatch,
                                                               tmp_path):
    from components.sources import materialize_source

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="tea")
    s3.put_object(Bucket="tea", Key="survey/a.tif", Body=b"x")  # private
    monkeypatch.setenv("AWS_NO_SIGN_REQUEST", "YES")
    with pytest.raises(DataError, match=r"^s3://tea/survey: cannot list or download objects "
                                        r"\(.*403.*\); the requests were unsigned "
                                        r"\(AWS_NO_SIGN_REQUEST is set\): unset it"), \
            materialize_source("s3://tea/survey", tmp_path):
        pass


_EXTRACT_ON_A_SMALL_DISK = """
import resource, signal, sys
from pathlib import Path
from components.ingest import ingest_source
from components.raster import DataError
# Files past 100 kB fail to write with EFBIG, as they would with ENOSPC on a full disk.
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, resource.RLIM_INFINITY))
try:
    ingest_source(sys.argv[1], Path(sys.argv[2]))
except DataError as err:
    print(err)
"""


@pytest.mark.parametrize("kind", ["zip", "tar.gz"])
def test_a_write_failure_is_told_from_a_damaged_archive(tmp_path, kind):
    """Our disk refusing a member's data is a write failure naming where it was going, not
    "cannot read archive": the archive is fine and the fix is disk space."""
    archive = tmp_path / f"survey.{kind}"
    payload = np.random.default_rng(0).bytes(300_000)  # past the limit, incompressible
    if kind == "zip":
        with zipfile.ZipFile(archive, "w") as zf:
            zf.writestr("scenes/a_image.tif", payload)
    else:
        with tarfile.open(archive, "w:gz") as tf:
            info = tarfile.TarInfo("scenes/a_image.tif")
            info.size = len(payload)
            tf.addfile(info, io.BytesIO(payload))
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, "-c", _EXTRACT_ON_A_SMALL_DISK, str(archive),
                          str(out)], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    message = run.stdout.strip()
    assert run.returncode == 0 and message, run.stderr
    assert "cannot read archive" not in message and "damaged" not in message
    assert message.startswith(str(out)) and "a_image.tif: write failure extracting member " \
        f"'scenes/a_image.tif' of {archive} (File too large)" in message

"""S3 scenes (`segpipe predict s3://...`) checked and read through moto's standalone server
over HTTP (tests/conftest.py's fixtures): what GDAL reads with the environment's keys and
endpoint, and each refusal in one message naming the URI."""

from __future__ import annotations

import io

import boto3
import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from components.raster import DataError
from components.s3_scenes import S3AccessError, check_s3_scene, s3_gdal_env, s3_object

#: A secret no message may show.
SECRET = "s3cr3t-not-for-printing"


def _check(uri: str) -> str:
    return check_s3_scene(s3_object(uri))


def _raster_bytes(driver: str, count: int = 2, size: int = 24) -> bytes:
    pixels = np.arange(count * size * size, dtype="uint8").reshape(count, size, size)
    with rasterio.MemoryFile() as memory:
        with memory.open(driver=driver, width=size, height=size, count=count, dtype="uint8",
                         crs="EPSG:32644", transform=from_origin(600000, 2700000, 1, 1)) as dst:
            dst.write(pixels)
        return memory.read()


@pytest.fixture
def bucket(moto_endpoint):
    """Bucket 'tea' with a GeoTIFF, a public PNG, a GIF, a VRT named .tif, a text and an empty
    file."""
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="tea")
    vrt = (b'<VRTDataset rasterXSize="24" rasterYSize="24"><VRTRasterBand dataType="Byte" '
           b'band="1"><SimpleSource><SourceFilename>/etc/hostname</SourceFilename>'
           b'</SimpleSource></VRTRasterBand></VRTDataset>')
    for key, body in (("scenes/a.tif", _raster_bytes("GTiff")),
                      ("scenes/b.png", _raster_bytes("PNG")),
                      ("scenes/c.gif", _raster_bytes("GIF", count=1)),
                      ("scenes/mosaic.tif", vrt), ("scenes/notes.tif", b"meeting notes"),
                      ("scenes/empty.tif", b"")):
        s3.put_object(Bucket="tea", Key=key, Body=body)
    s3.put_object_acl(Bucket="tea", Key="scenes/b.png", ACL="public-read")
    return "tea"


def test_a_scene_is_read_through_gdal_with_the_environments_keys_and_endpoint(bucket):
    assert _check("s3://tea/scenes/a.tif") == "GTiff"
    assert _check("s3://tea/scenes/b.png") == "PNG"
    with s3_gdal_env(), rasterio.open(s3_object("s3://tea/scenes/a.tif"), driver="GTiff") as src:
        window = src.read(window=((20, 24), (0, 24)))
        assert (src.count, src.crs.to_epsg()) == (2, 32644)
    np.testing.assert_array_equal(window, np.arange(2 * 24 * 24, dtype="uint8")
                                  .reshape(2, 24, 24)[:, 20:])


@pytest.mark.parametrize("uri, problem", [
    ("s3://tea/scenes/missing.tif", "s3://tea/scenes/missing.tif: no such object"),
    ("s3://tea/scenes", "s3://tea/scenes: no such object, but a prefix of objects; give one "
                        "scene object (s3://tea/scenes/scene.tif), or the prefix with a final "
                        "/ for all of them (s3://tea/scenes/)"),
    ("s3://tea/scenes/", "s3://tea/scenes/: names a prefix, not an object; give one scene "
                         "object (s3://tea/scenes/scene.tif)"),
    ("s3://nothere/a.tif", "s3://nothere/a.tif: no such bucket 'nothere'"),
    ("s3://tea/scenes/empty.tif", "s3://tea/scenes/empty.tif: an empty object, not a raster"),
    ("s3://tea/scenes/mosaic.tif", "s3://tea/scenes/mosaic.tif: a GDAL VRT is not read from "
                                   "S3 (it names other files to read); gdal_translate it to a "
                                   "GeoTIFF"),
    ("s3://tea/scenes/notes.tif", "s3://tea/scenes/notes.tif: cannot read as a raster ("),
    # GDAL reads GIF, but a source may not hold it (components/raster.py DATA_DRIVERS)
    ("s3://tea/scenes/c.gif", "s3://tea/scenes/c.gif: cannot read as a raster ("),
])
def test_what_is_not_a_scene_is_refused_naming_the_uri(bucket, uri, problem):
    with pytest.raises(DataError) as caught:
        _check(uri)
    assert not isinstance(caught.value, S3AccessError)
    assert str(caught.value).startswith(problem), str(caught.value)


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_endpoint_that_does_not_answer_is_named_without_its_password(monkeypatch):
    port = _closed_port()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://alice:{SECRET}@127.0.0.1:{port}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    with pytest.raises(S3AccessError, match=rf"^s3://tea/a\.tif: the S3 endpoint does not "
                                            rf"answer \(.*alice:\*\*\*@127\.0\.0\.1:{port}"):
        _check("s3://tea/a.tif")


def _without_credentials(monkeypatch, tmp_path) -> None:
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                     "AWS_PROFILE", "AWS_NO_SIGN_REQUEST"):
        monkeypatch.delenv(variable, raising=False)
    # nor a developer's ~/.aws, nor the instance metadata service (a second of timeouts)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def test_no_credentials_is_named_and_a_public_bucket_reads_unsigned(bucket, monkeypatch,
                                                                     tmp_path):
    _without_credentials(monkeypatch, tmp_path)
    with pytest.raises(S3AccessError, match=r"^s3://tea/scenes/a\.tif: no AWS credentials: "
                                            r"set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"):
        _check("s3://tea/scenes/a.tif")
    monkeypatch.setenv("AWS_NO_SIGN_REQUEST", "YES")  # as GDAL takes it: boto3 too
    assert _check("s3://tea/scenes/b.png") == "PNG"  # public-read
    with pytest.raises(S3AccessError, match=r"^s3://tea/scenes/a\.tif: access denied \(.*\) to "
                                            r"a request without credentials"):
        _check("s3://tea/scenes/a.tif")


def test_refused_keys_are_access_denied_not_a_missing_object(moto_endpoint_checking_keys,
                                                             monkeypatch):
    s3 = boto3.client("s3")  # the server's unchecked requests: a bucket and a scene
    s3.create_bucket(Bucket="tea")
    s3.upload_fileobj(io.BytesIO(_raster_bytes("GTiff")), "tea", "scenes/a.tif")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    with pytest.raises(S3AccessError) as caught:
        _check("s3://tea/scenes/a.tif")
    assert str(caught.value) == (
        "s3://tea/scenes/a.tif: access denied (InvalidAccessKeyId): check the credentials "
        "(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_PROFILE) and the object's permissions")


def test_a_hash_in_a_key_is_part_of_the_objects_name(bucket):
    """rasterio reads an s3:// URI as a URL: 'a#1.tif' would open the object 'a'."""
    s3 = boto3.client("s3")
    s3.put_object(Bucket="tea", Key="keys/a#1.tif", Body=_raster_bytes("GTiff", count=3))
    s3.put_object(Bucket="tea", Key="keys/a", Body=_raster_bytes("PNG", count=2))
    scene = s3_object("s3://tea/keys/a#1.tif")
    assert str(scene) == "s3://tea/keys/a#1.tif"  # what messages name
    assert check_s3_scene(scene) == "GTiff"
    with s3_gdal_env(), rasterio.open(scene, driver="GTiff") as src:
        assert src.count == 3


@pytest.mark.parametrize("where", ["AWS_ENDPOINT_URL_S3", "config file"])
def test_gdal_reads_from_the_endpoint_boto3_resolved(bucket, moto_endpoint, monkeypatch,
                                                    tmp_path, where):
    """boto3 also takes its endpoint from $AWS_ENDPOINT_URL_S3 or ~/.aws/config; GDAL,
    given only $AWS_ENDPOINT_URL, read from AWS meanwhile."""
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    if where == "config file":
        (tmp_path / "config").write_text(f"[default]\nendpoint_url = {moto_endpoint}\n")
        monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    else:
        monkeypatch.setenv(where, moto_endpoint)
    scene = s3_object("s3://tea/scenes/a.tif")
    assert check_s3_scene(scene) == "GTiff"
    with s3_gdal_env(), rasterio.open(scene, driver="GTiff") as src:
        assert src.read(1, window=((0, 1), (0, 3))).tolist() == [[0, 1, 2]]


@pytest.mark.parametrize("endpoint, problem", [
    ("127.0.0.1:9000", "AWS_ENDPOINT_URL 127.0.0.1:9000: must be http(s)://host:port, e.g. "
                       "http://127.0.0.1:9000"),
    ("http://[::1", "AWS_ENDPOINT_URL http://[::1: not a URL (Invalid IPv6 URL)"),
    (f"http://alice:{SECRET}@[::1", "AWS_ENDPOINT_URL http://alice:***@[::1: not a URL"),
])
def test_an_endpoint_that_is_not_a_url_is_named(monkeypatch, endpoint, problem):
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    with pytest.raises(S3AccessError) as caught:
        _check("s3://tea/a.tif")
    assert str(caught.value).startswith(f"s3://tea/a.tif: {problem}"), str(caught.value)


def test_a_bucket_name_no_bucket_has_is_refused_naming_the_uri():
    with pytest.raises(DataError, match=r"^s3://Bad_Bucket!/k\.tif: 'Bad_Bucket!' is not an S3 "
                                        r"bucket name"):
        s3_object("s3://Bad_Bucket!/k.tif")

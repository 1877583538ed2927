"""`segpipe predict s3://bucket/key`: a scene on S3 (moto's standalone server over HTTP,
tests/conftest.py) is predicted as the same file on disk is, and what cannot be read is one
line naming the URI before any model loads, never showing the secret key."""

from __future__ import annotations

import json

import boto3
import numpy as np
import pytest
import rasterio
from typer.testing import CliRunner

from pipelines.cli import app
from tests.serving.conftest import BANDS, write_scene
from tests.serving.test_scene import truncate

SECRET = "s3cr3t-not-for-printing"


def _predict(*args: str):
    result = CliRunner().invoke(app, ["predict", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output and SECRET not in result.output, result.output
    return result


@pytest.fixture
def bucket(moto_endpoint, monkeypatch, tmp_path):
    """Bucket 'tea': scenes/a.tif (the scene, also at ``a.tif`` on disk), a 3-band scene, a
    truncated one, a VRT and a text; and scenes/p#1.jp2, the scene as a lossless JPEG 2000
    whose CRS, transform and nodata are in its sidecar p#1.jp2.aux.xml (both also on disk),
    beside an object 'scenes/p' (the 3-band scene): rasterio would read '#1.jp2' as a URL
    fragment. (Not a PNG: a PNG's 4th band is alpha, not a band of a 4-band model.)"""
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="tea")
    scene = write_scene(tmp_path / "a.tif", height=90, width=150, nodata_border=7)
    s3.upload_file(str(scene), "tea", "scenes/a.tif")
    rgb = tmp_path / "rgb.tif"
    with rasterio.open(rgb, "w", driver="GTiff", width=8, height=8, count=BANDS - 1,
                       dtype="uint8") as dst:
        dst.write(np.zeros((BANDS - 1, 8, 8), "uint8"))
    s3.upload_file(str(rgb), "tea", "scenes/rgb.tif")
    half = truncate(write_scene(tmp_path / "half.tif", height=600, width=300))
    s3.upload_file(str(half), "tea", "scenes/half.tif")
    s3.put_object(Bucket="tea", Key="scenes/mosaic.tif",
                  Body=b'<VRTDataset rasterXSize="1" rasterYSize="1"></VRTDataset>')
    s3.put_object(Bucket="tea", Key="scenes/notes.tif", Body=b"meeting notes")
    jp2 = _as_jp2(scene, tmp_path / "p#1.jp2")
    for path in (jp2, jp2.parent / f"{jp2.name}.aux.xml"):
        s3.upload_file(str(path), "tea", f"scenes/{path.name}")
    s3.upload_file(str(rgb), "tea", "scenes/p")
    return scene


def _as_jp2(scene, path):
    """``scene`` as a lossless JPEG 2000 without georeferencing boxes: its georeferencing
    and nodata go to a .aux.xml beside it."""
    with rasterio.open(scene) as src:
        profile, pixels = src.profile, src.read()
    for key in ("tiled", "blockxsize", "blockysize", "compress", "interleave"):
        profile.pop(key, None)
    with rasterio.open(path, "w", **{**profile, "driver": "JP2OpenJPEG"}, GeoJP2="NO",
                       GMLJP2="NO", REVERSIBLE="YES", QUALITY=100) as dst:
        dst.write(pixels)
    return path


@pytest.mark.parametrize("name", ["a.tif", "p#1.jp2"])
def test_an_s3_scene_is_predicted_as_the_same_file_on_disk(bucket, logged_model, tmp_path,
                                                           name):
    model = ["--model-uri", logged_model["local_path"], "--nodata", "0"]
    local = _predict(str(bucket.parent / name), "--out", str(tmp_path / "local" / "m.tif"),
                     "--polygons", str(tmp_path / "local" / "m.geojson"), *model)
    assert local.exit_code == 0, local.output
    out = tmp_path / "remote" / "m.tif"
    remote = _predict(f"s3://tea/scenes/{name}", "--out", str(out), "--polygons",
                      str(out.with_suffix(".geojson")), *model)
    assert remote.exit_code == 0, remote.output
    assert f"wrote {out} (150x90)" in remote.output
    assert sorted(p.name for p in out.parent.iterdir()) == ["m.geojson", "m.tif"]  # no temps
    with rasterio.open(out) as mask, rasterio.open(tmp_path / "local" / "m.tif") as expected:
        assert mask.crs == expected.crs == "EPSG:32644"  # the PNG's from its sidecar
        assert mask.transform == expected.transform
        np.testing.assert_array_equal(mask.read(1), expected.read(1))
        assert (mask.read(1)[:, :7] == 255).all()  # the scene's nodata border
    polygons = [json.loads((tmp_path / where / "m.geojson").read_text())["features"]
                for where in ("local", "remote")]
    assert polygons[0] == polygons[1] and polygons[0]
    # the class lines after "wrote" are the same numbers
    assert local.output.splitlines()[-4:] == remote.output.splitlines()[-4:]


def test_an_s3_scene_through_an_endpoint_equals_the_file_predicted_here(
        moto_endpoint, server, logged_model, tmp_path):
    """The scene's own nodata (65535, not the model's) is read from the object and sent to
    the server, as for a local scene."""
    from tests.serving.test_remote import predict, read_mask, scene_with_hole

    scene = scene_with_hole(tmp_path / "mosaic.tif")
    boto3.client("s3").create_bucket(Bucket="tea")
    boto3.client("s3").upload_file(str(scene), "tea", "mosaics/mosaic.tif")
    local = predict(scene, tmp_path / "local.tif", logged_model)
    remote = predict("s3://tea/mosaics/mosaic.tif", tmp_path / "remote.tif", logged_model,
                     "--endpoint", server.url)
    assert (local.exit_code, remote.exit_code) == (0, 0), remote.output
    np.testing.assert_array_equal(read_mask(tmp_path / "remote.tif"),
                                  read_mask(tmp_path / "local.tif"))
    assert (read_mask(tmp_path / "remote.tif") == 255).sum() == 30 * 25 + 12 * 11


@pytest.mark.parametrize("uri, code, line", [
    ("s3://tea/scenes/missing.tif", 2, "s3://tea/scenes/missing.tif: no such object"),
    ("s3://tea/scenes/mosaic.tif", 2, "s3://tea/scenes/mosaic.tif: a GDAL VRT is not read "
                                      "from S3 (it names other files to read); gdal_translate "
                                      "it to a GeoTIFF"),
    ("s3://tea/scenes/notes.tif", 2, "s3://tea/scenes/notes.tif: cannot read as a raster ("),
    ("s3://Bad_Bucket!/k.tif", 2, "s3://Bad_Bucket!/k.tif: 'Bad_Bucket!' is not an S3 bucket "
                               "name"),
])
def test_what_is_not_a_scene_is_one_line_before_the_model(bucket, tmp_path, uri, code, line):
    result = _predict(uri, "--out", str(tmp_path / "m.tif"),
                      "--model-uri", str(tmp_path / "no-model"))  # a model would fail apart
    assert result.exit_code == code, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {line}"), result.output
    assert not (tmp_path / "m.tif").exists()


@pytest.mark.parametrize("endpoint, line", [
    (f"http://alice:{SECRET}@127.0.0.1:{{port}}", "error: s3://tea/scenes/a.tif: the S3 endpoint "
     "does not answer (Could not connect to the endpoint URL: \"http://alice:***@127.0.0.1:"),
    ("127.0.0.1:{port}", "error: s3://tea/scenes/a.tif: AWS_ENDPOINT_URL 127.0.0.1:"),
    ("http://[::1", "error: s3://tea/scenes/a.tif: AWS_ENDPOINT_URL http://[::1: not a URL"),
])
def test_an_endpoint_that_does_not_answer_or_is_not_a_url_is_one_line(tmp_path, monkeypatch,
                                                                      endpoint, line):
    from tests.serving.server import free_port

    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint.format(port=free_port()))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    result = _predict("s3://tea/scenes/a.tif", "--out", str(tmp_path / "m.tif"),
                      "--model-uri", str(tmp_path / "no-model"))
    assert result.exit_code == 1, result.output
    assert result.output.startswith(line), result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


def test_refused_keys_are_one_line(moto_endpoint_checking_keys, tmp_path, monkeypatch):
    s3 = boto3.client("s3")  # the server's unchecked requests: a bucket and a scene
    s3.create_bucket(Bucket="tea")
    s3.upload_file(str(write_scene(tmp_path / "a.tif", 16, 16)), "tea", "scenes/a.tif")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    result = _predict("s3://tea/scenes/a.tif", "--out", str(tmp_path / "m.tif"),
                      "--model-uri", str(tmp_path / "no-model"))
    assert result.exit_code == 1, result.output
    assert result.output.strip().splitlines() == [
        "error: s3://tea/scenes/a.tif: access denied (InvalidAccessKeyId): check the "
        "credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_PROFILE) and the object's "
        "permissions"]


@pytest.mark.parametrize("key, flags, problem", [
    ("rgb.tif", [], "s3://tea/scenes/rgb.tif:wrongbandcount:3bands,themodelexpects4"),
    ("half.tif", [], "s3://tea/scenes/half.tif:cannotreadpixels(truncatedorcorruptdata?)"),
    ("a.tif", ["--max-pixels", "1000"], "s3://tea/scenes/a.tif:toomanypixels:"),
])
def test_a_local_scenes_checks_hold_for_an_s3_scene(bucket, logged_model, tmp_path, key,
                                                    flags, problem):
    result = _predict(f"s3://tea/scenes/{key}", "--out", str(tmp_path / "m.tif"),
                      "--model-uri", logged_model["local_path"], *flags)
    assert result.exit_code == 2, result.output
    assert problem in "".join(result.output.replace("│", "").split())  # rich's box
    assert not (tmp_path / "m.tif").exists()


def test_s3_refusing_reads_midway_is_an_access_error_not_corrupt_data(
        moto_server, bucket, logged_model, serving_config, tmp_path):
    """Credentials that expire while a scene is read: S3 refuses GDAL's ranged reads, which
    GDAL reports as data it cannot decode. S3 refusing from GDAL's open in the check on, or
    from the first read after the checks on (the windows predicted), ends in S3's refusal
    naming the URI, exit code 1."""
    from pipelines.cli.scenes import check_scene_source
    from serving.scene import check_scene
    from tests.serving.conftest import LOGGED_GSD

    s3 = boto3.client("s3")
    # Eight blocks in a row: the checks read four (nine samples in three columns, the last
    # pixel), the prediction the others.
    scene = write_scene(tmp_path / "scene.tif", height=256, width=2048)

    def upload(key: str, answered: float = float("inf")) -> str:
        moto_server.check_keys_after(float("inf"))
        s3.upload_file(str(scene), "tea", key)  # a key each: GDAL keeps what it read by URL
        moto_server.check_keys_after(answered)
        return f"s3://tea/{key}"

    def refusal(uri: str) -> str:
        return (f"error: {uri}: access denied (InvalidAccessKeyId): check the credentials "
                "(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_PROFILE) and the object's "
                "permissions")

    uri = upload("expiring/checked.tif")
    before = len(moto_server.request_paths())
    checked = check_scene_source(uri)  # what predict asks S3 before it predicts
    with checked.env():
        check_scene(checked.path, serving_config.model_copy(update={"gsd": LOGGED_GSD}),
                    driver=checked.driver)
    in_checks = len(moto_server.request_paths()) - before
    uri = upload("expiring/open.tif", answered=1)  # the check's GET, not GDAL's open
    result = _predict(uri, "--out", str(tmp_path / "m.tif"), "--model-uri", "no-model")
    assert result.exit_code == 1, result.output
    assert result.output.strip().splitlines() == [refusal(uri)]
    uri = upload("expiring/read.tif", answered=in_checks)
    result = _predict(uri, "--out", str(tmp_path / "m.tif"),
                      "--model-uri", logged_model["local_path"])
    assert result.exit_code == 1, result.output
    *lines, last = result.output.strip().splitlines()
    assert last == refusal(uri), result.output
    assert any("resampled" in line for line in lines), result.output  # after the checks
    assert not (tmp_path / "m.tif").exists()

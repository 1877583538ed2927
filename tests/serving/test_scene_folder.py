"""`segpipe predict FOLDER --out OUT_DIR` (pipelines/cli/predict_folder.py): one mask per scene
of a folder or an S3 prefix, at its relative path, with one model; a scene that fails is one
line and the others go on; a rerun skips what is written."""

from __future__ import annotations

import boto3
import numpy as np
import pytest
import rasterio
from typer.testing import CliRunner

from pipelines.cli import app
from tests.serving.conftest import write_scene
from tests.serving.test_scene import truncate


def _predict(*args: str):
    result = CliRunner().invoke(app, ["predict", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output, result.output
    return result


def _lines(result, start: str) -> list[str]:
    return [line for line in result.output.splitlines() if line.startswith(start)]


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    """scenes/sub/a.tif and scenes/sub/deeper/b.tif, a.tif's sidecar (a metadata item) and a
    text file."""
    root = tmp_path_factory.mktemp("folder") / "scenes"
    (root / "sub" / "deeper").mkdir(parents=True)
    write_scene(root / "sub" / "a.tif", height=40, width=60, seed=1, nodata_border=5)
    write_scene(root / "sub" / "deeper" / "b.tif", height=30, width=50, seed=2)
    (root / "sub" / "a.tif.aux.xml").write_text(
        '<PAMDataset><Metadata><MDI key="FIELD">north</MDI></Metadata></PAMDataset>')
    (root / "notes.txt").write_text("flown in May")
    return root


@pytest.fixture(scope="module")
def predicted(scenes, logged_model, tmp_path_factory):
    """The folder predicted once into masks/, and that run's output."""
    out = tmp_path_factory.mktemp("predicted") / "masks"
    result = _predict(str(scenes), "--out", str(out), "--model-uri",
                      logged_model["local_path"])
    return out, result


def _masks(out) -> list[str]:
    return sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())


def test_a_folder_gives_a_mask_per_scene_at_its_relative_path(scenes, predicted):
    out, result = predicted
    assert result.exit_code == 0, result.output
    assert _masks(out) == ["sub/a.tif", "sub/deeper/b.tif"]  # no temporary files
    for name in ("sub/a.tif", "sub/deeper/b.tif"):
        with rasterio.open(scenes / name) as scene, rasterio.open(out / name) as mask:
            assert (mask.width, mask.height) == (scene.width, scene.height)
            assert mask.crs == scene.crs and mask.transform == scene.transform
            assert set(np.unique(mask.read(1))) <= {0, 1, 2, 255}
    with rasterio.open(out / "sub/a.tif") as mask:
        assert (mask.read(1)[:, :5] == 255).all()  # the scene's nodata border
    assert f"warning: {scenes}: 1 file that is not a scene left out: notes.txt" \
        in result.output
    assert _lines(result, "wrote") == [
        f"wrote {out / 'sub/a.tif'} (60x40) from {scenes / 'sub/a.tif'}",
        f"wrote {out / 'sub/deeper/b.tif'} (50x30) from {scenes / 'sub/deeper/b.tif'}"]
    assert result.output.splitlines()[-1] == \
        "2 scenes: 2 predicted, 0 skipped (output exists), 0 failed"


def test_the_masks_equal_the_scenes_predicted_one_by_one(scenes, predicted, logged_model,
                                                         tmp_path):
    out, _ = predicted
    one = _predict(str(scenes / "sub/deeper/b.tif"), "--out", str(tmp_path / "b.tif"),
                   "--model-uri", logged_model["local_path"])
    assert one.exit_code == 0, one.output
    with rasterio.open(out / "sub/deeper/b.tif") as batch, \
            rasterio.open(tmp_path / "b.tif") as single:
        np.testing.assert_array_equal(batch.read(1), single.read(1))


def test_a_rerun_skips_the_written_masks_and_redoes_a_missing_one(scenes, predicted,
                                                                  logged_model, tmp_path):
    out, _ = predicted
    copy = tmp_path / "masks"
    copy.mkdir()
    (copy / "sub").mkdir()
    (copy / "sub/a.tif").write_bytes((out / "sub/a.tif").read_bytes())
    written = (copy / "sub/a.tif").stat().st_mtime_ns
    # An interrupted run left b.tif out: only it is predicted.
    resumed = _predict(str(scenes), "--out", str(copy), "--model-uri",
                       logged_model["local_path"])
    assert resumed.exit_code == 0, resumed.output
    assert _lines(resumed, "skipped") == [
        f"skipped {scenes / 'sub/a.tif'}: {copy / 'sub/a.tif'} exists"]
    assert resumed.output.splitlines()[-1] == \
        "2 scenes: 1 predicted, 1 skipped (output exists), 0 failed"
    assert (copy / "sub/a.tif").stat().st_mtime_ns == written
    assert _masks(copy) == ["sub/a.tif", "sub/deeper/b.tif"]
    again = _predict(str(scenes), "--out", str(copy), "--model-uri",
                     logged_model["local_path"])
    assert again.output.splitlines()[-1] == \
        "2 scenes: 0 predicted, 2 skipped (output exists), 0 failed"
    # Masks of another model are not skipped (this one does not exist: it fails to load).
    other = _predict(str(scenes), "--out", str(copy), "--model-uri", str(tmp_path / "none"))
    assert other.exit_code != 0 and not _lines(other, "skipped"), other.output
    # A mask cut short (a copy) is not complete: predicted again, as all are with --overwrite
    (copy / "sub/deeper/b.tif").write_bytes((copy / "sub/deeper/b.tif").read_bytes()[:300])
    redone = _predict(str(scenes), "--out", str(copy), "--model-uri",
                      logged_model["local_path"], "--overwrite")
    assert redone.output.splitlines()[-1] == \
        "2 scenes: 2 predicted, 0 skipped (output exists), 0 failed"
    assert (copy / "sub/a.tif").stat().st_mtime_ns != written


def test_a_rerun_predicts_a_scene_replaced_since_its_mask(logged_model, tmp_path):
    root, out = tmp_path / "scenes", tmp_path / "masks"
    root.mkdir()
    write_scene(root / "a.tif", height=40, width=60, seed=1)
    _predict(str(root), "--out", str(out), "--model-uri", logged_model["local_path"])
    write_scene(root / "a.tif", height=24, width=30, seed=3)  # exported again
    rerun = _predict(str(root), "--out", str(out), "--model-uri", logged_model["local_path"])
    assert rerun.output.splitlines()[-1] == \
        "1 scenes: 1 predicted, 0 skipped (output exists), 0 failed"
    with rasterio.open(out / "a.tif") as mask:
        assert (mask.width, mask.height) == (30, 24)


def test_a_bad_scene_is_one_line_and_the_others_are_written(logged_model, tmp_path):
    """rgb.tif fails the checks (before the model loads), cut.jp2 its prediction (a JPEG
    2000 is decoded only then); good.tif is written, and the command ends with exit code 1."""
    root = tmp_path / "scenes"
    root.mkdir()
    write_scene(root / "good.tif", height=30, width=40)
    with rasterio.open(root / "rgb.tif", "w", driver="GTiff", width=8, height=8, count=3,
                       dtype="uint8") as dst:
        dst.write(np.zeros((3, 8, 8), "uint8"))
    pixels = np.random.default_rng(1).integers(1, 1000, (4, 300, 400)).astype("uint16")
    with rasterio.open(root / "cut.jp2", "w", driver="JP2OpenJPEG", width=400, height=300,
                       count=4, dtype="uint16") as dst:
        dst.write(pixels)
    truncate(root / "cut.jp2")
    out = tmp_path / "masks"
    result = _predict(str(root), "--out", str(out), "--model-uri", logged_model["local_path"])
    assert result.exit_code == 1, result.output
    failed = _lines(result, "failed")
    assert [line.split(": ")[0] for line in failed] == [f"failed {root / 'rgb.tif'}",
                                                       f"failed {root / 'cut.jp2'}"]
    assert "wrong band count: 3 bands, the model expects 4" in failed[0]
    assert "cannot" in failed[1]
    assert _masks(out) == ["good.tif"]
    assert result.output.splitlines()[-1] == \
        "3 scenes: 1 predicted, 0 skipped (output exists), 2 failed"


def test_an_s3_prefix_gives_the_masks_of_its_objects(moto_endpoint, scenes, predicted,
                                                     logged_model, tmp_path):
    out, _ = predicted
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="tea")
    for name in ("sub/a.tif", "sub/deeper/b.tif", "notes.txt"):
        s3.upload_file(str(scenes / name), "tea", f"flight/{name}")
    remote = tmp_path / "remote"
    result = _predict("s3://tea/flight/", "--out", str(remote), "--model-uri",
                      logged_model["local_path"])
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output and "s3://tea/flight/sub/a.tif" in result.output
    assert _masks(remote) == ["sub/a.tif", "sub/deeper/b.tif"]
    for name in _masks(remote):
        with rasterio.open(remote / name) as got, rasterio.open(out / name) as expected:
            assert got.transform == expected.transform and got.crs == expected.crs
            np.testing.assert_array_equal(got.read(1), expected.read(1))
    unlisted = _predict("s3://nothere/", "--out", str(tmp_path / "none"), "--model-uri",
                        logged_model["local_path"])
    assert unlisted.exit_code == 1, unlisted.output
    assert unlisted.output.strip().splitlines() == [
        "error: s3://nothere/: cannot list objects (An error occurred (NoSuchBucket) when "
        "calling the ListObjectsV2 operation: The specified bucket does not exist)"]


@pytest.mark.parametrize("out, flags, line", [
    ("masks.tif", [], "--out {out} names a file, but {root} is a folder of scenes: give the "
                      "folder to write their masks into"),
    ("taken", [], "--out {out} is a file, but {root} is a folder of scenes: give the folder "
                  "to write their masks into"),
    ("scenes/masks", [], "--out {out} is inside the scenes' folder {root}: its masks would be "
                         "read as scenes; give a folder outside it"),
    (".", [], "--out {out} holds the scenes' folder {root}: a mask could be written over a "
              "scene; give a folder outside it"),
    ("masks", ["--max-scenes", "1"], "{root}: holds more than 1 scenes, the most one run "
                                     "predicts (--max-scenes); predict a part of it, or raise "
                                     "--max-scenes"),
    ("masks", ["--polygons", "p.geojson"], "--polygons names one file"),
], ids=["out names a file", "out is a file", "out inside the scenes", "out holds the scenes",
        "too many scenes", "polygons"])
def test_what_cannot_be_done_is_one_line_before_the_model(scenes, tmp_path, out, flags, line):
    (tmp_path / "taken").write_text("a file")
    root = scenes if out not in ("scenes/masks", ".") else tmp_path / "scenes"
    if root != scenes:
        root.mkdir()
        write_scene(tmp_path / "scenes" / "a.tif", height=8, width=8)
    target = tmp_path / out
    result = _predict(str(root), "--out", str(target), "--model-uri",
                      str(tmp_path / "no-model"), *flags)  # a model would fail apart
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert lines[-1].startswith("error: " + line.format(out=target, root=root)), result.output
    assert not any(line.startswith(("wrote", "failed")) for line in lines)
    assert not (tmp_path / "masks").exists()


def test_folder_flags_are_refused_for_one_scene(scenes, tmp_path):
    result = _predict(str(scenes / "sub/a.tif"), "--out", str(tmp_path / "m.tif"),
                      "--overwrite", "--model-uri", str(tmp_path / "no-model"))
    assert result.exit_code == 2, result.output
    assert result.output.strip() == ("error: --overwrite: for a folder or an s3:// prefix of "
                                     "scenes, not one scene")


def test_a_folder_through_an_endpoint_equals_local(server, scenes, predicted, logged_model,
                                                   tmp_path):
    out, _ = predicted
    result = _predict(str(scenes), "--out", str(tmp_path / "remote"), "--model-uri",
                      logged_model["registered"], "--tracking-uri",
                      logged_model["tracking_uri"], "--endpoint", server.url)
    assert result.exit_code == 0, result.output
    for name in ("sub/a.tif", "sub/deeper/b.tif"):
        with rasterio.open(tmp_path / "remote" / name) as got, \
                rasterio.open(out / name) as expected:
            np.testing.assert_array_equal(got.read(1), expected.read(1))


def test_the_progress_bar_leaves_no_empty_lines_on_stdout(scenes, logged_model, tmp_path):
    """Piped, stdout holds the `wrote` lines alone: the bar is drawn on stderr."""
    result = _predict(str(scenes), "--out", str(tmp_path / "masks"), "--model-uri",
                      logged_model["local_path"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "" not in lines and len(_lines(result, "wrote ")) == 2, result.stdout

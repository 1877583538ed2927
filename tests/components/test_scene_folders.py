"""The scenes `segpipe predict` finds under a folder or an S3 prefix: rasters in every
subfolder with their relative output paths, sidecars skipped silently, other files left out
by name, and the count limit checked as the listing goes."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import boto3
import pytest

from components.raster import DataError, SettingError
from components.s3_scenes import S3Object
from components.scene_folders import ListingError, find_scenes


def _touch(root: Path, *names: str) -> Path:
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"")  # discovery goes by name: nothing is read
    return root


def test_a_folder_gives_its_rasters_in_every_subfolder_with_relative_outputs(tmp_path):
    root = _touch(tmp_path, "b.tif", "sub/a.png", "sub/deeper/c.JP2", "sub/a.png.aux.xml",
                  "sub/a.pgw", "b.tif.ovr", "b.tfw", "mosaic.vrt", "notes.txt", "x.json",
                  ".hidden/d.tif", "sub/.a.tif.partial.tif")
    found = find_scenes(root, max_scenes=10)
    assert [(s.source, s.relative, s.output) for s in found.scenes] == [
        (root / "b.tif", PurePosixPath("b.tif"), PurePosixPath("b.tif")),
        (root / "mosaic.vrt", PurePosixPath("mosaic.vrt"), PurePosixPath("mosaic.tif")),
        (root / "sub/a.png", PurePosixPath("sub/a.png"), PurePosixPath("sub/a.tif")),
        (root / "sub/deeper/c.JP2", PurePosixPath("sub/deeper/c.JP2"),
         PurePosixPath("sub/deeper/c.tif"))]
    assert found.left_out == ["notes.txt", "x.json"]  # sidecars and hidden files unnamed


def test_more_scenes_than_the_limit_are_refused_naming_the_setting(tmp_path):
    root = _touch(tmp_path, "a.tif", "b.tif", "c.tif", "notes.txt")
    assert len(find_scenes(root, max_scenes=3).scenes) == 3
    with pytest.raises(SettingError, match="holds more than 2 scenes") as caught:
        find_scenes(root, max_scenes=2)
    assert caught.value.field == "max_scenes"


def test_a_listing_of_files_that_are_not_scenes_is_bounded(tmp_path):
    root = _touch(tmp_path, "a.tif", *(f"n{i:02}.txt" for i in range(25)))
    with pytest.raises(SettingError, match="holds more than 20 files, 10 per scene of "
                                           "max_scenes 2, and the listing stopped there"):
        find_scenes(root, max_scenes=2)


@pytest.mark.parametrize("names, problem", [
    (["notes.txt", "a.tif.aux.xml"], r"no scenes \(a raster file: .*\.tif.*\) in it or its "
                                     r"subfolders"),
    (["sub/a.png", "sub/a.tif"], r"sub/a.png and sub/a.tif would both be predicted into "
                                 r"sub/a.tif; move or rename one"),
    (["A.tif", "a.png"], r"A.tif and a.png would both be predicted into a.tif"),  # macOS
    (["X.TIF", "x.tif/y.tif"], r"X.TIF would be predicted into X.tif, a folder of "
                               r"x.tif/y.tif's output x.tif/y.tif; move or rename one"),
])
def test_a_folder_without_scenes_or_with_two_for_one_output_is_refused(tmp_path, names,
                                                                       problem):
    with pytest.raises(DataError, match=problem):
        find_scenes(_touch(tmp_path, *names), max_scenes=10)


def test_an_s3_prefix_gives_its_raster_objects(moto_endpoint):
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="tea")
    for key in ("scenes/a.tif", "scenes/sub/b.png", "scenes/sub/b.png.aux.xml",
                "scenes/mosaic.vrt", "scenes/readme.md", "other/c.tif", "scenes/up/../x.tif",
                "scenes/empty/"):  # a "folder" marker: not a file left out
        s3.put_object(Bucket="tea", Key=key, Body=b"")
    found = find_scenes("s3://tea/scenes/", max_scenes=10)
    assert [(s.source, str(s.output)) for s in found.scenes] == [
        (S3Object("tea", "scenes/a.tif"), "a.tif"),
        (S3Object("tea", "scenes/sub/b.png"), "sub/b.tif")]
    assert found.left_out == ["mosaic.vrt", "readme.md", "up/../x.tif"]
    assert found.scenes[0].stamp == '0 "d41d8cd98f00b204e9800998ecf8427e"'  # size, ETag
    s3.put_object(Bucket="tea", Key="scenes/a.tif/b.tif", Body=b"")
    with pytest.raises(DataError, match="a.tif would be predicted into a.tif, a folder of "
                                        "a.tif/b.tif's output"):
        find_scenes("s3://tea/scenes/", max_scenes=10)
    with pytest.raises(ListingError, match="s3://nothere/: cannot list objects"):
        find_scenes("s3://nothere/", max_scenes=10)

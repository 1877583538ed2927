"""GDAL VRTs as sources: read when every file they name lies inside the source (a folder or
an archive of it), refused naming the VRT and the file otherwise."""

from __future__ import annotations

import json
import shutil
import zipfile

import pytest

from components.ingest import ingest_source
from components.prepare import PrepareOptions, prepare_dataset
from components.raster import DataError, open_raster
from components.split import SplitOptions
from components.tile import TileOptions
from components.vrt_sources import check_vrt_sources, open_source_raster
from tests.components.conftest import make_image, make_labels, write_pair

SIZE = 64


def write_vrt(path, source: str, relative: bool = True) -> None:
    """A VRT of ``source`` (named as given) with its bands, size, CRS and transform."""
    with open_raster(path.parent / source if relative else source) as src:
        bands = "".join(
            f'<VRTRasterBand dataType="{"Byte" if src.dtypes[0] == "uint8" else "UInt16"}" '
            f'band="{b}"><SimpleSource><SourceFilename relativeToVRT="{int(relative)}">'
            f'{source}</SourceFilename><SourceBand>{b}</SourceBand></SimpleSource>'
            f'</VRTRasterBand>' for b in range(1, src.count + 1))
        transform = ", ".join(str(v) for v in src.transform.to_gdal())
        path.write_text(f'<VRTDataset rasterXSize="{src.width}" rasterYSize="{src.height}">'
                        f'<SRS>{src.crs.to_wkt()}</SRS><GeoTransform>{transform}'
                        f'</GeoTransform>{bands}</VRTDataset>')


def _vrt_source(root, relative: bool = True):
    """root/tea_image.vrt + root/tea_mask.vrt over GeoTIFFs in root/data (which are no
    image/label pair themselves: their names pair with nothing)."""
    image, mask = write_pair(root / "data", "tea", make_image(SIZE),
                             make_labels(SIZE, (0, 1)), image_suffix="_i", mask_suffix="_m")
    for name, tif in (("tea_image.vrt", image), ("tea_mask.vrt", mask)):
        write_vrt(root / name, f"data/{tif.name}" if relative else str(tif), relative)
    return root


def _prepare(source, out):
    return prepare_dataset(source, out, PrepareOptions(
        tile=TileOptions(patch_size=16), split=SplitOptions(strategy="block", block_size=16)))


def test_a_vrt_pair_is_discovered_and_prepared_from_a_folder_and_an_archive(tmp_path):
    source = _vrt_source(tmp_path / "src")
    summary = _prepare(source, tmp_path / "ds")
    assert summary.classes == ["background", "class_1"]
    assert sum(s.tiles for s in summary.splits.values()) == (SIZE // 16) ** 2
    scenes = json.loads((tmp_path / "ds" / "scenes.json").read_text())["scenes"]
    assert [(s["source"], s["label"]) for s in scenes] == [("tea_image.vrt", "tea_mask.vrt")]
    with open_raster(tmp_path / "ds" / "scenes" / "tea_image.tif") as scene, \
            open_raster(source / "data" / "tea_i.tif") as original:
        assert (scene.read() == original.read()).all()
        assert scene.transform == original.transform and scene.crs == original.crs

    archive = tmp_path / "src.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(source.rglob("*")):
            zf.write(path, path.relative_to(tmp_path).as_posix())
    _prepare(archive, tmp_path / "ds_zip")
    stats = [json.loads((tmp_path / d / "stats.json").read_text())["bands"]
             for d in ("ds", "ds_zip")]
    assert stats[0] == stats[1]


def test_a_vrt_reading_a_file_outside_the_source_is_refused_naming_both(tmp_path):
    outside = _vrt_source(tmp_path / "elsewhere", relative=False)
    source = tmp_path / "src"
    source.mkdir()
    for name in ("tea_image.vrt", "tea_mask.vrt"):
        shutil.copy(outside / name, source / name)
    with pytest.raises(DataError, match=r"src/tea_image\.vrt: source \S+elsewhere/data/"
                                        r"tea_i\.tif lies outside the source"):
        ingest_source(source, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_relative_path_climbing_out_or_a_missing_source_is_refused(tmp_path):
    source = _vrt_source(tmp_path / "src")
    (source / "tea_image.vrt").write_text((source / "tea_image.vrt").read_text().replace(
        "data/tea_i.tif", "../../../etc/passwd"))
    with pytest.raises(DataError, match=r"tea_image\.vrt: source \.\./\.\./\.\./etc/passwd "
                                        r"lies outside"):
        ingest_source(source, tmp_path / "out")
    (source / "tea_image.vrt").write_text((source / "tea_image.vrt").read_text().replace(
        "../../../etc/passwd", "data/gone.tif"))
    with pytest.raises(DataError, match=r"tea_image\.vrt: source data/gone\.tif is missing"):
        ingest_source(source, tmp_path / "out")
    (source / "tea_image.vrt").write_text((source / "tea_image.vrt").read_text().replace(
        "data/gone.tif", "/vsicurl/http://example.com/x.tif"))
    with pytest.raises(DataError, match=r"tea_image\.vrt: source '/vsicurl/\S+' is not a "
                                        r"file of the source"):
        ingest_source(source, tmp_path / "out")


def test_vrt_xml_named_tif_pointing_outside_is_refused_naming_it(tmp_path):
    """GDAL takes a file for a VRT by its bytes: a .tif holding VRT XML is checked as one."""
    outside = _vrt_source(tmp_path / "elsewhere", relative=False)
    source = tmp_path / "src"
    write_pair(source / "data", "own", make_image(SIZE), make_labels(SIZE, (0, 1)))
    shutil.copy(outside / "tea_image.vrt", source / "data" / "tea_image.tif")
    shutil.copy(outside / "tea_mask.vrt", source / "data" / "tea_mask.tif")
    with pytest.raises(DataError, match=r"src/data/tea_image\.tif: source \S+elsewhere/data/"
                                        r"tea_i\.tif lies outside the source"):
        ingest_source(source, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_vrt_tags_in_any_case_are_checked(tmp_path):
    """GDAL matches a VRT's element and attribute names in any case."""
    outside = _vrt_source(tmp_path / "elsewhere", relative=False)
    source = tmp_path / "src"
    source.mkdir()
    for name in ("tea_image.vrt", "tea_mask.vrt"):
        text = (outside / name).read_text()
        (source / name).write_text(text.replace("SourceFilename", "sourcefilename"))
    with pytest.raises(DataError, match=r"tea_image\.vrt: source \S+elsewhere/data/tea_i\.tif "
                                        r"lies outside the source"):
        ingest_source(source, tmp_path / "out")
    vrt = source / "tea_image.vrt"
    vrt.write_text(vrt.read_text().replace("<SimpleSource>", "<SimpleSource><pixelfunctioncode>"
                                           "x</pixelfunctioncode>"))
    with pytest.raises(DataError, match=r"tea_image\.vrt: pixel functions in code"):
        check_vrt_sources(vrt, source)


def test_a_vrt_source_of_another_format_or_a_relative_name_as_gdal_reads_it(tmp_path):
    """A VRT's sources are opened by GDAL in any format, some of which name more files or
    URLs (here a WMS description): only the formats steps read are taken. relativeToVRT is
    read as GDAL reads it ("01" is true)."""
    source = _vrt_source(tmp_path / "src")
    vrt = source / "tea_image.vrt"
    text = vrt.read_text()
    vrt.write_text(text.replace('relativeToVRT="1"', 'relativeToVRT="01"'))
    check_vrt_sources(vrt, source)
    (source / "data" / "wms.tif").write_text(
        "<GDAL_WMS><Service name=\"TMS\"><ServerUrl>http://example.com/${z}/${x}/${y}.png"
        "</ServerUrl></Service></GDAL_WMS>")
    vrt.write_text(text.replace("data/tea_i.tif", "data/wms.tif"))
    with pytest.raises(DataError, match=r"tea_image\.vrt: source data/wms\.tif is not a "
                                        r"GeoTIFF, PNG, JPEG, JPEG 2000 or BMP file"):
        check_vrt_sources(vrt, source)
    # a source that is a VRT by its bytes, whatever its name, is checked as one
    write_vrt(source / "data" / "wms.tif", str(source / "data" / "tea_i.tif"), relative=False)
    check_vrt_sources(vrt, source)
    (source / "data" / "wms.tif").write_text((source / "data" / "wms.tif").read_text().replace(
        str(source / "data" / "tea_i.tif"), str(tmp_path / "elsewhere.tif")))
    with pytest.raises(DataError, match=r"data/wms\.tif: source \S+/elsewhere\.tif lies "
                                        r"outside the source"):
        check_vrt_sources(vrt, source)


def test_a_vrt_is_opened_only_through_the_source_check(tmp_path):
    source = _vrt_source(tmp_path / "src")
    with pytest.raises(DataError, match=r"tea_image\.vrt: a GDAL VRT is read only as a file "
                                        r"of a source"), open_raster(source / "tea_image.vrt"):
        pass
    with open_source_raster(source / "tea_image.vrt", source) as src:
        assert src.driver == "VRT" and src.width == SIZE

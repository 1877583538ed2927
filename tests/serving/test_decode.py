"""Uploaded images are opened as GeoTIFF, PNG or JPEG only: GDAL would open a VRT too, an
XML file that names other files of the server to read."""

from __future__ import annotations

import pytest

from serving.decode import RequestError, open_image
from tests.components.test_vrt_sources import write_vrt
from tests.serving.conftest import make_config, write_scene


def test_vrt_bytes_naming_a_file_of_the_server_are_refused(tmp_path):
    secret = write_scene(tmp_path / "server_file.tif", height=40, width=40)
    vrt = tmp_path / "upload.vrt"
    write_vrt(vrt, str(secret), relative=False)
    with pytest.raises(RequestError, match=r"^image 0: a GDAL VRT is not accepted \(it names "
                                           r"files to read on the server\)"), \
            open_image(vrt.read_bytes(), "image 0", make_config()):
        pass


def test_a_geotiff_still_opens(tmp_path):
    scene = write_scene(tmp_path / "scene.tif", height=40, width=30)
    with open_image(scene.read_bytes(), "image 0", make_config()) as dataset:
        assert (dataset.driver, dataset.width, dataset.height) == ("GTiff", 30, 40)

"""A band GDAL reads as alpha (a PNG's RGBA 4th band) or a mask band is a validity mask, never
a band the model reads: transparent pixels are no data on every path that reads user images."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasterio.io import MemoryFile

from pipelines.ui.scenes import inspect_scene
from pipelines.ui.settings import UiError
from serving.decode import RequestError, open_image
from serving.image_bands import ImageBands, image_bands
from serving.predict import ScenePredictor
from serving.scene import SceneError, check_scene, predict_scene
from tests.serving.conftest import bright_model, make_config, rgb_config

SIZE = 48


def rgb_pixels() -> np.ndarray:
    """(3, H, W) uint16 with detail at every scale, never 0."""
    rng = np.random.default_rng(3)
    return rng.integers(1, 1000, (3, SIZE, SIZE)).astype("uint16")


def write_png(path, bands: np.ndarray) -> None:
    with rasterio.open(path, "w", driver="PNG", width=SIZE, height=SIZE, count=len(bands),
                       dtype=bands.dtype.name) as dst:
        dst.write(bands)


def write_plain_tif(path, bands: np.ndarray) -> None:
    with rasterio.open(path, "w", driver="GTiff", width=SIZE, height=SIZE, count=len(bands),
                       dtype=bands.dtype.name) as dst:
        dst.write(bands)


def alpha(transparent: bool) -> np.ndarray:
    values = np.full((1, SIZE, SIZE), 65535, "uint16")
    if transparent:
        values[0, :SIZE // 2, :SIZE // 2] = 0
    return values


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_transparent_pixels_are_no_data_and_alpha_is_no_band(tmp_path, scale):
    """An RGBA PNG is its RGB bands to a 3-band model, its transparent pixels class 255; the
    opaque ones equal the same RGB as a plain GeoTIFF, resampled (scale 0.5) or not."""
    config = rgb_config(scale=scale)
    predictor = ScenePredictor(bright_model, config)
    pixels = rgb_pixels()
    write_png(tmp_path / "rgba.png", np.concatenate([pixels, alpha(True)]))
    write_png(tmp_path / "opaque.png", np.concatenate([pixels, alpha(False)]))
    write_plain_tif(tmp_path / "rgb.tif", pixels)
    masks = {}
    for name in ("rgba.png", "opaque.png", "rgb.tif"):
        predict_scene(predictor, tmp_path / name, tmp_path / f"{name}.mask.tif")
        with rasterio.open(tmp_path / f"{name}.mask.tif") as src:
            masks[name] = src.read(1)
    np.testing.assert_array_equal(masks["opaque.png"], masks["rgb.tif"])
    quarter = masks["rgba.png"][:SIZE // 2, :SIZE // 2]
    assert (quarter == config.ignore_index).all()
    assert (masks["rgba.png"] != config.ignore_index).sum() == SIZE * SIZE * 3 // 4
    if scale == 1.0:  # a per-pixel model: resampled, the kernels leave transparency out
        opaque = masks["rgba.png"] != config.ignore_index
        np.testing.assert_array_equal(masks["rgba.png"][opaque], masks["rgb.tif"][opaque])


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_a_four_band_png_is_three_bands_and_alpha_to_a_four_band_model(tmp_path):
    """Every path that reads a user's image says the 4th band is alpha, not a band."""
    path = tmp_path / "rgbn.png"
    write_png(path, np.concatenate([rgb_pixels(), alpha(True)]))
    config = make_config()  # 4 bands
    with pytest.raises(SceneError, match=r"rgbn.png: wrong band count: 3 bands and an alpha "
                                         r"channel \(band 4.*send a GeoTIFF, the model "
                                         r"expects 4"):
        check_scene(path, config)
    with pytest.raises(RequestError, match=r"image 1 of 1 \(48x48\) has 3 bands and an alpha"), \
            open_image(path.read_bytes(), "image 1 of 1", config):
        pass
    with pytest.raises(UiError, match=r"field.png: wrong band count: 3 bands and an alpha"):
        inspect_scene(path, "field.png", 4, 10_000)


def test_a_four_band_geotiff_keeps_its_four_bands(tmp_path):
    """RGBN GeoTIFFs (the tea chips: int16, colour interpretation undefined) are untouched."""
    path = tmp_path / "rgbn.tif"
    bands = np.concatenate([rgb_pixels(), rgb_pixels()[:1]]).astype("int16")
    with rasterio.open(path, "w", driver="GTiff", width=SIZE, height=SIZE, count=4,
                       dtype="int16", crs="EPSG:32650",
                       transform=rasterio.transform.from_origin(6e5, 3e6, 2, 2)) as dst:
        dst.write(bands)
    with rasterio.open(path) as src:
        assert image_bands(src, 4).indexes == [1, 2, 3, 4] and not image_bands(src, 4).masked
    check_scene(path, make_config())


def test_a_cmyk_jpeg_is_named_as_such(tmp_path):
    from PIL import Image

    path = tmp_path / "print.jpg"
    Image.new("CMYK", (SIZE, SIZE), (10, 20, 30, 40)).save(path)
    with MemoryFile(path.read_bytes()) as memfile, memfile.open() as src:
        assert src.count == 3
    with pytest.raises(SceneError, match=r"3 bands \(a CMYK JPEG: GDAL reads its 4 channels "
                                         r"as 3 RGB bands\), the model expects 4"):
        check_scene(path, make_config())


def test_the_server_answers_transparent_pixels_as_no_data(tmp_path):
    """An uploaded RGBA PNG (the request handler's image route) as the scene above."""
    import base64

    import pandas as pd

    from serving.handler import RequestHandler

    config = rgb_config()
    path = tmp_path / "rgba.png"
    write_png(path, np.concatenate([rgb_pixels(), alpha(True)]))
    handler = RequestHandler(ScenePredictor(bright_model, config))
    answer = handler(pd.DataFrame({"image": [base64.b64encode(path.read_bytes()).decode()]}),
                     None)
    with MemoryFile(base64.b64decode(answer["mask"][0])) as memfile, memfile.open() as mask:
        served = mask.read(1)
    predict_scene(ScenePredictor(bright_model, config), path, tmp_path / "mask.tif")
    with rasterio.open(tmp_path / "mask.tif") as src:
        np.testing.assert_array_equal(served, src.read(1))
    assert (served[:SIZE // 2, :SIZE // 2] == config.ignore_index).all()


def test_a_geotiff_alpha_tag_is_a_band_unless_the_model_counts_it_out(tmp_path):
    """GDAL tags the 4th band of every 8-bit 4-band GeoTIFF alpha (RGB + near infrared too),
    and training reads it as data: a 4-band model keeps it; a 3-band one reads RGB with the
    alpha as transparency."""
    path = tmp_path / "rgbn8.tif"
    bands = np.concatenate([rgb_pixels() // 4, alpha(True) // 257]).astype("uint8")
    with rasterio.open(path, "w", driver="GTiff", width=SIZE, height=SIZE, count=4,
                       dtype="uint8", crs="EPSG:32650",
                       transform=rasterio.transform.from_origin(6e5, 3e6, 2, 2)) as dst:
        dst.write(bands)
    with rasterio.open(path) as src:
        assert src.colorinterp[3] == rasterio.enums.ColorInterp.alpha
        assert image_bands(src, 4) == ImageBands([1, 2, 3, 4], [], False)
        assert image_bands(src, 3) == ImageBands([1, 2, 3], [4], True)
    notes = check_scene(path, make_config()).warnings
    assert notes[0].startswith(f"{path}: band 4 is tagged alpha: read as a band, as in "
                               f"training (the model has 4 bands); if it is transparency")


def serve(config, path) -> tuple[np.ndarray, list[str]]:
    """The mask and warnings the request handler's image route answers for ``path``."""
    import base64

    import pandas as pd

    from serving.handler import RequestHandler

    handler = RequestHandler(ScenePredictor(bright_model, config))
    answer = handler(pd.DataFrame({"image": [base64.b64encode(path.read_bytes()).decode()]}),
                     None)
    with MemoryFile(base64.b64decode(answer["mask"][0])) as memfile, memfile.open() as mask:
        served = mask.read(1)
    return served, list(answer["warnings"][0]) if "warnings" in answer else []


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_a_geotiff_alpha_tag_read_as_transparency_is_said_on_every_path(tmp_path):
    """RGB + near infrared in 8 bits to a 3-band model: band 4 (tagged alpha by GDAL) is read
    as transparency, and the CLI's notes, the server's warnings and the page say so."""
    path = tmp_path / "rgbn8.tif"
    bands = np.concatenate([rgb_pixels() // 4, alpha(True) // 257]).astype("uint8")
    with rasterio.open(path, "w", driver="GTiff", width=SIZE, height=SIZE, count=4,
                       dtype="uint8") as dst:
        dst.write(bands)
    config = rgb_config()
    said = "band 4 is tagged alpha: read as transparency, its 0 pixels no data (the model has 3"
    assert said in check_scene(path, config).warnings[0]
    served, warnings = serve(config, path)
    assert any(said in w and w.startswith("image 1 of 1") for w in warnings)
    assert (served[:SIZE // 2, :SIZE // 2] == config.ignore_index).all()
    info = inspect_scene(path, "field.tif", 3, 10_000)
    assert info.describe().startswith("48×48 px, 3 bands and band 4 read as transparency,")


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_a_png_transparent_colour_is_one_colour_key_on_every_path(tmp_path):
    """A tRNS colour marks pixels whose every band matches it, not those where one band does:
    the scene (CLI and page), the server and ingest's reading agree."""
    from PIL import Image

    colours = np.moveaxis(rgb_pixels() // 4, 0, -1).astype("uint8") + 40
    colours[:8, :8] = (10, 20, 30)
    colours[20] = (10, 0, 0)  # only red matches the key
    colours[30] = (10, 10, 10)  # every band holds the key's first value
    path = tmp_path / "keyed.png"
    Image.fromarray(colours).save(path, transparency=(10, 20, 30))
    config = rgb_config()
    predict_scene(ScenePredictor(bright_model, config), path, tmp_path / "mask.tif")
    with rasterio.open(tmp_path / "mask.tif") as src:
        local = src.read(1)
    keyed = np.zeros((SIZE, SIZE), bool)
    keyed[:8, :8] = True
    np.testing.assert_array_equal(local == config.ignore_index, keyed)
    served, _ = serve(config, path)
    np.testing.assert_array_equal(served, local)

import numpy as np

from segmodels import build_model, normalize_image


def test_unet_outputs_class_probabilities():
    model = build_model("unet", num_classes=3, in_channels=4, depth=3, filters=4)
    out = model.predict(np.zeros((1, 32, 32, 4), "float32"), verbose=0)
    assert out.shape == (1, 32, 32, 3)
    np.testing.assert_allclose(out.sum(-1), 1.0, rtol=1e-5)


def test_normalize_zeroes_nodata():
    img = np.array([[[10.0, 20.0], [0.0, 0.0]]], dtype=np.float32)  # 1x2x2
    out = normalize_image(img, mean=[10, 20], std=[1, 2], nodata=0)
    np.testing.assert_array_equal(out, [[[0.0, 0.0], [0.0, 0.0]]])


def test_data_plane_and_serving_agree_on_invalid_pixels():
    from components.raster import invalid_pixels as data_plane_rule
    from segmodels.preprocessing import invalid_pixels as serving_rule

    rng = np.random.default_rng(0)
    bands = rng.integers(0, 3, (3, 16, 16)).astype("float32")  # many all-zero pixels
    bands[1, 2, 3] = np.nan
    for nodata in (0.0, None, float("nan")):
        expected = serving_rule(np.moveaxis(bands, 0, -1), nodata)
        np.testing.assert_array_equal(data_plane_rule(bands, nodata), expected)
    assert serving_rule(np.moveaxis(bands, 0, -1), 0.0).sum() > 1

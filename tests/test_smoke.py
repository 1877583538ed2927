import numpy as np

from segmodels import build_model
from serving.pixels import normalize_image


def test_unet_outputs_class_probabilities():
    model = build_model("unet", num_classes=3, in_channels=4, depth=3, filters=4)
    out = model.predict(np.zeros((1, 32, 32, 4), "float32"), verbose=0)
    assert out.shape == (1, 32, 32, 3)
    np.testing.assert_allclose(out.sum(-1), 1.0, rtol=1e-5)


def test_normalize_zeroes_nodata():
    img = np.array([[[10.0, 20.0], [0.0, 0.0]]], dtype=np.float32)  # 1x2x2
    out = normalize_image(img, mean=[10, 20], std=[1, 2], nodata=0)
    np.testing.assert_array_equal(out, [[[0.0, 0.0], [0.0, 0.0]]])


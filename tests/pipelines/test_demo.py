"""`segpipe demo`'s extras: sample data once, a ready scoring request, the next commands."""

from __future__ import annotations

import json

import numpy as np
import rasterio

from pipelines.demo import REQUEST_FILE, SAMPLE_DIR, next_commands, prepare_demo
from pipelines.local_run import LocalRunResult


def test_prepare_demo_generates_once_and_writes_a_request(tmp_path):
    source = prepare_demo(tmp_path, scenes=2, size=64)
    assert source == tmp_path / SAMPLE_DIR
    images = sorted(source.glob("*_image.tif"))
    assert len(images) == 2 and (source / "classes.json").exists()
    stamp = images[0].stat().st_mtime_ns
    prepare_demo(tmp_path, scenes=2, size=64)
    assert images[0].stat().st_mtime_ns == stamp  # kept: cached data steps stay valid

    request = json.loads((tmp_path / REQUEST_FILE).read_text())
    pixels = np.array(request["inputs"])
    with rasterio.open(images[0]) as src:
        assert pixels.shape == (1, 64, 64, src.count)
        np.testing.assert_allclose(pixels[0], np.moveaxis(src.read(), 0, -1))


def test_next_commands_point_at_this_run(tmp_path):
    result = LocalRunResult(test_miou=0.5, model_version="3", champion_version="3",
                            mlflow_run_id="abc", run_name="run-1", kfp_run_name="k-1",
                            tracking_uri=f"sqlite:///{tmp_path}/mlflow.db", model_name="segpipe",
                            log_path=tmp_path / "log", seconds=1.0, resumed=False)
    lines = next_commands(result, tmp_path)
    text = "\n".join(lines)
    assert f"mlflow ui --backend-store-uri sqlite:///{tmp_path}/mlflow.db" in text
    assert "segpipe serve" in text and "models:/segpipe@champion" in text
    assert f"-d @{tmp_path / REQUEST_FILE}" in text
    assert "segpipe predict" in text and "curl" in text
    assert all(isinstance(line, str) and line for line in lines)

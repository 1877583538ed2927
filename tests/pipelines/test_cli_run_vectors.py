"""`segpipe run` refuses unusable vector labels before the pipeline starts: the layer and
class attribute are read from the file's header, in the checks run makes on a local source."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyogrio
import shapely
from rasterio.transform import from_origin

from components.raster import write_array
from tests.components.conftest import UTM, make_image
from tests.tiny_run import tiny_run_config

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_run_refuses_a_missing_class_attribute_before_the_pipeline(tmp_path):
    data = tmp_path / "data"
    for i in range(3):
        write_array(data / "scenes" / f"s{i}.tif", make_image(32, seed=i), UTM,
                    from_origin(600000.0 + 64 * i, 3000000.0, 2.0, 2.0))
    pyogrio.raw.write(data / "labels.gpkg",
                      shapely.to_wkb(np.array([shapely.box(600010, 2999950, 600150, 2999990)])),
                      field_data=[np.array(["tea"], dtype=object)], fields=["landuse"],
                      crs=UTM, geometry_type="Polygon")
    (tmp_path / "run.yaml").write_text(tiny_run_config(
        source="data", workdir="work",
        data={"ingest": {"palette": "auto", "vector_labels": "labels.gpkg"}}))
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run([sys.executable, "-m", "pipelines.cli", "run", "--config", "run.yaml"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
    assert done.stderr.strip() == (
        f"error: run.yaml: source: {data / 'labels.gpkg'}: no class attribute 'class'; its "
        "fields are landuse: set data.ingest.class_attribute to the field that holds the "
        "class, or data.ingest.vector_class to a class name if every polygon is of one class "
        "(building footprints)")
    assert not (tmp_path / "work" / "mlflow.db").exists()
    # A second layer: the field to set is named as the config file spells it.
    pyogrio.raw.write(data / "labels.gpkg",
                      shapely.to_wkb(np.array([shapely.box(600010, 2999950, 600150, 2999990)])),
                      field_data=[np.array(["tea"], dtype=object)], fields=["class"],
                      crs=UTM, geometry_type="Polygon", layer="tea", append=True)
    done = subprocess.run([sys.executable, "-m", "pipelines.cli", "run", "--config", "run.yaml"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
    assert done.stderr.strip().endswith(
        "labels.gpkg: 2 layers (labels, tea); set data.ingest.vector_layer to the one holding "
        "the labels")

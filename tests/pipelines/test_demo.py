"""`segpipe demo`'s extras: sample data once, a ready scoring request, the next commands."""

from __future__ import annotations

import json

import numpy as np
import rasterio

from pipelines.demo import (
    REQUEST_FILE,
    SAMPLE_DIR,
    next_commands,
    prepare_demo,
    served_model_uri,
)


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


def test_next_commands_name_everything_they_need(tmp_path):
    import sys
    from pathlib import Path

    store = f"sqlite:///{tmp_path}/mlflow.db?timeout=60"
    commands = next_commands(store, "segpipe", tmp_path, scene=tmp_path / "s" / "a_image.tif")
    text = "\n".join(command for command, _ in commands)
    bin_dir = Path(sys.executable).parent
    assert f"{bin_dir / 'mlflow'} ui --backend-store-uri '{store}'" in text
    for verb in ("serve", "predict", "ui"):
        line = next(c for c, _ in commands if f"segpipe {verb} " in c)
        assert line.startswith(str(bin_dir / "segpipe")) and f"--tracking-uri '{store}'" in line
    assert f"-d @{tmp_path / REQUEST_FILE}" in text
    holding = [what for _, what in commands if "holds its terminal" in what]
    assert len(holding) == 3  # mlflow ui, serve and the web app
    assert "--model-uri models:/segpipe@champion " in text


def test_next_commands_name_the_variable_not_a_store_password(tmp_path):
    """A demo logging to $MLFLOW_TRACKING_URI with a password prints commands that read it
    from that variable."""
    store = "http://segpipe:s3cret@mlflow.example:5000"
    commands = next_commands(store, "segpipe", tmp_path, scene=tmp_path / "a_image.tif")
    text = "\n".join(command for command, _ in commands)
    assert "s3cret" not in text
    for verb in ("serve", "predict", "ui"):
        line = next(c for c, _ in commands if f"segpipe {verb} " in c)
        assert '--tracking-uri "$MLFLOW_TRACKING_URI"' in line


def test_without_a_champion_the_next_commands_use_the_registered_version():
    """A gate that promoted nothing leaves models:/<name>@champion unresolvable: serve and
    predict name the registered version instead."""
    from pathlib import Path

    assert served_model_uri("segpipe", "3", "2") == "models:/segpipe@champion"
    uri = served_model_uri("segpipe", "3", "none")
    assert uri == "models:/segpipe/3"
    commands = next_commands("sqlite:///m.db", "segpipe", Path("w"), Path("s.tif"), uri)
    for verb in ("serve", "predict"):
        line = next(c for c, _ in commands if f"segpipe {verb} " in c)
        assert "--model-uri models:/segpipe/3 " in line and "@champion" not in line


def test_demo_refuses_an_unusable_workdir_before_writing_anything(tmp_path):
    """The workdir is locked (and so created) before the sample data is generated: a workdir
    under a file is one line naming --workdir, exit 2, and nothing is written."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    repo_root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-m", "pipelines.cli", "demo", "--workdir",
                           str(blocker / "work")], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(repo_root)}, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip() == \
        f"error: --workdir: cannot use {blocker / 'work'}: Not a directory"
    assert "generating" not in done.stdout and sorted(os.listdir(tmp_path)) == ["a-file"]

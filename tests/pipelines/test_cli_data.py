"""The sample-data and prepare commands, end to end through typer."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from components.artifacts import SplitManifest
from pipelines.cli import app


def test_sample_data_then_prepare(tmp_path):
    runner = CliRunner()
    data = tmp_path / "data"
    result = runner.invoke(app, ["sample-data", str(data), "--scenes", "3", "--size", "48",
                                 "--seed", "2"])
    assert result.exit_code == 0, result.output
    assert len(list(data.glob("*_image.tif"))) == 3
    out = tmp_path / "ds"
    result = runner.invoke(app, ["prepare", str(data), str(out), "--patch-size", "16",
                                 "--overlap", "0.5", "--split", "block", "--block-size", "32",
                                 "--ratios", "0.6,0.2,0.2", "--seed", "1"])
    assert result.exit_code == 0, result.output
    assert "train" in result.output and "building" in result.output
    split = SplitManifest.load(out / "split.json")
    assert split.strategy == "block" and split.ratios == (0.6, 0.2, 0.2)
    assert json.loads((out / "tiles.json").read_text())["stride"] == 8


def test_prepare_reports_bad_input_without_traceback(tmp_path):
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(app, ["prepare", str(tmp_path / "empty"), str(tmp_path / "o")])
    assert result.exit_code == 1
    assert "source is empty" in result.output
    assert not (tmp_path / "o").exists()

"""The sample-data and prepare commands, end to end through typer."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
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
                                 "--stride", "8", "--strategy", "block", "--block-size", "32",
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


def test_prepare_maps_values_and_names_from_options(tmp_path):
    import numpy as np
    from rasterio.transform import from_origin

    from components.artifacts import ClassMap
    from components.raster import write_array

    rng = np.random.default_rng(0)
    for i in range(3):
        transform = from_origin(600000.0 + 64 * i, 3000000.0, 2.0, 2.0)
        write_array(tmp_path / "src" / "images" / f"c{i}.tif",
                    rng.integers(1, 900, (3, 32, 32)).astype("int16"), "EPSG:32650", transform)
        labels = np.zeros((32, 32), np.uint8)
        labels[:, 20:] = 255
        labels[:4] = 9
        write_array(tmp_path / "src" / "labels" / f"c{i}.tif", labels, "EPSG:32650", transform)
    out = tmp_path / "ds"
    result = CliRunner().invoke(app, [
        "prepare", str(tmp_path / "src"), str(out), "--patch-size", "16",
        "--class-values", "{0: 0, 255: 1}", "--ignore-values", "9",
        "--class-names", "background,tea"])
    assert result.exit_code == 0, result.output
    assert ClassMap.load(out / "classes.json").names == ["background", "tea"]
    assert "tea" in result.output


def test_prepare_reads_the_data_section_of_a_config_and_flags_override_it(tmp_path):
    from components.artifacts import TileManifest

    runner = CliRunner()
    data = tmp_path / "data"
    assert runner.invoke(app, ["sample-data", str(data), "--scenes", "3", "--size", "48"]
                         ).exit_code == 0
    config = tmp_path / "run.yaml"
    config.write_text("source: elsewhere\ndata:\n  tile: {patch_size: 16, stride: 8}\n"
                      "  split: {strategy: scene, seed: 3}\n")
    out = tmp_path / "ds"
    result = runner.invoke(app, ["prepare", str(data), str(out), "--config", str(config),
                                 "--stride", "16"])
    assert result.exit_code == 0, result.output
    manifest = TileManifest.load(out / "tiles.json")
    assert (manifest.patch_size, manifest.stride) == (16, 16)
    assert SplitManifest.load(out / "split.json").seed == 3


def test_an_option_error_says_invalid_options_once(tmp_path):
    """The line reads "invalid options: data.tile: ...", not "invalid options: options: ...";
    with a config file, it names the file the other values came from."""
    (tmp_path / "src").mkdir()
    result = CliRunner().invoke(app, ["prepare", str(tmp_path / "src"), str(tmp_path / "o"),
                                      "--stride", "192", "--patch-size", "64"])
    assert result.exit_code == 2
    assert result.output.splitlines() == [
        "invalid options: data.tile: stride 192 > patch_size 64 would skip pixels"]
    config = tmp_path / "my.yaml"
    config.write_text("data:\n  tile:\n    patch_size: 64\n")
    result = CliRunner().invoke(app, ["prepare", str(tmp_path / "src"), str(tmp_path / "o"),
                                      "--config", str(config), "--stride", "192"])
    assert result.exit_code == 2
    assert result.output.splitlines() == [
        f"invalid options: {config} + options: data.tile: stride 192 > patch_size 64 would "
        "skip pixels"]


def test_bad_option_values_are_refused_before_any_work_naming_the_flag(tmp_path):
    (tmp_path / "src").mkdir()
    result = CliRunner().invoke(app, ["prepare", str(tmp_path / "src"), str(tmp_path / "o"),
                                      "--patch-size", "4", "--ratios", "0.5,0.5,0.5"])
    assert result.exit_code == 2
    assert "data.tile.patch_size: Input should be greater than or equal to 8 (--patch-size)" \
        in result.output
    assert "data.split.ratios" in result.output and "(--ratios)" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "o").exists()


def test_summary_fits_80_columns_with_many_long_class_names():
    from rich.console import Console

    from components.prepare import PrepareSummary, SplitSummary
    from pipelines.cli.data import _print_summary

    classes = [f"a rather long class name number {i}" for i in range(12)]
    splits = {name: SplitSummary(scenes=3, tiles=40, class_shares={c: 1 / 12 for c in classes})
              for name in ("train", "val", "test")}
    console = Console(width=80, record=True, file=io.StringIO())
    # A short path: the dataset line is never cut, and pytest's tmp_path grows with its count.
    _print_summary(console, PrepareSummary(dataset_dir="datasets/tea", classes=classes,
                                           bands=4, splits=splits))
    lines = console.export_text().splitlines()
    assert max(len(line) for line in lines) <= 80
    assert sum("8.3%" in line for line in lines) == 12


def test_palette_auto_with_a_classes_file_means_the_same_in_a_config_and_on_the_cli(tmp_path):
    """The same ingest options reach ingest_source the same way from `segpipe prepare`'s
    flags and from a pipeline config (as the Kubeflow ingest task validates them)."""
    from components.artifacts import ClassMap
    from components.ingest import ingest_source
    from components.ingest_options import IngestOptions
    from components.sample_data import generate_sample_dataset
    from pipelines.config import load_config
    from pipelines.step_options import step_options

    source = generate_sample_dataset(tmp_path / "data", scenes=3, size=48, seed=4)
    classes_file = tmp_path / "elsewhere" / "classes.json"
    classes_file.parent.mkdir()
    classes_file.write_bytes((source / "classes.json").read_bytes())
    (source / "classes.json").unlink()  # only the named file can give the names

    result = CliRunner().invoke(app, ["prepare", str(source), str(tmp_path / "cli"),
                                      "--patch-size", "16", "--palette", "auto",
                                      "--classes-file", str(classes_file)])
    assert result.exit_code == 0, result.output
    (tmp_path / "run.yaml").write_text(
        f"source: data\ndata:\n  ingest: {{palette: auto, classes_file: {classes_file}}}\n")
    section = load_config(tmp_path / "run.yaml").data.ingest.model_dump(
        mode="json", exclude_none=True)
    ingest_source(str(source), tmp_path / "kfp", step_options(IngestOptions, section))
    from_cli = ClassMap.load(tmp_path / "cli" / "classes.json")
    from_config = ClassMap.load(tmp_path / "kfp" / "classes.json")
    assert from_cli == from_config
    assert "building" in from_config.names


def test_our_warnings_read_as_one_line_and_a_librarys_keep_their_source(tmp_path):
    """A data quirk (RGBA masks) is one 'warning: ...' line, not Python's 'ingest.py:283:
    IngestWarning: ...' plus a line of our source, in a real ``segpipe`` process (pytest
    would record the warning instead of printing it)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    import numpy as np
    import rasterio

    source = tmp_path / "src"
    for folder in ("images", "labels"):
        (source / folder).mkdir(parents=True)
    mask = np.zeros((4, 32, 32), np.uint8)
    mask[3] = 255  # opaque
    mask[0, :, 16:] = 255  # red right half, black left
    for i in range(3):
        for folder, data in (("images", np.full((3, 32, 32), 40 * i, np.uint8)),
                             ("labels", mask)):
            with rasterio.open(source / folder / f"s{i}.png", "w", driver="PNG", width=32,
                               height=32, count=len(data), dtype="uint8") as dst:
                dst.write(data)
    repo_root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "prepare", "src", "o", "--patch-size", "16",
         "--strategy", "random"],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(repo_root)}, capture_output=True,
        text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert "warning: 3 masks have an alpha band (e.g. src/labels/s0.png): alpha is dropped " \
           "and fully transparent pixels are ignored" in lines
    assert "IngestWarning" not in done.stderr and "warn_collected" not in done.stderr

    from pipelines.warning_lines import format_warning

    library = format_warning("old API", DeprecationWarning, "/x/lib.py", 7, "call()")
    assert library.startswith("/x/lib.py:7: DeprecationWarning: old API")


def test_prepare_names_the_option_that_fixes_the_data(tmp_path):
    """A data error a setting would fix names it as prepare spells it: the flag."""
    import numpy as np
    import pyogrio
    import shapely
    from rasterio.transform import from_origin

    from components.raster import write_array
    from tests.components.conftest import UTM, make_image

    data = tmp_path / "data"
    write_array(data / "scenes" / "s0.tif", make_image(32), UTM,
                from_origin(600000.0, 3000000.0, 2.0, 2.0))
    for layer in ("aoi", "tea"):
        pyogrio.raw.write(data / "labels.gpkg",
                          shapely.to_wkb(np.array([shapely.box(600010, 2999950, 600050,
                                                               2999990)])),
                          field_data=[np.array(["tea"], dtype=object)], fields=["class"],
                          crs=UTM, geometry_type="Polygon", layer=layer,
                          append=layer == "tea")
    result = CliRunner().invoke(app, ["prepare", str(data), str(tmp_path / "o"),
                                      "--vector-labels", "labels.gpkg"])
    assert result.exit_code == 1, result.output
    assert ("labels.gpkg: 2 layers (aoi, tea); set --vector-layer to the one holding the "
            "labels") in " ".join(result.output.split())


def _polygon_source(root):
    """Two scenes and polygons of classes 'field', 'road' and, as a colleague named the
    pond's class, 'Field'."""
    from tests.components.test_vectors import FEATURES_UTM, UTM, _scenes, _write_layer

    _scenes(root)
    renamed = {"pond": "Field"}
    _write_layer(root / "labels.gpkg", [(renamed.get(c, c), g) for c, g in FEATURES_UTM],
                 crs=UTM)
    return root


def test_class_aliases_from_the_flag_and_from_a_config_make_the_same_dataset(tmp_path):
    """--class-alias, repeated (a pair and a mapping), on `segpipe prepare`, and the config's
    data.ingest.class_aliases as the Kubeflow ingest task validates it: the same classes and
    the same masks, the aliased classes merged; an alias no polygon uses is a warning."""
    import numpy as np
    import rasterio

    from components.artifacts import ClassMap
    from components.ingest import ingest_source
    from components.ingest_options import IngestOptions
    from components.survey import IngestWarning
    from pipelines.config import load_config
    from pipelines.step_options import step_options

    source = _polygon_source(tmp_path / "data")
    # pytest records the warning instead of printing it (a real process prints it as one
    # 'warning:' line, test_our_warnings_read_as_one_line_and_a_librarys_keep_their_source).
    with pytest.warns(IngestWarning, match="class alias meadow -> field matched no label class"):
        result = CliRunner().invoke(app, [
            "prepare", str(source), str(tmp_path / "cli"), "--vector-labels", "labels.gpkg",
            "--class-alias", "Field=field", "--class-alias", "{meadow: field}", "--patch-size",
            "32", "--allow-empty-splits"])
    assert result.exit_code == 0, result.output
    (tmp_path / "run.yaml").write_text(
        "source: data\ndata:\n  ingest:\n    vector_labels: labels.gpkg\n"
        "    class_aliases: {Field: field, meadow: field}\n")
    section = load_config(tmp_path / "run.yaml").data.ingest.model_dump(mode="json",
                                                                          exclude_none=True)
    ingest_source(str(source), tmp_path / "kfp", step_options(IngestOptions, section))
    from_cli = ClassMap.load(tmp_path / "cli" / "classes.json")
    assert from_cli == ClassMap.load(tmp_path / "kfp" / "classes.json")
    assert from_cli.names == ["background", "field", "road"]
    for scene in ("s0", "s1"):
        with rasterio.open(tmp_path / "cli/scenes" / f"{scene}_mask.tif") as cli, \
                rasterio.open(tmp_path / "kfp/scenes" / f"{scene}_mask.tif") as kfp:
            assert np.array_equal(cli.read(1), kfp.read(1))
    with rasterio.open(tmp_path / "cli/scenes/s0_mask.tif") as mask:
        assert (mask.read(1) == 1).sum() > 100  # the field and the pond ('Field'), as field


@pytest.mark.parametrize("value, code, message", [
    ("Field", 2, "--class-alias 'Field': expected KEY=VALUE (or a mapping, {key: value})"),
    ("Field=Feld", 1, "prepare failed: --class-alias Field -> Feld: 'Feld' is not among the "
                      "classes of the labels and their palette (background, field, Field, "
                      "road)"),
])
def test_a_class_alias_that_cannot_apply_is_refused_naming_the_flag(tmp_path, value, code,
                                                                    message):
    source = _polygon_source(tmp_path / "data")
    result = CliRunner().invoke(app, ["prepare", str(source), str(tmp_path / "out"),
                                      "--vector-labels", "labels.gpkg", "--class-alias", value])
    assert result.exit_code == code, result.output
    assert message in " ".join(result.output.replace("│", " ").split()), result.output
    assert "Traceback" not in result.output and not (tmp_path / "out").exists()


def test_ctrl_c_in_any_command_exits_130_with_one_interrupted_line():
    """The fallback for commands that do not say themselves what Ctrl-C left (Typer's own
    ends them silently with 130)."""
    import typer

    from pipelines.cli.help_format import Group

    tiny = typer.Typer(cls=Group)

    @tiny.command()
    def slow() -> None:
        raise KeyboardInterrupt

    @tiny.command()
    def other() -> None:
        pass

    result = CliRunner().invoke(tiny, ["slow"])
    assert result.exit_code == 130
    assert result.output == "error: interrupted by SIGINT; stopped before it finished\n"


@pytest.mark.slow  # a process of its own, stopped mid-way: ~10 s
def test_ctrl_c_in_prepare_exits_130_saying_nothing_was_written(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    from components.sample_data import generate_sample_dataset

    generate_sample_dataset(tmp_path / "src", scenes=6, size=1024, seed=0)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    process = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "prepare", "src", "ds", "--patch-size", "32"],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".ds.*")):  # the dataset's staging folder: work under way
        assert process.poll() is None, process.stderr.read()
        assert time.monotonic() < deadline, "prepare never started writing"
        time.sleep(0.01)
    process.send_signal(signal.SIGINT)
    assert process.wait(60) == 130
    errors = [line for line in process.stderr.read().splitlines() if line.startswith("error")]
    assert errors == ["error: interrupted by SIGINT; nothing written to ds"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


def _prepare_with_a_cleared_secret(source: str, cwd, tmp_path) -> subprocess.CompletedProcess:
    """`segpipe prepare` as a shell or CI that "cleared" the AWS secret runs it: the key id
    set, the secret set but empty, and AWS_NO_SIGN_REQUEST set but empty (not a request to
    go unsigned)."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "",
           "AWS_NO_SIGN_REQUEST": ""}
    return subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "prepare", source, str(tmp_path / "ds"),
         "--patch-size", "16", "--strategy", "random"],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=180)


def test_a_local_source_needs_no_aws_credentials_even_half_set(tmp_path):
    runner = CliRunner()
    data = tmp_path / "data"
    assert runner.invoke(app, ["sample-data", str(data), "--scenes", "3", "--size", "48",
                               "--seed", "2"]).exit_code == 0
    done = _prepare_with_a_cleared_secret(str(data), tmp_path, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "ds" / "split.json").is_file()


def test_an_s3_source_with_half_set_credentials_fails_in_one_line(tmp_path, moto_endpoint):
    done = _prepare_with_a_cleared_secret("s3://tea/surveys", tmp_path, tmp_path)
    # 1: prepare's code for a source it cannot read (an empty one, a bad archive...)
    assert done.returncode == 1, done.stderr[-3000:]
    lines = (done.stdout + done.stderr).strip().splitlines()
    assert len(lines) == 1, lines
    assert "s3://tea/surveys" in lines[0] and "AWS_SECRET_ACCESS_KEY" in lines[0]
    assert not (tmp_path / "ds").exists()


def test_real_aws_credentials_still_sign_gdal_s3_reads(tmp_path):
    """The half-set fix must not make segpipe's GDAL reads anonymous: with complete
    credentials a /vsis3/ read (a VRT of private S3 files) carries a signature, also with
    AWS_NO_SIGN_REQUEST set but empty (GDAL reads "" as true). A local stand-in for S3
    records the requests' Authorization headers."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    signatures: list[str] = []

    class Forbidden(BaseHTTPRequestHandler):
        def _refuse(self) -> None:
            signatures.append(self.headers.get("Authorization", ""))
            self.send_response(403)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_HEAD = _refuse

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Forbidden)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
           "AWS_ACCESS_KEY_ID": "AKIATESTKEY", "AWS_SECRET_ACCESS_KEY": "real-secret",
           "AWS_S3_ENDPOINT": f"127.0.0.1:{server.server_address[1]}", "AWS_HTTPS": "NO",
           "AWS_VIRTUAL_HOSTING": "FALSE", "AWS_DEFAULT_REGION": "us-east-1",
           "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif", "GDAL_HTTP_MAX_RETRY": "0",
           "AWS_NO_SIGN_REQUEST": ""}
    for variable in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        env.pop(variable, None)
    read = ("import pipelines.cli, rasterio\n"
            "from components.raster import gdal_env\n"
            "try:\n"
            "    with gdal_env(), rasterio.open('/vsis3/private/scene.tif'):\n"
            "        pass\n"
            "except rasterio.errors.RasterioIOError:\n"
            "    pass\n")
    try:
        subprocess.run([sys.executable, "-c", read], env=env, cwd=tmp_path, check=True,
                       capture_output=True, timeout=60)
    finally:
        server.shutdown()
    assert signatures, "GDAL sent no request"
    assert all("Credential=AKIATESTKEY/" in header for header in signatures), signatures

"""Step output formats and the local run's cache: an entry cached by code that wrote another
format is not reused, and the run says so in one line."""


import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from kfp import dsl
from kfp.dsl import Dataset

from components.output_formats import OUTPUT_FORMATS
from components.sample_data import generate_sample_dataset
from components.source_fingerprint import fingerprint, list_source
from pipelines import kfp_components as steps
from pipelines.config import PipelineConfig
from pipelines.local_run import init_local_runner
from pipelines.step_cache import (
    CACHE_FOLDER,
    check_cached_formats,
    check_source_listing,
    prepare_step_cache,
    record_source_listing,
)

REPO_ROOT = Path(__file__).resolve().parents[2]


def _cache_entry(root: Path, step_output: str, metadata: dict, name: str = "0123abcd") -> Path:
    """A kfp cache entry as kfp.local writes it: the output artifact, its metadata with
    numbers as floats, pointing at an output that exists."""
    output = root / "run-1" / step_output
    output.mkdir(parents=True, exist_ok=True)
    (root / CACHE_FOLDER).mkdir(parents=True, exist_ok=True)
    (root / CACHE_FOLDER / f"{name}.json").write_text(json.dumps({step_output: {
        "__kfp_artifact__": True, "uri": str(output),
        "metadata": {k: float(v) if isinstance(v, int) else v for k, v in metadata.items()}}}))
    return root


def test_a_cache_from_before_formats_were_recorded_is_said_to_run_again(tmp_path):
    root = _cache_entry(tmp_path / "kfp-outputs", "tiles", {"tiles": 3})
    assert check_cached_formats(root) == ("cached outputs of tile are from code that wrote "
                                          "another format: it runs again")
    _cache_entry(root, "tiles", {"output_format": OUTPUT_FORMATS["tile"]}, name="b")
    assert check_cached_formats(root) is None  # an entry of this code's: the step may hit


def test_only_the_steps_whose_format_changed_are_named(tmp_path):
    root = tmp_path / "kfp-outputs"
    for number, (output, step) in enumerate((("scenes", "ingest"), ("tiles", "tile"),
                                             ("split", "split"), ("stats", "normalize"))):
        version = OUTPUT_FORMATS[step] - (step == "tile")
        _cache_entry(root, output, {"output_format": version}, name=str(number))
    assert check_cached_formats(root) == ("cached outputs of tile are from code that wrote "
                                          "another format: it runs again")


def test_an_entry_whose_output_is_gone_does_not_count(tmp_path):
    root = _cache_entry(tmp_path / "kfp-outputs", "tiles", {"output_format": 0})
    (root / "run-1" / "tiles").rmdir()  # kfp misses it: the step runs anyway, nothing to say
    assert check_cached_formats(root) is None


def test_no_cache_yet_says_nothing(tmp_path):
    assert check_cached_formats(tmp_path / "kfp-outputs") is None
    assert not (tmp_path / "kfp-outputs").exists()  # checking records nothing


def _ingested(root: Path, listing: dict, name: str = "ingest") -> None:
    _cache_entry(root, "scenes", {"output_format": OUTPUT_FORMATS["ingest"],
                                  "source_fingerprint": fingerprint(listing)}, name=name)


def test_a_changed_source_is_named_and_an_unchanged_one_is_not(tmp_path):
    source = tmp_path / "scenes"
    source.mkdir()
    for name in ("a.tif", "b.tif", "c.tif"):
        (source / name).write_bytes(b"x" * 10)
    root = tmp_path / "kfp-outputs"
    listing = list_source(str(source), 100)
    assert check_source_listing(root, str(source), listing) is None  # nothing recorded yet
    record_source_listing(root, str(source), listing)
    _ingested(root, listing)
    assert check_source_listing(root, str(source), listing) is None
    (source / "a.tif").unlink()
    (source / "b.tif").write_bytes(b"y" * 11)
    now = list_source(str(source), 100)
    assert fingerprint(now) != fingerprint(listing)
    assert check_source_listing(root, str(source), now) == (
        "source changed since the cached ingest: 1 file removed, 1 modified - ingest runs "
        "again")
    record_source_listing(root, str(source), now)  # a run starts, and stops before ingest
    assert check_source_listing(root, str(source), now) is not None  # still said
    _ingested(root, now, name="ingest-2")  # its ingest completed (however the run ended)
    assert check_source_listing(root, str(source), now) is None


def test_a_run_stopped_before_its_ingest_leaves_the_line_as_it_was(tmp_path):
    """The line is of the cache's entries: a run that fails (or is stopped) before its
    ingest completes adds none, so the next run still says why it re-ingests."""
    source = tmp_path / "scenes"
    source.mkdir()
    (source / "a.tif").write_bytes(b"x")
    root = tmp_path / "kfp-outputs"
    listing = list_source(str(source), 100)
    record_source_listing(root, str(source), listing)
    _ingested(root, listing)
    (source / "b.tif").write_bytes(b"y")
    config = PipelineConfig(source=str(source), workdir=tmp_path / "work")
    said = ["source changed since the cached ingest: 1 file added - ingest runs again"]
    assert prepare_step_cache(root, config)[1] == said
    # ... the run fails in (or is interrupted before the end of) its ingest ...
    assert prepare_step_cache(root, config)[1] == said  # the next run says it again


@dsl.pipeline(name="data-steps")
def _data_steps(source: str, source_fingerprint: str, ingest: dict, tile: dict) -> Dataset:
    ingested = steps.ingest(source=source, options=ingest,
                            output_format=OUTPUT_FORMATS["ingest"],
                            source_fingerprint=source_fingerprint).set_caching_options(True)
    return steps.tile(scenes=ingested.outputs["scenes"], options=tile,
                      output_format=OUTPUT_FORMATS["tile"]).set_caching_options(True
                                                                      ).outputs["tiles"]


def test_local_runs_read_the_source_as_it_is_now(tmp_path, monkeypatch):
    """kfp's local runner, as `segpipe run` drives it (prepare_step_cache, caching on):
    a file deleted from the source is not resurrected by a cached ingest, neither after a
    plain run nor after a --no-cache run, whose outputs the next cached run reuses."""
    monkeypatch.setenv("PYTHONPATH", str(REPO_ROOT))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    source = generate_sample_dataset(tmp_path / "scenes", scenes=4, size=48, seed=3)
    work = tmp_path / "work"
    root = work / "kfp-outputs"

    def run(tile: dict, cache: bool = True) -> tuple[int, list[str]]:
        config = PipelineConfig(source=str(source), workdir=work, cache=cache,
                                data={"ingest": {"palette": "classes.json"}, "tile": tile})
        source_fingerprint, news = prepare_step_cache(root, config)
        init_local_runner(root)
        tiles = _data_steps(source=str(source), source_fingerprint=source_fingerprint,
                            ingest=config.data.ingest.model_dump(mode="json", exclude_none=True),
                            tile=config.data.tile.model_dump(mode="json", exclude_none=True))
        manifest = json.loads((Path(tiles.output.path) / "tiles.json").read_text())
        return len(manifest["scenes"]), news

    def ingest_runs() -> int:
        return len(list(root.glob("*/ingest/scenes")))

    def remove_scene(name: str) -> None:
        for path in source.glob(f"{name}_*.tif"):
            path.unlink()

    assert run({"patch_size": 32})[0] == 4
    remove_scene("scene00")
    scenes, news = run({"patch_size": 32})
    assert scenes == 3  # was 4: the cached ingest of before
    assert news == ["source changed since the cached ingest: 2 files removed - ingest "
                    "runs again"]
    remove_scene("scene01")
    assert run({"patch_size": 32}, cache=False)[0] == 2
    before = ingest_runs()
    assert run({"patch_size": 16}) == (2, [])
    assert ingest_runs() == before  # the --no-cache run's ingest, reused
    run({"patch_size": 16}, cache=False)  # the source unchanged: read again all the same
    assert ingest_runs() == before + 1


def _run_data_steps(source: Path, work: Path, tile: dict) -> list[str]:
    """The data steps as `segpipe run` drives them: the lines it shows first, then kfp."""
    config = PipelineConfig(source=str(source), workdir=work,
                            data={"ingest": {"palette": "classes.json"}, "tile": tile})
    root = work / "kfp-outputs"
    source_fingerprint, news = prepare_step_cache(root, config)[:2]
    init_local_runner(root)
    _data_steps(source=str(source), source_fingerprint=source_fingerprint,
                ingest=config.data.ingest.model_dump(mode="json", exclude_none=True),
                tile=config.data.tile.model_dump(mode="json", exclude_none=True))
    return news


_KILLED_RUN = """
import sys, time
from pathlib import Path
from tests.pipelines.test_step_cache import _run_data_steps
_run_data_steps(Path(sys.argv[1]), Path(sys.argv[2]), {"patch_size": 32})
time.sleep(600)  # a run goes on to its trials; killed meanwhile
"""


def test_after_a_sigkill_the_line_and_the_ingest_agree(tmp_path, monkeypatch):
    """A run killed (SIGKILL, no handler runs) after its ingest completed: the next run
    neither says the ingest runs again nor runs it (docs/pipeline.md, "Caching")."""
    monkeypatch.setenv("PYTHONPATH", str(REPO_ROOT))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    source = generate_sample_dataset(tmp_path / "scenes", scenes=4, size=48, seed=3)
    work = tmp_path / "work"
    root = work / "kfp-outputs"
    assert _run_data_steps(source, work, {"patch_size": 32}) == []  # a run that finished
    for path in source.glob("scene00_*.tif"):
        path.unlink()
    runner = subprocess.Popen([sys.executable, "-c", _KILLED_RUN, str(source), str(work)],
                              cwd=tmp_path, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while len(list(root.glob("*/tile/tiles"))) < 2:  # this run's ingest done, tile too
        assert runner.poll() is None and time.monotonic() < deadline, "the run never tiled"
        time.sleep(0.1)
    while len(list((root / CACHE_FOLDER).glob("*.json"))) < 4:  # both steps' entries
        assert time.monotonic() < deadline, "kfp never cached the run's steps"
        time.sleep(0.1)
    runner.send_signal(signal.SIGKILL)
    runner.wait()
    ingests = len(list(root.glob("*/ingest/scenes")))
    assert _run_data_steps(source, work, {"patch_size": 32}) == []
    assert len(list(root.glob("*/ingest/scenes"))) == ingests  # a cache hit, as said

"""Step output formats and the local run's cache: an entry cached by code that wrote another
format is not reused, and the run says so in one line."""


import json
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
    RECORD,
    check_cached_formats,
    check_source_listing,
    data_steps_completed,
    prepare_step_cache,
    record_step_cache,
)

REPO_ROOT = Path(__file__).resolve().parents[2]


def _cache_with_an_entry(root: Path) -> Path:
    (root / CACHE_FOLDER).mkdir(parents=True)
    (root / CACHE_FOLDER / "0123abcd.json").write_text("{}")
    return root


def test_a_cache_from_before_formats_were_recorded_is_said_to_run_again(tmp_path):
    root = _cache_with_an_entry(tmp_path / "kfp-outputs")
    assert check_cached_formats(root) == (
        "cached outputs of ingest, tile, split, normalize are from code that wrote another "
        "format: they run again")
    assert check_cached_formats(root) is not None  # said again until a run records them
    record_step_cache(root, "scenes", {})  # the data steps ran: the entries are this code's
    assert json.loads((root / RECORD).read_text()) == OUTPUT_FORMATS
    assert check_cached_formats(root) is None


def test_only_the_steps_whose_format_changed_are_named(tmp_path):
    root = _cache_with_an_entry(tmp_path / "kfp-outputs")
    (root / RECORD).write_text(json.dumps({**OUTPUT_FORMATS, "tile": OUTPUT_FORMATS["tile"] - 1}))
    assert check_cached_formats(root) == ("cached outputs of tile are from code that wrote "
                                          "another format: it runs again")


def test_no_cache_yet_says_nothing(tmp_path):
    assert check_cached_formats(tmp_path / "kfp-outputs") is None
    assert not (tmp_path / "kfp-outputs" / RECORD).exists()  # checking records nothing


def test_a_changed_source_is_named_and_an_unchanged_one_is_not(tmp_path):
    source = tmp_path / "scenes"
    source.mkdir()
    for name in ("a.tif", "b.tif", "c.tif"):
        (source / name).write_bytes(b"x" * 10)
    root = tmp_path / "kfp-outputs"
    listing = list_source(str(source), 100)
    assert check_source_listing(root, str(source), listing) is None  # nothing recorded yet
    _cache_with_an_entry(root)
    record_step_cache(root, str(source), listing)
    assert check_source_listing(root, str(source), listing) is None
    (source / "a.tif").unlink()
    (source / "b.tif").write_bytes(b"y" * 11)
    now = list_source(str(source), 100)
    assert fingerprint(now) != fingerprint(listing)
    assert check_source_listing(root, str(source), now) == (
        "source changed since the cached ingest: 1 file removed, 1 modified - ingest runs "
        "again")
    record_step_cache(root, str(source), now)
    assert check_source_listing(root, str(source), now) is None  # recorded


def test_a_run_stopped_before_its_data_steps_leaves_the_notes_as_they_were(tmp_path):
    """The notes are of the cache's entries: a run that fails (or is stopped) before its
    ingest completes records nothing, so the next run still says why it re-ingests."""
    source = tmp_path / "scenes"
    source.mkdir()
    (source / "a.tif").write_bytes(b"x")
    root = _cache_with_an_entry(tmp_path / "kfp-outputs")
    record_step_cache(root, str(source), list_source(str(source), 100))
    (source / "b.tif").write_bytes(b"y")
    config = PipelineConfig(source=str(source), workdir=tmp_path / "work")
    said = ["source changed since the cached ingest: 1 file added - ingest runs again"]
    assert prepare_step_cache(root, config)[1] == said
    # ... the run fails in (or is interrupted before the end of) its ingest ...
    assert not any(map(data_steps_completed, ("start-run", "ingest", "normalize", None)))
    assert prepare_step_cache(root, config)[1] == said  # the next run says it again
    assert data_steps_completed("tune-worker")  # a later step: the entries are this run's


@dsl.pipeline(name="data-steps")
def _data_steps(source: str, source_fingerprint: str, ingest: dict, tile: dict) -> Dataset:
    ingested = steps.ingest(source=source, options=ingest, output_format=1,
                            source_fingerprint=source_fingerprint).set_caching_options(True)
    return steps.tile(scenes=ingested.outputs["scenes"], options=tile,
                      output_format=1).set_caching_options(True).outputs["tiles"]


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
        source_fingerprint, news, listing = prepare_step_cache(root, config)
        init_local_runner(root)
        tiles = _data_steps(source=str(source), source_fingerprint=source_fingerprint,
                            ingest=config.data.ingest.model_dump(mode="json", exclude_none=True),
                            tile=config.data.tile.model_dump(mode="json", exclude_none=True))
        record_step_cache(root, str(source), listing)
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

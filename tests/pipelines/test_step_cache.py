"""Step output formats and the local run's cache: an entry cached by code that wrote another
format is not reused, and the run says so in one line."""

from __future__ import annotations

import json
from pathlib import Path

from components.output_formats import OUTPUT_FORMATS
from pipelines.step_cache import CACHE_FOLDER, RECORD, check_cached_formats


def _cache_with_an_entry(root: Path) -> Path:
    (root / CACHE_FOLDER).mkdir(parents=True)
    (root / CACHE_FOLDER / "0123abcd.json").write_text("{}")
    return root


def test_a_cache_from_before_formats_were_recorded_is_said_to_run_again(tmp_path):
    root = _cache_with_an_entry(tmp_path / "kfp-outputs")
    assert check_cached_formats(root) == (
        "cached outputs of ingest, tile, split, normalize are from code that wrote another "
        "format: they run again")
    assert json.loads((root / RECORD).read_text()) == OUTPUT_FORMATS
    assert check_cached_formats(root) is None  # recorded: the next run reuses its own


def test_only_the_steps_whose_format_changed_are_named(tmp_path):
    root = _cache_with_an_entry(tmp_path / "kfp-outputs")
    (root / RECORD).write_text(json.dumps({**OUTPUT_FORMATS, "tile": OUTPUT_FORMATS["tile"] - 1}))
    assert check_cached_formats(root) == ("cached outputs of tile are from code that wrote "
                                          "another format: it runs again")


def test_no_cache_yet_says_nothing(tmp_path):
    assert check_cached_formats(tmp_path / "kfp-outputs") is None
    assert (tmp_path / "kfp-outputs" / RECORD).is_file()

"""The app's run folders: named so they sort by start time, and listed only once started
(``run.json`` written), newest first."""

from __future__ import annotations

import time

from pipelines.ui import train_runs


def test_started_runs_are_listed_newest_first_and_bare_folders_are_not(tmp_path):
    first = train_runs.new_run(tmp_path)
    time.sleep(1.01)  # the id's time has a resolution of one second
    second = train_runs.new_run(tmp_path)
    bare = train_runs.new_run(tmp_path)
    assert first.folder.parent == tmp_path / train_runs.RUNS_DIR
    assert first.config_path == first.folder / f"{first.id}.yaml"
    for run in (first, second):
        run.info_path.write_text(train_runs.RunInfo(
            id=run.id, mode="local", pid=1, command=["segpipe"], started_at=0.0,
            model_name="m", experiment="e", tracking_uri="sqlite:///m.db").model_dump_json())
    assert [r.id for r in train_runs.list_runs(tmp_path)] == [second.id, first.id]
    assert [r.id for r in train_runs.list_runs(tmp_path, limit=1)] == [second.id]
    assert bare.id not in [r.id for r in train_runs.list_runs(tmp_path)]
    assert train_runs.list_runs(tmp_path / "elsewhere") == []
    assert first.info().model_name == "m"
    assert first.marker() == f"{train_runs.RUN_ENV}={first.folder}".encode()

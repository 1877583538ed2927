"""A run's progress from its files: task lines as kfp's local runner colours them, a log
followed while it grows, the console's tail and what `segpipe submit` prints."""

from __future__ import annotations

from kfp.local import logging_utils
from kfp.local.status import Status

from pipelines import step_cache
from pipelines.ui import progress


def _started(task: str) -> str:
    return f"17:35:47.776 - INFO - Executing task {logging_utils.format_task_name(task)}\n"


def _finished(task: str, status: Status = Status.SUCCESS) -> str:
    return (f"17:35:48.211 - INFO - Task {logging_utils.format_task_name(task)} finished "
            f"with status {logging_utils.format_status(status)}\n")


def test_tasks_are_followed_as_the_log_grows(tmp_path):
    log = tmp_path / "run.log"
    log.write_text(_started("ingest") + "    {executor JSON}\n" + _finished("ingest")
                   + _started("tile"))
    tasks = progress.TaskLog(log).update()
    assert [t.label() for t in tasks.tasks.values()] == ["ingest: done", "tile: running"]
    # A line still being written waits for the next read.
    with open(log, "a") as out:
        out.write(_finished("tile") + _started("tune-worker") + _started("tune-worker")
                  + "17:36:33.598 - INFO - Task 'tune")
    tasks.update()
    assert [t.label() for t in tasks.tasks.values()] == [
        "ingest: done", "tile: done", "tune-worker ×2: running"]
    assert tasks.tasks["tune-worker"].label(run_over=True) == "tune-worker ×2: interrupted"
    # The local runner reports a ParallelFor finished once; the next task settles it.
    with open(log, "a") as out:
        out.write("-worker' finished with status SUCCESS\n" + _started("select-best")
                  + _finished("select-best") + _started("evaluate")
                  + "    Traceback (most recent call last):\n"
                  + '      File "/work/components/evaluate.py", line 9, in evaluate\n'
                  + "    components.raster.DataError: tiles/t1.tif: cannot read (truncated)\n"
                  + _finished("evaluate", Status.FAILURE))
    tasks.update()
    assert tasks.tasks["tune-worker"].label() == "tune-worker ×2: done"
    assert tasks.tasks["evaluate"].label() == "evaluate: failed"
    assert tasks.failed_task.name == "evaluate"
    assert tasks.failed_task.error == "DataError: tiles/t1.tif: cannot read (truncated)"
    assert tasks.tasks["select-best"].error is None
    assert tasks.offset == log.stat().st_size


def test_missing_log_is_no_progress_yet(tmp_path):
    tasks = progress.TaskLog(tmp_path / "absent.log").update()
    assert tasks.tasks == {} and tasks.offset == 0
    assert progress.newest_task_log(tmp_path) is None
    (tmp_path / "logs").mkdir()
    for name in ("run-20260101T100000.log", "run-20260101T110000.log"):
        (tmp_path / "logs" / name).write_text("")
    assert progress.newest_task_log(tmp_path).name == "run-20260101T110000.log"


def test_kfp_run_name_is_the_latest_outputs_folder(tmp_path):
    """Not kfp's cache nor segpipe's step cache notes beside the runs (a notes folder named
    'source-listings' sorted after the runs: the page found no parent run, no trials)."""
    assert progress.kfp_run_name(tmp_path) is None
    for name in (".kfp_cache", "segpipe-segmentation-2026-11-29-17-35-47-772760",
                 "segpipe-segmentation-2026-11-29-18-02-11-000001", "source-listings",
                 step_cache.SOURCE_LISTINGS):
        (tmp_path / "kfp-outputs" / name).mkdir(parents=True, exist_ok=True)
    (tmp_path / "kfp-outputs" / "segpipe-segmentation-2026-11-29-19-00-00-000001.json"
     ).write_text("{}")  # a file named like a run is not one
    assert progress.kfp_run_name(tmp_path) == "segpipe-segmentation-2026-11-29-18-02-11-000001"


def test_console_tail_reads_only_the_end_and_finds_the_error(tmp_path):
    console = tmp_path / "console.log"
    noise = "".join(f"\x1b[96mline {i}\x1b[0m\n" for i in range(20_000))
    console.write_text(noise + "\nerror: task 'tile' failed: scene.tif: unreadable\n"
                       "full log: /work/logs/run.log\n")
    assert console.stat().st_size > progress.TAIL_BYTES
    tail = progress.console_tail(console, lines=5)
    assert tail[:3] == ["line 19997", "line 19998", "line 19999"]
    assert progress.error_lines(tail) == ["error: task 'tile' failed: scene.tif: unreadable",
                                          "full log: /work/logs/run.log"]
    assert progress.error_lines(["all", "fine"]) == []
    assert progress.console_tail(tmp_path / "absent.log") == []


def test_submission_is_read_from_segpipe_submits_output(tmp_path):
    console = tmp_path / "console.log"
    console.write_text("compiling\n")
    assert progress.submission(console) is None
    console.write_text("submitted run 5c2b-77\nhttp://kfp.example/#/runs/details/5c2b-77\n")
    assert progress.submission(console) == progress.Submission(
        "5c2b-77", "http://kfp.example/#/runs/details/5c2b-77")

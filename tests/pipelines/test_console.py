"""What `segpipe run` shows while kfp streams task output: progress and the steps' own lines,
not the executor's JSON or library warnings; the log file keeps everything."""

from __future__ import annotations

import io

from pipelines.console import TaskOutputFilter

STREAM = """    [KFP Executor 2026 INFO]: Got executor_input:
    {
        "inputs": {"parameterValues": {"n": 1}}
    }
    step says hello
            /v/site-packages/keras/src/epoch_iterator.py:74: UserWarning: `shuffle=True` ignored
              self.data_adapter = data_adapters.get_data_adapter(
    I0000 cudart_stub.cc:31] Could not find cuda drivers on your machine
    I0000 00:00:17 port.cc:153] oneDNN custom operations are on.
    [I 2026-11-29 18:22:54,158] A new study created in RDB with name: s
    [I 2026-11-29 18:23:54,158] Trial 0 finished with value: 0.5
    [I 2026-11-29 18:24:54,158] Trial 1 pruned. pruned after epoch 3 (val mIoU 0.4100)
    [KFP Executor 2026-11-29 17:45:03,327 WARNING]: trial 0 was interrupted; re-queued
    2026/11/29 18:27:01 WARNING mlflow.pyfunc: Passing a Python object as `python_model`
    Successfully registered model 'segpipe'.
18:23:01.638 - INFO - Task 'tile' finished with status SUCCESS
18:23:01.638 - INFO - Task 'tile' outputs:
    tiles: Dataset( name='tiles',
                    metadata={'tiles': 96.0} )
--------------------------------------------------------------------------------
18:23:01.640 - INFO - Executing task 'split'
18:23:01.640 - INFO - Streamed logs:
"""


def test_console_shows_progress_and_the_log_keeps_everything():
    log, console = io.StringIO(), io.StringIO()
    stream = TaskOutputFilter(log, console, verbose=False)
    for chunk in (STREAM[:50], STREAM[50:]):  # lines may arrive split across writes
        stream.write(chunk)
    assert console.getvalue().splitlines() == [
        "    step says hello",
        "    [I 2026-11-29 18:23:54,158] Trial 0 finished with value: 0.5",
        "    [I 2026-11-29 18:24:54,158] Trial 1 pruned. pruned after epoch 3 (val mIoU 0.4100)",
        "    [KFP Executor 2026-11-29 17:45:03,327 WARNING]: trial 0 was interrupted; re-queued",
        "18:23:01.638 - INFO - Task 'tile' finished with status SUCCESS",
        "18:23:01.640 - INFO - Executing task 'split'"]
    assert log.getvalue() == STREAM


def test_verbose_console_shows_everything():
    console = io.StringIO()
    TaskOutputFilter(io.StringIO(), console, verbose=True).write(STREAM)
    assert console.getvalue() == STREAM


FAILED_STEP = """18:14:27.324 - INFO - Executing task 'ingest'
    Traceback (most recent call last):
      File "<frozen runpy>", line 198, in _run_module_as_main
      File "/v/site-packages/kfp/dsl/executor.py", line 453, in execute
        result = self.func(**func_kwargs)
                 ^^^^^^^^^^^^^^^^^^^^^^^^
    ValueError: first

    During handling of the above exception, another exception occurred:

    Traceback (most recent call last):
      File "/r/components/ingest.py", line 285, in ingest_source
        raise DataError(relabel(str(err))) from None
    components.raster.DataError: /data/4.tif: cannot read pixels
18:14:28.007 - ERROR - Task 'ingest' finished with status FAILURE
"""


def test_a_failed_steps_traceback_stays_in_the_log():
    log, console = io.StringIO(), io.StringIO()
    TaskOutputFilter(log, console, verbose=False).write(FAILED_STEP)
    assert console.getvalue().splitlines() == [
        "18:14:27.324 - INFO - Executing task 'ingest'",
        "18:14:28.007 - ERROR - Task 'ingest' finished with status FAILURE"]
    assert log.getvalue() == FAILED_STEP


def test_a_muted_console_shows_nothing_more_and_the_log_goes_on():
    log, console = io.StringIO(), io.StringIO()
    stream = TaskOutputFilter(log, console, verbose=True)
    stream.write("18:23:01.640 - INFO - Executing task 'tune-worker'\n")
    stream.mute()
    stream.write("18:23:09.001 - ERROR - Task 'tune-worker' finished with status FAILURE\n")
    assert console.getvalue() == "18:23:01.640 - INFO - Executing task 'tune-worker'\n"
    assert "FAILURE" in log.getvalue()


COLOURED = ("18:23:01.640 - INFO - Executing task \x1b[96m'split'\x1b[0m\n"
            "18:23:02.105 - INFO - Task \x1b[96m'split'\x1b[0m finished with status "
            "\x1b[92mSUCCESS\x1b[0m\n")
PLAIN = ("18:23:01.640 - INFO - Executing task 'split'\n"
         "18:23:02.105 - INFO - Task 'split' finished with status SUCCESS\n")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colour_goes_only_to_a_terminal_and_never_to_the_log(monkeypatch):
    """kfp colours task names and states whatever its output is; `segpipe run > out.txt`
    must read as plain text."""
    monkeypatch.delenv("NO_COLOR", raising=False)
    log, file, terminal = io.StringIO(), io.StringIO(), _Terminal()
    TaskOutputFilter(log, file, verbose=False).write(COLOURED)
    TaskOutputFilter(io.StringIO(), terminal, verbose=False).write(COLOURED)
    assert file.getvalue() == PLAIN and log.getvalue() == PLAIN
    assert terminal.getvalue() == COLOURED


def test_no_color_turns_colour_off_on_a_terminal_too(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    terminal = _Terminal()
    TaskOutputFilter(io.StringIO(), terminal, verbose=True).write(COLOURED)
    assert terminal.getvalue() == PLAIN


def test_store_passwords_and_mlflow_links_stay_off_the_console_and_passwords_off_the_log():
    log, console = io.StringIO(), io.StringIO()
    TaskOutputFilter(log, console, verbose=False).write(
        "    step says hello\n"
        "    could not connect to postgresql+psycopg2://segpipe:s3cret@db:5432/optuna\n"
        "    🏃 View run trial-0 at: http://127.0.0.1:5000/#/experiments/1/runs/abc\n"
        "    🧪 View experiment at: http://127.0.0.1:5000/#/experiments/1\n")
    assert console.getvalue().splitlines() == [
        "    step says hello",
        "    could not connect to postgresql+psycopg2://segpipe:***@db:5432/optuna"]
    assert "s3cret" not in log.getvalue() and "View run trial-0" in log.getvalue()


def test_urls_with_an_at_sign_past_the_host_reach_the_console_unchanged():
    log, console = io.StringIO(), io.StringIO()
    lines = ["    tracking to http://mlflow:5000/mlflow@prod",
             "    see http://mlflow.example.org:5000/#/experiments?u=a@b, token http://u:pw@h"]
    TaskOutputFilter(log, console, verbose=False).write("\n".join(lines) + "\n")
    assert console.getvalue().splitlines() == [
        lines[0], "    see http://mlflow.example.org:5000/#/experiments?u=a@b, token "
                  "http://u:***@h"]
    assert "u:pw@" not in log.getvalue()

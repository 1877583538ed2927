"""What a failed local run names: the first task kfp reports failed and the last exception
its output showed before (pipelines/run_record.py)."""

from pipelines.run_record import FailureCause, failure_cause


def test_the_failed_step_and_its_last_exception_are_named():
    log = ("\x1b[31m12:00:01 - INFO - Task 'ingest' finished with status SUCCESS\x1b[0m\n"
           "UserWarning: not this one\n"
           "Traceback (most recent call last):\n"
           "  File \"x.py\", line 1, in <module>\n"
           "components.raster.DataError: scenes/a.tif: not a raster\n"
           "\x1b[31m12:00:02 - ERROR - Task 'tile' finished with status FAILURE\x1b[0m\n"
           "RuntimeError: the pipeline failed\n")
    cause = failure_cause(log)
    assert cause == FailureCause("tile", "DataError: scenes/a.tif: not a raster")
    assert cause.sentence() == "step 'tile' failed: DataError: scenes/a.tif: not a raster"
    assert failure_cause("KeyboardInterrupt\n").sentence() == (
        "the pipeline failed: KeyboardInterrupt")

"""What a local run leaves on its MLflow parent run when it does not finish: the step that
failed and its error (read from the run's log), or the interruption that stopped it. The
pipeline's exit task closes the parent run otherwise; here it never ran, or only knew that
a task failed."""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass

from components.tracking import TrackingOptions


def newest_parent_run(tracking: TrackingOptions):
    """The newest MLflow parent run of this run name and owner (another workdir's run of
    the same config is not this run's)."""
    from mlflow.tracking import MlflowClient

    from components.parent_run import owned_runs

    client = MlflowClient(tracking.mlflow_tracking_uri)
    experiment = client.get_experiment_by_name(tracking.mlflow_experiment)
    if experiment is None:
        return client, None
    runs = owned_runs(client, experiment.experiment_id, tracking)
    return client, (runs[0] if runs else None)


@dataclass(frozen=True)
class FailureCause:
    step: str | None
    error: str | None

    def sentence(self) -> str:
        where = f"step '{self.step}' failed" if self.step else "the pipeline failed"
        return f"{where}: {self.error}" if self.error else where


# The last line of a Python traceback: "pkg.module.SomeError: message".
_EXCEPTION_LINE = re.compile(r"^\s*(?:[\w.]+\.)?(\w*(?:Error|Exception|Exit|Interrupt))"
                             r"(?:: (.*))?$")


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_FAILED_TASK = re.compile(r"Task '([^']+)' finished with status FAILURE")


def failure_cause(log: str) -> FailureCause:
    """The first task kfp reports failed, and the last exception its output shows before
    that report."""
    error = None
    for line in _ANSI.sub("", log).splitlines():
        failed = _FAILED_TASK.search(line)
        if failed:
            return FailureCause(failed.group(1), error)
        matched = _EXCEPTION_LINE.match(line)
        if matched and "Warning" not in matched.group(1):
            error = f"{matched.group(1)}: {matched.group(2)}" if matched.group(2) \
                else matched.group(1)
    return FailureCause(None, error)


def record_failure(tracking: TrackingOptions, cause: FailureCause) -> None:
    """The step and error on the parent run (the exit task only knew that it failed)."""
    from components.parent_run import ERROR_TAG, FAILED_STEP_TAG

    try:
        client, parent = newest_parent_run(tracking)
        if parent is not None:
            if cause.step:
                client.set_tag(parent.info.run_id, FAILED_STEP_TAG, cause.step)
            if cause.error:
                client.set_tag(parent.info.run_id, ERROR_TAG, cause.error[:4000])
    except Exception as err:  # the failure itself is what the user must see
        warnings.warn(f"could not record the failure in MLflow: {err}", stacklevel=2)


def record_interruption(tracking: TrackingOptions, signal_name: str) -> None:
    """The parent run and its open trial runs KILLED (the exit task that closes them never
    ran), tagged so that the same config resumes the run."""
    from components.parent_run import close_unfinished_run

    try:
        client, parent = newest_parent_run(tracking)
        if parent is not None and parent.info.status == "RUNNING":
            close_unfinished_run(client, parent, state="interrupted", status="KILLED",
                                 error=f"interrupted by {signal_name}")
    except Exception as err:  # the interruption itself is what the user must see
        warnings.warn(f"could not record the interruption in MLflow: {err}", stacklevel=2)

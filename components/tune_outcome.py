"""What a study's trials came to, for the run: trials per state, and why they failed when
none completed (the select step's ``TuneError``, so the parent run's ``segpipe.error`` and
the last line of ``segpipe run``)."""

from __future__ import annotations

import re
from collections import Counter

import optuna
from optuna.trial import TrialState

from components.tracking import redact_url
from components.tune_options import TRIAL_ERROR_ATTR

_NUMBER = re.compile(r"\d+")


def state_counts(study: optuna.Study) -> dict[str, int]:
    states: dict[str, int] = {}
    for trial in study.get_trials(deepcopy=False):
        states[trial.state.name.lower()] = states.get(trial.state.name.lower(), 0) + 1
    return states


def failure_causes(study: optuna.Study) -> str:
    """Why the trials failed, for the run's one error line: a trial that fails in every
    worker fails alike (data or a space no model trains on); several errors, the commonest.
    Errors that differ only in numbers (the batch size in an OOM's tensor shape) are one
    cause, shown by its first example; a failed trial without an error in the study (a
    killed worker's, or one of code older than the record) is counted as such."""
    failed = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.FAIL]
    errors = [redact_url(t.user_attrs[TRIAL_ERROR_ATTR]) for t in failed
              if TRIAL_ERROR_ATTR in t.user_attrs]
    if not errors:
        return "the trials' MLflow runs carry the errors (tag segpipe.error)"
    causes = Counter(_NUMBER.sub("#", e) for e in errors)
    (cause, count), = causes.most_common(1)
    alike = [e for e in errors if _NUMBER.sub("#", e) == cause]
    error = (f"with {alike[0]}" if len(set(alike)) == 1 else f"alike, e.g. with {alike[0]}")
    if count == len(failed):
        return f"{'the trial' if count == 1 else f'all {count} trials'} failed {error}"
    text = f"{count} of {len(failed)} failed trials failed {error}"
    if unrecorded := len(failed) - len(errors):
        return (f"{text}; {unrecorded} left no error in the study (a killed worker?); the "
                "trials' MLflow runs carry theirs (tag segpipe.error)")
    return f"{text}; the others' MLflow runs carry theirs (tag segpipe.error)"

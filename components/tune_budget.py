"""The study's wall-clock budget (``tuning.budget_minutes``): one deadline for all workers.

The deadline is stored in the Optuna study's user attrs when the first worker starts (the
data steps before it are not tuning time), so every worker, on any machine, and a resumed
run stop at the same moment. Workers start no
trial after it; a trial running when it passes ends after that epoch with its best epoch
kept (a complete trial, not a lost one: components/train_callbacks.py StopAtDeadline). Keras-free,
so the steps that only open or close a study load no TensorFlow."""

from __future__ import annotations

import logging
import time

import optuna

log = logging.getLogger(__name__)

#: Study user attr: the deadline, Unix time.
DEADLINE_ATTR = "segpipe.deadline"


def set_deadline(study: optuna.Study, budget_minutes: float) -> float:
    """The study's deadline: ``budget_minutes`` from now, unless it has one already (a
    resumed run keeps the first)."""
    if DEADLINE_ATTR not in study.user_attrs:
        study.set_user_attr(DEADLINE_ATTR, time.time() + 60 * budget_minutes)
    return float(study.user_attrs[DEADLINE_ATTR])


def study_deadline(study: optuna.Study) -> float | None:
    """The study's budget deadline (Unix time), if it has one."""
    deadline = study.user_attrs.get(DEADLINE_ATTR)
    return None if deadline is None else float(deadline)

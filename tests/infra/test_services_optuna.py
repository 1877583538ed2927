"""Optuna as a team runs it: worker processes sharing one study in PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.services

WORKER = Path(__file__).with_name("optuna_worker.py")


def test_two_worker_processes_share_one_postgres_study(services):
    import optuna

    storage = services["OPTUNA_STORAGE"]
    assert storage.startswith("postgresql")
    study_name = f"infra-test-{uuid.uuid4().hex[:8]}"
    optuna.create_study(
        study_name=study_name, storage=storage, sampler=optuna.samplers.RandomSampler(seed=0)
    )
    trials_per_worker = 5
    workers = [
        subprocess.Popen(
            [sys.executable, str(WORKER), storage, study_name, str(trials_per_worker)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    for worker in workers:
        output, _ = worker.communicate(timeout=180)
        assert worker.returncode == 0, output

    study = optuna.load_study(study_name=study_name, storage=storage)
    trials = study.get_trials(deepcopy=False)
    assert len(trials) == 2 * trials_per_worker
    assert sorted(trial.number for trial in trials) == list(range(2 * trials_per_worker))
    assert {trial.state for trial in trials} == {optuna.trial.TrialState.COMPLETE}
    assert {trial.user_attrs["worker_pid"] for trial in trials} == {w.pid for w in workers}
    assert study.best_value == min(trial.value for trial in trials)
    optuna.delete_study(study_name=study_name, storage=storage)

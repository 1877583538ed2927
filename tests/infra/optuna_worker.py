"""One Optuna worker process: joins a study in shared storage and runs trials. Started by
test_services_optuna.py as `python optuna_worker.py STORAGE STUDY N_TRIALS`."""

from __future__ import annotations

import os
import sys
import time

import optuna


def objective(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -10.0, 10.0)
    trial.set_user_attr("worker_pid", os.getpid())
    time.sleep(0.2)  # long enough that the two workers' trials interleave
    return (x - 2.0) ** 2


def main() -> None:
    storage, study_name, n_trials = sys.argv[1], sys.argv[2], int(sys.argv[3])
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=study_name, storage=storage)
    study.optimize(objective, n_trials=n_trials)


if __name__ == "__main__":
    main()

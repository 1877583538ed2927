"""One tuning worker process: ``python -m components.tune_worker SPEC [--worker I]
[--n-trials N]``. The storage URL comes from SEGPIPE_OPTUNA_STORAGE, never from the spec
file, since it may carry a database password."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from components.tune import STORAGE_ENV, TuneOptions, run_worker


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("spec", type=Path)
    parser.add_argument("--worker", type=int, default=0)
    parser.add_argument("--n-trials", type=int, default=None)
    args = parser.parse_args(argv)
    spec = json.loads(args.spec.read_text())
    storage = os.environ.get(STORAGE_ENV)
    if not storage:
        raise SystemExit(f"{STORAGE_ENV} is not set")
    run_worker(Path(spec["dataset_dir"]), Path(spec["split_path"]), Path(spec["stats_path"]),
               TuneOptions.model_validate(spec["options"]), Path(spec["out_dir"]), storage,
               args.n_trials, args.worker, spec.get("parent_run_id"))


if __name__ == "__main__":
    main()

"""One tune worker in its own process, as a Kubeflow tune-worker task runs it: resume the
pipeline's parent run from its context file, then run this worker's share of the study.

    python -m tests.components.tune_worker_process CONTEXT DATASET OPTIONS WORKER OUT
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from components.dataset_paths import PreparedDataset
from components.parent_run import RunContext, resume_parent_run
from components.tune import run_tune_worker
from components.tune_options import TuneOptions


def main(context_path: str, dataset: str, options_path: str, worker: str, out: str) -> None:
    context = RunContext.load(context_path)
    options = TuneOptions.model_validate_json(Path(options_path).read_text())
    with resume_parent_run(context):
        summary = run_tune_worker(PreparedDataset(dataset), options, context.optuna_storage,
                                  context.study_name, int(worker), Path(out))
    print(json.dumps(summary))


if __name__ == "__main__":
    from serving import quick_exit

    quick_exit.install()  # as a Kubeflow task's process: no seconds-long exit after training
    main(*sys.argv[1:])

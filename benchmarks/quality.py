"""Model quality within a wall-clock budget: what segpipe's default recipe learns.

For each case, prepares the dataset through the real data plane, tunes with the default
recipe (``TuneOptions()``: its search space, trials and epochs) under
``tuning.budget_minutes``, selects the best trial and evaluates it on the test split: whole
test scenes at native resolution as served (``scene_miou``, the headline) and test tiles
(``tile_miou``). Cases:

- ``real``: the folder given with ``--source`` (e.g. the tea-plantations chips; its default
  scene split leaves too few scenes, so the split is ``block``);
- ``synthetic``: a generated multi-class set (components/sample_data.py).

Prints one JSON document per case (a line each) with the figures, the settings, the wall
time, the epochs each trial ran and the load average at start and end; never passes or
fails on quality or time. The budget is a parameter, so a larger machine or a GPU runs the
same script.

    nice -n 5 python benchmarks/quality.py --source DIR --budget-minutes 20 --cases real
    nice -n 5 python benchmarks/quality.py --budget-minutes 5 --cases synthetic
    python benchmarks/quality.py --source DIR --config my.yaml --budget-minutes 60

``--config`` takes a pipeline config: its ``data`` section holds any prepare option (palette,
layouts, ``split: {strategy: group, group_by: parent}``...) and its ``tuning`` section the
recipe; ``--patch-size``, ``--split``, ``--block-size``, ``--n-trials``, ``--epochs`` and the
budget go over it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


PATCH_SIZE, SPLIT = 128, "block"  # the real set's scenes are too few for a 'scene' split


def case_options(args: argparse.Namespace):
    """PrepareOptions and TuneOptions: the config's data and tuning sections (when given),
    the command line over them, validated before any work (ConfigError naming the field)."""
    from pydantic import ValidationError

    from components.prepare import PrepareOptions
    from components.tune_options import TuneOptions
    from pipelines.config_file import ConfigError, format_validation_error, read_yaml

    sections = read_yaml(args.config) if args.config else {}
    data, tuning = dict(sections.get("data") or {}), dict(sections.get("tuning") or {})
    tile, split = dict(data.get("tile") or {}), dict(data.get("split") or {})
    tile["patch_size"] = args.patch_size or tile.get("patch_size", PATCH_SIZE)
    split["strategy"] = args.split or split.get("strategy", SPLIT)
    if args.block_size:
        split["block_size"] = args.block_size
    tuning["budget_minutes"] = args.budget_minutes
    tuning.update({k: v for k, v in (("n_trials", args.n_trials), ("epochs", args.epochs)) if v})
    origin = f"{args.config} + options" if args.config else "options"
    validated = []
    for name, model, values in (("data", PrepareOptions, {**data, "tile": tile, "split": split}),
                                ("tuning", TuneOptions, tuning)):
        try:
            validated.append(model.model_validate(values))
        except ValidationError as err:
            raise ConfigError(format_validation_error(origin, err, prefix=name)) from None
    return tuple(validated)


def run_case(name: str, source: Path, work: Path, args: argparse.Namespace) -> dict:
    import mlflow
    import optuna

    from components.dataset_paths import PreparedDataset
    from components.evaluate import evaluate_model
    from components.evaluate_options import EvaluateOptions
    from components.prepare import prepare_dataset
    from components.tune import prepare_study, run_tune_worker, select_best_trial

    load_at_start, started = _load(), time.perf_counter()
    prepare, options = case_options(args)
    summary = prepare_dataset(source, work / "dataset", prepare)
    dataset = PreparedDataset(work / "dataset")
    prepared = time.perf_counter()

    storage = f"sqlite:///{work / 'optuna.db'}"
    mlflow.set_tracking_uri(f"sqlite:///{work / 'mlflow.db'}")
    mlflow.set_experiment(f"quality-{name}")
    with mlflow.start_run(run_name=name) as run:
        prepare_study(options, storage, name)
        worker = run_tune_worker(dataset, options, storage, name, 0, work / "worker")
        best = select_best_trial(storage, name, [(work / "worker", worker)], work / "model")
    searched = mlflow.artifacts.load_dict(f"runs:/{run.info.run_id}/search_space.json")
    tuned = time.perf_counter()
    result = evaluate_model(work / "model", dataset, work / "evaluation", overlay_tiles=0,
                            batch_size=EvaluateOptions().batch_size, log_to_mlflow=False)
    evaluated = time.perf_counter()

    trials = optuna.load_study(study_name=name, storage=storage).trials
    return {
        "benchmark": "quality", "case": name, "source": str(source),
        "scene_miou": result.metrics.get("miou"),
        "tile_miou": result.metrics.get("tile_miou"),
        "scene_pixel_accuracy": result.metrics.get("pixel_accuracy"),
        "class_iou": result.class_iou, "tile_class_iou": result.tile_class_iou,
        "best_val_miou": best["best_value"], "best_trial": best["trial_number"],
        "trials": {state: sum(t.state.name == state for t in trials)
                   for state in ("COMPLETE", "PRUNED", "FAIL")},
        "epochs_per_trial": [len(t.intermediate_values) for t in trials],
        "best_trial_params": next(t.params for t in trials if t.number == best["trial_number"]),
        "minutes": {"prepare": round((prepared - started) / 60, 2),
                    "tune": round((tuned - prepared) / 60, 2),
                    "evaluate": round((evaluated - tuned) / 60, 2),
                    "total": round((evaluated - started) / 60, 2)},
        "tiles": {split: figures.tiles for split, figures in summary.splits.items()},
        "test_scenes": result.scene_count,
        "settings": {"budget_minutes": args.budget_minutes,
                     "patch_size": prepare.tile.patch_size,
                     "split": prepare.split.strategy,
                     "block_size": prepare.split.block_size, "n_trials": options.n_trials,
                     "epochs": options.epochs, "classes": result.class_names,
                     "architectures": searched["architecture"]["choices"],
                     "encoder_weights": searched["models"]["encoder_unet"]["encoder_weights"]
                     ["choices"] if "encoder_unet" in searched["architecture"]["choices"]
                     and "encoder_weights" in searched["models"].get("encoder_unet", {})
                     else None},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version()},
        "load_average_at_start": load_at_start, "load_average_at_end": _load(),
    }


def main(argv: list[str] | None = None) -> int:
    from serving import quick_exit

    quick_exit.install()  # the figures are taken before exit; the exit's last GC is seconds
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", "--data", dest="data", type=Path,
                        help="real dataset folder (case 'real')")
    parser.add_argument("--config", type=Path, help="pipeline config: its data and tuning "
                        "sections (any prepare option; the recipe)")
    parser.add_argument("--cases", nargs="+", choices=("real", "synthetic"),
                        help="default: both with --data, else synthetic (as `make bench` runs)")
    parser.add_argument("--budget-minutes", type=float, default=3.0,
                        help="tuning.budget_minutes per case")
    parser.add_argument("--patch-size", type=int, help=f"default: the config's, else {PATCH_SIZE}")
    parser.add_argument("--split", help=f"split strategy; default: the config's, else {SPLIT} "
                        "(the real set's scenes are too few for 'scene')")
    parser.add_argument("--block-size", type=int, default=0, help="block split: block side "
                        "in pixels; 0: the config's, else the split step's default")
    parser.add_argument("--n-trials", type=int, default=0, help="0: the recipe's default")
    parser.add_argument("--epochs", type=int, default=0, help="0: the recipe's default")
    parser.add_argument("--synthetic-scenes", type=int, default=8)
    parser.add_argument("--synthetic-size", type=int, default=256)
    parser.add_argument("--workdir", type=Path, help="keep the datasets, stores and models "
                        "here (default: a temporary folder, removed)")
    args = parser.parse_args(argv)
    args.cases = args.cases or (["real", "synthetic"] if args.data else ["synthetic"])
    if "real" in args.cases and (args.data is None or not args.data.is_dir()):
        parser.error("case 'real' needs --source DIR, an existing dataset folder")
    if args.budget_minutes <= 0:
        parser.error("--budget-minutes must be > 0")
    from pipelines.config_file import ConfigError
    from serving.quiet import import_tensorflow_quietly

    import_tensorflow_quietly()  # the recipe's models import it; its chatter is not news
    try:
        case_options(args)  # bad settings are one message before any work
    except ConfigError as err:
        parser.error(str(err))

    from components.sample_data import generate_sample_dataset

    with tempfile.TemporaryDirectory(prefix="segpipe-quality-") as tmp:
        root = args.workdir or Path(tmp)
        for case in args.cases:
            work = root / case
            work.mkdir(parents=True, exist_ok=False)
            if case == "real":
                source = args.data
            else:
                source = generate_sample_dataset(work / "source", scenes=args.synthetic_scenes,
                                                 size=args.synthetic_size, seed=0)
            try:
                figures = run_case(case, source, work, args)
            except (ValueError, RuntimeError) as err:  # DataError, TuneError, ArtifactError
                print(f"quality.py: case {case}: {err}", file=sys.stderr)
                return 1
            print(json.dumps(figures), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

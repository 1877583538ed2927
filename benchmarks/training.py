"""Training input pipeline vs in-memory batches: train steps/s per architecture.

Builds a sample dataset through the real data plane (sample scenes -> prepare), then for
each architecture trains the same small model on (a) the real tf.data pipeline of
components.train_data (GeoTIFF decode, normalization, cache, shuffle, batch, crop and
augmentation as TrainParams sets them by default, prefetch) and (b) the very batches that
pipeline produced, already materialized in memory. Both feed the same compiled model in
alternating epochs (so load from other processes hits both alike), after one warm-up epoch
each; figures are medians over ``--rounds``. ``ratio`` = pipeline steps/s / in-memory
steps/s (median of adjacent pairs); target >= 0.95 (docs/design.md: >= 0.9). ``cpu_ratio`` compares
the process's CPU seconds per step instead, which other processes' load barely moves. The
warm-up epoch of (a) decodes every tile (cold) and is reported separately. The models are
small (64 px tiles, few filters), so the pipeline's share of a step is far larger than in
real training: a worst case.

    nice python benchmarks/training.py [--architectures unet encoder_unet] [--augment d4]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import get_args

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from components.artifacts import ClassMap, NormStats, TileManifest  # noqa: E402
from components.dataset_paths import DatasetPaths
from components.prepare import PrepareOptions, prepare_dataset  # noqa: E402
from components.sample_data import generate_sample_dataset  # noqa: E402
from components.tile import TileOptions  # noqa: E402
from components.train_data import Augment, make_dataset, make_source  # noqa: E402
from components.train_options import TrainParams  # noqa: E402
from segmodels import MeanIoU, available_models, build_loss, build_model  # noqa: E402


class EpochTimes(keras.callbacks.Callback):
    """Wall-clock and process CPU seconds (every thread: model and tf.data) of each epoch."""

    def __init__(self) -> None:
        super().__init__()
        self.seconds: list[tuple[float, float]] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = (time.perf_counter(), time.process_time())

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append((time.perf_counter() - self._start[0],
                             time.process_time() - self._start[1]))


def _model(architecture: str, classes: int, bands: int, args) -> keras.Model:
    keras.utils.set_random_seed(0)
    if architecture == "encoder_unet":  # the default encoder, as shallow as the U-Nets
        params = {"encoder_depth": args.depth, "decoder_filters": args.filters}
    else:
        params = {"depth": args.depth, "filters": args.filters}
    model = build_model(architecture, classes, bands, **params)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=build_loss("ce", classes),
                  metrics=[MeanIoU(classes)])
    return model


def _epoch_seconds(model: keras.Model, data: tf.data.Dataset) -> tuple[float, float]:
    """(wall, CPU) seconds of one epoch."""
    timer = EpochTimes()
    model.fit(data, epochs=1, callbacks=[timer], verbose=0)
    return timer.seconds[0]


def _median(values: list[float]) -> float:
    return float(np.median(values))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--architectures", nargs="+",
                        default=[a for a in ("unet", "attention_unet", "unet_aspp",
                                             "encoder_unet") if a in available_models()])
    parser.add_argument("--scenes", type=int, default=8)
    parser.add_argument("--scene-size", type=int, default=512)
    parser.add_argument("--patch", type=int, default=64)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--filters", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=15, help="timed epochs per input")
    defaults = TrainParams()
    parser.add_argument("--augment", default=defaults.augment, choices=get_args(Augment))
    parser.add_argument("--crop", type=int, default=defaults.crop_size,
                        help="training crop size (default: whole tiles)")
    args = parser.parse_args()
    load_before = os.getloadavg()

    with tempfile.TemporaryDirectory() as tmp:
        source = generate_sample_dataset(Path(tmp) / "source", scenes=args.scenes,
                                         size=args.scene_size, seed=0)
        root = Path(tmp) / "dataset"
        prepare_dataset(source, root, PrepareOptions(tile=TileOptions(patch_size=args.patch)))
        paths = DatasetPaths(root)
        classes = ClassMap.load(paths.classes).num_classes
        stats = NormStats.load(paths.stats)
        patch = TileManifest.load(paths.tiles_manifest).patch_size
        train = make_source(paths.tiles_dir, paths.split, "train", stats, patch)
        results = []
        for architecture in args.architectures:
            pipeline = make_dataset(train, args.batch, training=True, augment=args.augment,
                                    crop_size=args.crop, drop_remainder=True)
            model = _model(architecture, classes, len(stats.bands), args)
            cold, _ = _epoch_seconds(model, pipeline)
            batches = [(x.numpy(), y.numpy()) for x, y in pipeline]
            steps = len(batches)
            in_memory = tf.data.Dataset.from_tensor_slices(
                (np.stack([b[0] for b in batches]), np.stack([b[1] for b in batches])))
            _epoch_seconds(model, in_memory)
            real, memory = [], []  # (wall, cpu) per round, each pair adjacent in time
            for _ in range(args.rounds):
                real.append(_epoch_seconds(model, pipeline))
                memory.append(_epoch_seconds(model, in_memory))
            real_rate = [steps / wall for wall, _ in real]
            memory_rate = [steps / wall for wall, _ in memory]
            results.append({
                "architecture": architecture, "steps_per_epoch": steps,
                "parameters": model.count_params(),
                "pipeline_cold_steps_per_s": round(steps / cold, 2),
                "pipeline_steps_per_s": round(_median(real_rate), 2),
                "in_memory_steps_per_s": round(_median(memory_rate), 2),
                # each round's pipeline epoch over the in-memory epoch right after it (the
                # same load from other processes), median over rounds
                "ratio": round(_median([r / m for r, m in zip(real_rate, memory_rate,
                                                              strict=True)]), 3),
                "ratio_of_medians": round(_median(real_rate) / _median(memory_rate), 3),
                # CPU seconds per step (model + pipeline threads), in memory over pipeline:
                # what the pipeline costs, nearly blind to other processes' load; a lower
                # bound of the wall-clock ratio when the model leaves no core idle
                "cpu_ratio": round(_median([m[1] / r[1] for r, m in zip(real, memory,
                                                                        strict=True)]), 3),
                "pipeline_cpu_ms_per_step": round(1000 * _median([c for _, c in real]) / steps,
                                                  2),
                "in_memory_cpu_ms_per_step": round(
                    1000 * _median([c for _, c in memory]) / steps, 2),
                "pipeline_steps_per_s_all": [round(r, 2) for r in real_rate],
                "in_memory_steps_per_s_all": [round(m, 2) for m in memory_rate]})
            keras.backend.clear_session()
    print(json.dumps({
        "benchmark": "training_input_pipeline",
        "inputs": {**vars(args), "train_tiles": len(train.tile_ids), "bands": len(stats.bands),
                   "classes": classes},
        "results": results,
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "cpus": os.cpu_count(), "load_average_before": load_before,
                    "load_average": os.getloadavg(),
                    "gpus": len(tf.config.list_physical_devices("GPU")),
                    "tensorflow": tf.__version__, "keras": keras.__version__},
    }, indent=2))


if __name__ == "__main__":
    main()

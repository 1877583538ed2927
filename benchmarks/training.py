"""Training input pipeline vs in-memory batches: train steps/s per architecture.

Builds a sample dataset through the real data plane (sample scenes -> prepare), then for
each architecture trains the same small model on (a) the real tf.data pipeline of
components.train_data (GeoTIFF decode, normalization, cache, shuffle, D4 augmentation,
batch, prefetch) and (b) the very batches that pipeline produced, already materialized in
memory. Both feed the same compiled model in alternating epochs (so load from other
processes hits both alike), after one warm-up epoch each; figures are medians over
``--rounds``. ``ratio`` = pipeline steps/s / in-memory steps/s; docs/design.md's target is
>= 0.9. The warm-up epoch of (a) decodes every tile (cold) and is reported separately.

    python benchmarks/training.py [--architectures unet attention_unet unet_aspp]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from components.artifacts import ClassMap, DatasetPaths, NormStats, TileManifest  # noqa: E402
from components.prepare import PrepareOptions, prepare_dataset  # noqa: E402
from components.sample_data import generate_sample_dataset  # noqa: E402
from components.tile import TileOptions  # noqa: E402
from components.train_data import make_dataset, make_source  # noqa: E402
from segmodels import MeanIoU, available_models, build_loss, build_model  # noqa: E402


class EpochTimes(keras.callbacks.Callback):
    def __init__(self) -> None:
        super().__init__()
        self.seconds: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


def _model(architecture: str, classes: int, bands: int, args) -> keras.Model:
    keras.utils.set_random_seed(0)
    model = build_model(architecture, classes, bands, depth=args.depth, filters=args.filters)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=build_loss("ce", classes),
                  metrics=[MeanIoU(classes)])
    return model


def _epoch_seconds(model: keras.Model, data: tf.data.Dataset) -> float:
    timer = EpochTimes()
    model.fit(data, epochs=1, callbacks=[timer], verbose=0)
    return timer.seconds[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--architectures", nargs="+",
                        default=[a for a in ("unet", "attention_unet", "unet_aspp")
                                 if a in available_models()])
    parser.add_argument("--scenes", type=int, default=8)
    parser.add_argument("--scene-size", type=int, default=512)
    parser.add_argument("--patch", type=int, default=64)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--filters", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5, help="timed epochs per input")
    parser.add_argument("--augment", default="d4", choices=["none", "d4", "d4_color"])
    args = parser.parse_args()

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
                                    drop_remainder=True)
            model = _model(architecture, classes, len(stats.bands), args)
            cold = _epoch_seconds(model, pipeline)
            batches = [(x.numpy(), y.numpy()) for x, y in pipeline]
            steps = len(batches)
            in_memory = tf.data.Dataset.from_tensor_slices(
                (np.stack([b[0] for b in batches]), np.stack([b[1] for b in batches])))
            _epoch_seconds(model, in_memory)
            real, memory = [], []
            for _ in range(args.rounds):
                real.append(steps / _epoch_seconds(model, pipeline))
                memory.append(steps / _epoch_seconds(model, in_memory))
            median_real, median_memory = float(np.median(real)), float(np.median(memory))
            results.append({"architecture": architecture, "steps_per_epoch": steps,
                            "parameters": model.count_params(),
                            "pipeline_cold_steps_per_s": round(steps / cold, 2),
                            "pipeline_steps_per_s": round(median_real, 2),
                            "in_memory_steps_per_s": round(median_memory, 2),
                            "ratio": round(median_real / median_memory, 3),
                            "pipeline_steps_per_s_all": [round(r, 2) for r in real],
                            "in_memory_steps_per_s_all": [round(m, 2) for m in memory]})
            keras.backend.clear_session()
    print(json.dumps({
        "benchmark": "training_input_pipeline",
        "inputs": {**vars(args), "train_tiles": len(train.tile_ids), "bands": len(stats.bands),
                   "classes": classes},
        "results": results,
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "cpus": os.cpu_count(), "load_average": os.getloadavg(),
                    "gpus": len(tf.config.list_physical_devices("GPU")),
                    "tensorflow": tf.__version__, "keras": keras.__version__},
    }, indent=2))


if __name__ == "__main__":
    main()

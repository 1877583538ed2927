"""Training throughput on a GPU with JAX: images/s per architecture in float32 vs mixed
precision (float16 compute, float32 softmax and weights), and the input pipeline's share.

For GPU machines without TensorFlow: imports keras (KERAS_BACKEND=jax unless set), numpy
and segmodels only -- never tensorflow or components.train_data. Its input pipeline is the
numpy twin of components.train_data's steady state: normalized tiles cached in memory ->
per-epoch shuffle -> batch -> random crop + D4 view (one gather, image and mask alike) +
photometric jitter (components.train_augment's ranges), built by worker threads ahead of
the model through ``keras.utils.PyDataset``. Each configuration trains the same compiled
model on (a) that pipeline and (b) the very batches it produced, kept in memory, in
alternating epochs after a warm-up epoch (which compiles); figures are medians over
``--rounds``. ``ratio`` = (a) / (b); ``mixed_speedup`` = mixed / float32 images/s in memory.
On JAX every train step is XLA-compiled (jit), so "float32" is float32 + XLA; the gain
measured is mixed precision's.

    KERAS_BACKEND=jax python benchmarks/training_gpu.py              # 256 px, batch 16, GPU
    KERAS_BACKEND=jax JAX_PLATFORMS=cpu python benchmarks/training_gpu.py --size 32 \\
        --tiles 8 --batch 4 --steps 2 --rounds 1 --unet-depth 2 --unet-filters 2 \\
        --encoder mobilenetv2 --encoder-width 0.35 --encoder-depth 2 --decoder-filters 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
import numpy as np  # noqa: E402

import segmodels  # noqa: E402
from segmodels import views  # noqa: E402

IGNORE = 255


def synthetic_tiles(count: int, size: int, bands: int, classes: int, seed: int = 0
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Normalized tiles (z-scores, nodata 0) and masks like a prepared dataset's: blocky
    classes, class-dependent band levels in uint16 counts, a nodata corner."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, classes, size=(count, 8, 8))
    masks = np.kron(blocks, np.ones((1, -(-size // 8), -(-size // 8)), np.int64))
    masks = masks[:, :size, :size].astype(np.uint8)
    levels = rng.uniform(200, 3000, size=(classes, bands))
    raw = levels[masks] + rng.normal(0, 150, size=(count, size, size, bands))
    corner = max(size // 8, 1)
    masks[:, :corner, :corner] = IGNORE
    valid = masks != IGNORE
    mean, std = raw[valid].mean(axis=0), raw[valid].std(axis=0)
    images = ((raw - mean) / std).astype(np.float32)
    images[~valid] = 0.0
    return images, masks


class Augmenter:
    """The numpy twin of components.train_augment.BatchAugmenter("d4_color"): the same
    draws give the same crop, view and photometric jitter."""

    def __init__(self, tile: int, crop: int, bands: int, z_low: np.ndarray,
                 z_high: np.ndarray, seed: int = 0) -> None:
        self.tile, self.crop, self.bands = tile, crop, bands
        self.maps = views.view_index_maps(tile, crop)
        self.z_low = np.asarray(z_low, np.float32)
        self.span = np.asarray(z_high, np.float32) - self.z_low
        self.noise_fields = np.random.default_rng(seed).normal(
            size=(views.NOISE_FIELDS, views.NOISE_SIDE, views.NOISE_SIDE, bands)).astype(np.float32)

    def apply(self, images: np.ndarray, masks: np.ndarray, draws: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
        batch, bands = images.shape[0], images.shape[-1]
        positions = self.tile - self.crop + 1
        views = np.minimum((draws[:, 0] * 8).astype(np.int32), 7)
        offsets = np.minimum((draws[:, 1:3] * positions).astype(np.int32), positions - 1)
        index = self.maps[views] + (offsets[:, 0] * self.tile + offsets[:, 1])[:, None]
        x = np.take_along_axis(images.reshape(batch, -1, bands), index[..., None], axis=1)
        y = np.take_along_axis(masks.reshape(batch, -1), index, axis=1)
        shape = (batch, self.crop, self.crop)
        return self.photometric(x.reshape(*shape, bands), draws), y.reshape(shape)

    def photometric(self, x: np.ndarray, draws: np.ndarray) -> np.ndarray:
        def column(name: str) -> np.ndarray:
            return draws[:, views.DRAWS.index(name), None, None, None]

        unit = np.clip((x - self.z_low) * (1.0 / self.span), 0.0, 1.0)
        out = x + (2 * column("tone") - 1) * views.TONE * unit * (1 - unit) * self.span
        contrast = np.exp((2 * column("contrast") - 1) * np.log(views.CONTRAST))
        shift = ((2 * column("brightness") - 1) * views.BRIGHTNESS
                 + (2 * draws[:, None, None, len(views.DRAWS):] - 1) * views.BAND_SHIFT)
        field = (draws[:, views.DRAWS.index("noise_field")] * views.NOISE_FIELDS).astype(np.int32)
        reps = -(-self.crop // views.NOISE_SIDE)
        noise = np.tile(self.noise_fields[field], (1, reps, reps, 1))[:, :self.crop, :self.crop]
        out = out * contrast + shift + noise * (column("noise_std") * views.NOISE)
        out[x == 0] = 0.0
        return out.astype(np.float32)

    def __call__(self, images: np.ndarray, masks: np.ndarray, rng: np.random.Generator
                 ) -> tuple[np.ndarray, np.ndarray]:
        draws = rng.random((images.shape[0], len(views.DRAWS) + self.bands), dtype=np.float32)
        return self.apply(images, masks, draws)


class AugmentedBatches(keras.utils.PyDataset):
    """Shuffled, augmented batches of cached tiles, built by worker threads ahead of use."""

    def __init__(self, images: np.ndarray, masks: np.ndarray, batch: int, steps: int,
                 augmenter: Augmenter, seed: int = 0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.images, self.masks, self.batch, self.steps = images, masks, batch, steps
        self.augmenter, self.seed, self.epoch = augmenter, seed, 0

    def __len__(self) -> int:
        return self.steps

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng((self.seed, self.epoch, i))
        order = np.random.default_rng((self.seed, self.epoch)).permutation(len(self.images))
        pick = order[(np.arange(self.batch) + i * self.batch) % len(order)]
        return self.augmenter(self.images[pick], self.masks[pick], rng)

    def on_epoch_end(self) -> None:
        self.epoch += 1


class InMemoryBatches(keras.utils.PyDataset):
    """Ready batches, served through the same PyDataset machinery."""

    def __init__(self, batches: list, **kwargs) -> None:
        super().__init__(**kwargs)
        self.batches = batches

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int):
        return self.batches[i]


class EpochTimes(keras.callbacks.Callback):
    def __init__(self) -> None:
        super().__init__()
        self.seconds: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


def _epoch_seconds(model: keras.Model, data: keras.utils.PyDataset) -> float:
    timer = EpochTimes()
    model.fit(data, epochs=1, callbacks=[timer], verbose=0)
    return timer.seconds[0]


def configurations(args) -> dict[str, tuple[str, dict]]:
    return {
        "unet": ("unet", {"depth": args.unet_depth, "filters": args.unet_filters}),
        "encoder_unet": ("encoder_unet", {"encoder": args.encoder,
                                          "encoder_width": args.encoder_width,
                                          "encoder_depth": args.encoder_depth,
                                          "decoder_filters": args.decoder_filters}),
    }


def measure(name: str, params: dict, precision: str, data, args) -> dict:
    train, memory = data
    keras.mixed_precision.set_global_policy(precision)
    try:
        keras.utils.set_random_seed(0)
        model = segmodels.build_model(name, args.classes, args.bands, **params)
        model.compile(optimizer=keras.optimizers.Adam(1e-3),
                      loss=segmodels.build_loss("ce+dice", args.classes), jit_compile=True)
        _epoch_seconds(model, train)  # compiles
        _epoch_seconds(model, memory)
        real, ready = [], []
        for _ in range(args.rounds):
            real.append(args.steps * args.batch / _epoch_seconds(model, train))
            ready.append(args.steps * args.batch / _epoch_seconds(model, memory))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    median_real, median_ready = float(np.median(real)), float(np.median(ready))
    return {"precision": precision, "parameters": int(model.count_params()),
            "pipeline_images_per_s": round(median_real, 2),
            "in_memory_images_per_s": round(median_ready, 2),
            "ratio": round(median_real / median_ready, 3),
            "in_memory_step_ms": round(1000 * args.batch / median_ready, 2),
            "pipeline_images_per_s_all": [round(r, 2) for r in real],
            "in_memory_images_per_s_all": [round(r, 2) for r in ready]}


def machine() -> dict:
    info = {"platform": platform.platform(), "cpus": os.cpu_count(),
            "load_average": os.getloadavg(), "backend": keras.backend.backend(),
            "keras": keras.__version__, "numpy": np.__version__,
            "tensorflow_imported": sys.modules.get("tensorflow") is not None}
    if keras.backend.backend() == "jax":
        import jax

        info["jax"] = jax.__version__
        info["devices"] = [str(d) for d in jax.devices()]
    return info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--architectures", nargs="+", default=["encoder_unet", "unet"],
                        choices=["encoder_unet", "unet"])
    parser.add_argument("--precisions", nargs="+", default=["float32", "mixed_float16"],
                        choices=["float32", "mixed_float16", "mixed_bfloat16"])
    parser.add_argument("--size", type=int, default=256, help="tile size")
    parser.add_argument("--crop", type=int, default=None, help="training crop (default: tile)")
    parser.add_argument("--bands", type=int, default=4)
    parser.add_argument("--classes", type=int, default=6)
    parser.add_argument("--tiles", type=int, default=256, help="cached tiles")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=40, help="steps per timed epoch")
    parser.add_argument("--rounds", type=int, default=3, help="timed epochs per input")
    parser.add_argument("--workers", type=int, default=max((os.cpu_count() or 2) // 2, 1))
    parser.add_argument("--unet-depth", type=int, default=5)
    parser.add_argument("--unet-filters", type=int, default=32)
    parser.add_argument("--encoder", default="efficientnetv2b0",
                        choices=segmodels.available_encoders())
    parser.add_argument("--encoder-width", type=float, default=1.0)
    parser.add_argument("--encoder-depth", type=int, default=5)
    parser.add_argument("--decoder-filters", type=int, default=16)
    args = parser.parse_args()
    crop = args.crop or args.size
    load_before = os.getloadavg()

    images, masks = synthetic_tiles(args.tiles, args.size, args.bands, args.classes)
    valid = masks != IGNORE
    z_low = np.percentile(images[valid], 2, axis=0).astype(np.float32)
    z_high = np.percentile(images[valid], 98, axis=0).astype(np.float32)
    augmenter = Augmenter(args.size, crop, args.bands, z_low, z_high)
    queue = {"workers": args.workers, "max_queue_size": 2 * args.workers}
    train = AugmentedBatches(images, masks, args.batch, args.steps, augmenter, **queue)
    memory = InMemoryBatches([train[i] for i in range(args.steps)], **queue)
    start = time.perf_counter()
    for i in range(args.steps):
        train[i]
    single_thread = args.steps * args.batch / (time.perf_counter() - start)

    results = []
    for config, (name, params) in configurations(args).items():
        if config not in args.architectures:
            continue
        for precision in args.precisions:
            results.append({"architecture": config, "config": params,
                            **measure(name, params, precision, (train, memory), args)})
            print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    speedups = {}
    for config in args.architectures:
        rates = {r["precision"]: r["in_memory_images_per_s"] for r in results
                 if r["architecture"] == config}
        if "float32" in rates and len(rates) > 1:
            speedups[config] = {p: round(v / rates["float32"], 2) for p, v in rates.items()
                                if p != "float32"}
    print(json.dumps({
        "benchmark": "training_gpu",
        "inputs": {**vars(args), "crop": crop},
        "pipeline_alone_images_per_s_one_thread": round(single_thread, 1),
        "results": results, "mixed_speedup": speedups,
        "machine": {**machine(), "load_average_before": load_before},
    }, indent=2))


if __name__ == "__main__":
    main()

"""Per-architecture cost: parameters, FLOPs per tile, train and predict images/s.

Prints one JSON document with the inputs, the figures and the machine. Never passes or
fails on time. FLOPs come from TensorFlow's graph profiler (2 FLOPs per multiply-add, the
inference graph of one tile) and are only measured on the TensorFlow backend.

    python benchmarks/models.py                       # every configuration, 256x256, CPU
    python benchmarks/models.py --architectures unet encoder_unet/mobilenetv2
    KERAS_BACKEND=jax python benchmarks/models.py --mixed-precision   # e.g. on a GPU

Configurations are ``architecture`` or ``architecture/variant`` (the encoder U-Net per
encoder, and its stride-16 variants "_d4" that drop the encoder's last stage).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
import numpy as np  # noqa: E402

import segmodels  # noqa: E402

CONFIGS: dict[str, dict] = {
    "unet": {"depth": 5, "filters": 32},
    "attention_unet": {"depth": 5, "filters": 32},
    "unet_aspp": {"depth": 5, "filters": 32},
    "deeplabv3plus": {},
    "pix2pix": {"depth": 5, "filters": 32},
    **{f"encoder_unet/{encoder}{suffix}": {"encoder": encoder, "encoder_depth": depth}
       for encoder in ("mobilenetv2", "efficientnetv2b0", "resnet50")
       for suffix, depth in (("", 5), ("_d4", 4))},
}


def count_flops(model: keras.Model, size: int, bands: int) -> int | None:
    """Inference FLOPs of one size x size tile, from TensorFlow's profiler."""
    if keras.backend.backend() != "tensorflow":
        return None
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    function = tf.function(lambda x: model(x, training=False))
    concrete = function.get_concrete_function(tf.TensorSpec((1, size, size, bands), tf.float32))
    graph = convert_variables_to_constants_v2(concrete).graph
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    profile = tf.compat.v1.profiler.profile(graph=graph, run_meta=tf.compat.v1.RunMetadata(),
                                            cmd="op", options=options)
    return int(profile.total_float_ops)


def images_per_second(step, batch_size: int, steps: int) -> float:
    step()  # trace/compile outside the timing
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return batch_size * steps / (time.perf_counter() - start)


def measure(config: str, params: dict, args) -> dict:
    rng = np.random.default_rng(0)
    images = rng.normal(size=(args.batch_size, args.size, args.size, args.bands)).astype("float32")
    labels = rng.integers(0, args.classes, size=(args.batch_size, args.size, args.size))
    build_start = time.perf_counter()
    name = config.split("/")[0]
    model = segmodels.build_model(name, args.classes, args.bands, **params)
    build_s = time.perf_counter() - build_start
    inference_model = getattr(model, "generator", model)
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=segmodels.build_loss("ce", args.classes))
    flops = None if args.mixed_precision else count_flops(inference_model, args.size, args.bands)

    def train():
        model.train_on_batch(images, labels)

    def predict():
        np.asarray(model.predict_on_batch(images))

    train_rate = images_per_second(train, args.batch_size, args.steps)
    return {
        "params": int(model.count_params()),
        "inference_params": int(inference_model.count_params()),
        "stride": segmodels.model_stride(name, **params),
        "flops_per_tile": flops,
        "gflops_per_tile": None if flops is None else round(flops / 1e9, 2),
        "build_s": round(build_s, 2),
        "train_images_per_s": round(train_rate, 3),
        "train_step_s": round(args.batch_size / train_rate, 3),
        "predict_images_per_s": round(images_per_second(predict, args.batch_size, args.steps),
                                      3),
    }


def machine() -> dict:
    info = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_average_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "backend": keras.backend.backend(),
        "keras": keras.__version__,
        "numpy": np.__version__,
    }
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        info["tensorflow"] = tf.__version__
        info["devices"] = [d.name for d in tf.config.list_physical_devices()]
    elif keras.backend.backend() == "jax":
        import jax

        info["jax"] = jax.__version__
        info["devices"] = [str(d) for d in jax.devices()]
    return info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--architectures", nargs="*", default=list(CONFIGS),
                        choices=list(CONFIGS))
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--bands", type=int, default=4)
    parser.add_argument("--classes", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--steps", type=int, default=3, help="timed steps after a warm-up")
    parser.add_argument("--mixed-precision", action="store_true")
    args = parser.parse_args()
    if args.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")
    results = {}
    for name in args.architectures:
        results[name] = {"config": CONFIGS[name], **measure(name, CONFIGS[name], args)}
        print(f"{name}: {results[name]}", file=sys.stderr, flush=True)
    inputs = {k: v for k, v in vars(args).items() if k != "architectures"}
    inputs["precision"] = keras.mixed_precision.global_policy().name
    print(json.dumps({"benchmark": "segmodels.models", "inputs": inputs, "results": results,
                      "machine": machine()}, indent=2))


if __name__ == "__main__":
    main()

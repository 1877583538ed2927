"""CPU runtimes for the served model's forward pass. Prints JSON; never passes or fails.

The same Keras network (segmodels' ``unet`` at depth 4 with 32 filters, and
``deeplabv3plus``), on windows of ``--sizes`` pixels and batches of ``--batches``, under:

- ``tensorflow``: Keras ``predict_on_batch`` on the TensorFlow backend (what serving runs);
- ``tensorflow_xla``: the same, compiled with XLA (``model.compile(jit_compile=True)``);
- ``jax``: Keras on the JAX backend (its predict step is jit-compiled), in its own process
  with ``KERAS_BACKEND=jax``;
- ``onnxruntime``: ``model.export(format="onnx")`` (tf2onnx) run by ONNX Runtime;
- ``openvino``: ``model.export(format="openvino")`` run by OpenVINO's CPU plugin at f32.

Exports fix the window size (serving always feeds whole windows; DeepLabV3+'s bilinear
upsampling does not export with unknown H and W) and leave the batch free.

Each runtime runs in a fresh process pinned to ``--threads`` cores with that many threads,
times ``--calls`` calls per case after a warm-up call, and saves its answer to one fixed
input. A round runs every runtime once; ``--rounds`` rounds alternate the runtimes so the
machine's drift (other users' load) hits them alike. Reported per case: the median seconds
per call of each runtime, its speed-up over ``tensorflow`` (median of the per-round ratios)
and the largest absolute difference of its probabilities from ``tensorflow``'s.

    nice -n 5 python benchmarks/runtimes.py                   # everything, ~30 min on 2 cores
    python benchmarks/runtimes.py --models unet --sizes 256 --rounds 1   # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
BANDS, CLASSES = 4, 3
MODELS = {"unet": {"depth": 4, "filters": 32}, "deeplabv3plus": {}}
RUNTIMES = ("tensorflow", "tensorflow_xla", "jax", "onnxruntime", "openvino")


def case_name(model: str, size: int, batch: int) -> str:
    return f"{model}_{size}px_batch{batch}"


def sample(size: int, batch: int) -> np.ndarray:
    """The fixed input every runtime answers (z-scored bands, like serving's)."""
    return np.random.default_rng(size * 100 + batch).normal(
        size=(batch, size, size, BANDS)).astype(np.float32)


# --- worker: one runtime in its own process -------------------------------------------------

def _forward(runtime: str, work: Path, model: str, size: int, threads: int):
    """A callable (N, size, size, C) float32 -> (N, size, size, K) probabilities."""
    if runtime in ("tensorflow", "tensorflow_xla", "jax"):
        import segmodels

        network = segmodels.load_model(work / f"{model}.keras")
        if runtime == "tensorflow_xla":
            network.compile(jit_compile=True)
        return lambda x: np.asarray(network.predict_on_batch(x))
    if runtime == "onnxruntime":
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        session = onnxruntime.InferenceSession(str(work / f"{model}_{size}.onnx"), options,
                                               providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        return lambda x: session.run(None, {name: x})[0]
    if runtime == "openvino":
        import openvino

        compiled = openvino.Core().compile_model(
            str(work / f"{model}_{size}.xml"), "CPU",
            {"INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": "f32"})
        return lambda x: np.asarray(compiled(x)[0])
    raise ValueError(f"unknown runtime {runtime!r}")


def _configure_threads(runtime: str, threads: int) -> None:
    os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[:threads]))
    if runtime.startswith("tensorflow"):
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)


def run_worker(args: argparse.Namespace) -> None:
    _configure_threads(args.worker, args.threads)
    work = Path(args.work)
    results = {}
    for model in args.models:
        for size in args.sizes:
            forward = _forward(args.worker, work, model, size, args.threads)
            for batch in args.batches:
                x = sample(size, batch)
                out = forward(x)  # warm-up: traces, compiles, allocates
                seconds = []
                for _ in range(args.calls):
                    start = time.perf_counter()
                    forward(x)
                    seconds.append(time.perf_counter() - start)
                name = case_name(model, size, batch)
                np.save(work / f"out_{args.worker}_{name}.npy", np.asarray(out, np.float32))
                results[name] = seconds
    print(json.dumps(results))


# --- orchestration ---------------------------------------------------------------------------

def prepare(work: Path, models: list[str], sizes: list[int]) -> dict[str, str]:
    """Build each network with fixed seeds, save it, export ONNX and OpenVINO per size.
    Returns the export errors by artifact (a runtime without its file is skipped)."""
    import keras
    import tensorflow as tf

    from segmodels import build_model

    errors = {}
    for model in models:
        keras.utils.set_random_seed(0)
        network = build_model(model, num_classes=CLASSES, in_channels=BANDS, **MODELS[model])
        network.save(work / f"{model}.keras")
        for size in sizes:
            signature = [tf.TensorSpec((None, size, size, BANDS), tf.float32, name="image")]
            for fmt, suffix in (("onnx", "onnx"), ("openvino", "xml")):
                try:
                    network.export(str(work / f"{model}_{size}.{suffix}"), format=fmt,
                                   verbose=False, input_signature=signature)
                except Exception as exc:  # noqa: BLE001  (reported, the others still run)
                    errors[f"{model}_{size}.{suffix}"] = f"{type(exc).__name__}: {exc}"[:300]
    return errors


def worker_process(runtime: str, args: argparse.Namespace, work: Path) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", runtime,
               "--work", str(work), "--threads", str(args.threads), "--calls", str(args.calls),
               "--models", *args.models, "--sizes", *map(str, args.sizes),
               "--batches", *map(str, args.batches)]
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), TF_CPP_MIN_LOG_LEVEL="3",
               KERAS_BACKEND="jax" if runtime == "jax" else "tensorflow")
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if result.returncode:
        return {"error": result.stderr.strip()[-1500:]}
    return json.loads(result.stdout.strip().splitlines()[-1])


def summarize(rounds: list[dict[str, dict]], work: Path, cases: list[str]) -> dict:
    table = {}
    for case in cases:
        row = {}
        for runtime in RUNTIMES:
            per_round = [r[runtime][case] for r in rounds
                         if case in r.get(runtime, {}) and case in r.get("tensorflow", {})]
            if not per_round:
                errors = [r[runtime]["error"] for r in rounds if "error" in r.get(runtime, {})]
                row[runtime] = {"error": errors[0] if errors else "not run"}
                continue
            tf_rounds = [r["tensorflow"][case] for r in rounds
                         if case in r.get(runtime, {}) and case in r.get("tensorflow", {})]
            entry = {"seconds_per_call": round(statistics.median(
                         s for calls in per_round for s in calls), 4),
                     "speedup_over_tensorflow": round(statistics.median(
                         statistics.median(tf) / statistics.median(own)
                         for tf, own in zip(tf_rounds, per_round, strict=True)), 3)}
            own, reference = work / f"out_{runtime}_{case}.npy", work / f"out_tensorflow_{case}.npy"
            if own.exists() and reference.exists():
                entry["max_abs_diff"] = float(np.abs(np.load(own) - np.load(reference)).max())
            row[runtime] = entry
        table[case] = row
    return table


def machine(load_at_start: list[float]) -> dict:
    import importlib.metadata as metadata

    versions = {}
    for package in ("tensorflow", "keras", "jax", "onnxruntime", "openvino", "tf2onnx"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {"platform": platform.platform(), "python": platform.python_version(),
            "cpus": os.cpu_count(), "load_average_at_start": load_at_start,
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()], **versions}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=sorted(MODELS), default=list(MODELS))
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--runtimes", nargs="+", choices=RUNTIMES, default=list(RUNTIMES))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--calls", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--worker", choices=RUNTIMES, help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        run_worker(args)
        return
    if "tensorflow" not in args.runtimes:
        args.runtimes.insert(0, "tensorflow")  # the reference

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.path.insert(0, str(REPO_ROOT))
    started, load_at_start = time.perf_counter(), [round(x, 2) for x in os.getloadavg()]
    with tempfile.TemporaryDirectory(prefix="segpipe-runtimes-") as tmp:
        work = Path(tmp)
        export_errors = prepare(work, args.models, args.sizes)
        rounds = []
        for index in range(args.rounds):
            order = args.runtimes if index % 2 == 0 else args.runtimes[::-1]
            rounds.append({runtime: worker_process(runtime, args, work) for runtime in order})
        cases = [case_name(m, s, b) for m in args.models for s in args.sizes
                 for b in args.batches]
        table = summarize(rounds, work, cases)
    print(json.dumps({
        "benchmark": "runtimes",
        "inputs": {"models": {m: MODELS[m] for m in args.models}, "sizes": args.sizes,
                   "batches": args.batches, "bands": BANDS, "classes": CLASSES,
                   "threads": args.threads, "calls": args.calls, "rounds": args.rounds},
        "export_errors": export_errors, "cases": table, "machine": machine(load_at_start),
        "total_seconds": round(time.perf_counter() - started, 1)}, indent=2))


if __name__ == "__main__":
    main()

"""`segpipe ui` against `segpipe predict` on one scene. Prints JSON; never passes or fails.

One run, one registered model (a random-weight U-Net; ``--window``, ``--depth``,
``--filters``), one ``--size``² four-band uint16 GeoTIFF:
- in process: the registered model's ScenePredictor + predict_scene (what `segpipe predict`
  runs), after loading the model once, ``--repeats`` times;
- `segpipe predict` as a command: the whole process, imports and model load included;
- the browser: `segpipe ui` driven through Debian's Chromium (tests/ui/harness.py), from
  handing the file to the upload widget to the mask shown over the image with its legend.
  The first time loads the model in the app (cold); later times use the cached model, each in
  a new browser session (warm).
The load average (1, 5, 15 min) is read before and after: the cores may be shared.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _in_process(tracking_uri: str, model_uri: str, scene: Path, out: Path,
                repeats: int) -> dict:
    import mlflow

    from pipelines.ui.prediction import local_predictor
    from serving.scene import predict_scene

    mlflow.set_tracking_uri(tracking_uri)
    started = time.perf_counter()
    predictor = local_predictor(model_uri)
    load = time.perf_counter() - started
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        predict_scene(predictor, scene, out)
        times.append(time.perf_counter() - started)
    return {"model_load_seconds": round(load, 3), "seconds_each": [round(t, 3) for t in times],
            "seconds": round(statistics.median(times), 3)}


def _command(tracking_uri: str, model_uri: str, scene: Path, out: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pipelines.cli", "predict", str(scene), "--out",
                    str(out), "--model-uri", model_uri, "--tracking-uri", tracking_uri],
                   env=env, check=True, capture_output=True)
    return {"seconds": round(time.perf_counter() - started, 3)}


def _browser_once(browser, url: str, scene: Path) -> dict:
    context = browser.new_context(viewport={"width": 1400, "height": 1400})
    context.set_default_timeout(600_000)
    page = context.new_page()
    try:
        page.goto(f"{url}/predict")
        page.locator('input[type="file"]').wait_for(state="attached")
        started = time.perf_counter()
        page.locator('input[type="file"]').set_input_files(str(scene))
        page.get_by_role("button", name="Predict", exact=True).click()
        page.get_by_text("mask over the image").wait_for()
        page.locator("table.segpipe-legend").wait_for()
        seconds = time.perf_counter() - started
        caption = page.get_by_text("Predicted in").inner_text()
        return {"seconds": round(seconds, 3),
                "app_prediction_seconds": float(caption.split()[2])}
    finally:
        context.close()


def _browser(tracking_uri: str, scene: Path, work: Path, repeats: int) -> dict:
    from playwright.sync_api import sync_playwright

    from tests.ui.harness import UiApp, launch_chromium

    # Its own workdir: the benchmark leaves nothing in the user's data folder.
    app = UiApp(tracking_uri, work / "segpipe-ui.log", "--workdir", str(work / "ui-workdir"))
    try:
        app.wait_ready()
        with sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            cold = _browser_once(browser, app.url, scene)
            warm = [_browser_once(browser, app.url, scene) for _ in range(repeats)]
            browser.close()
    finally:
        app.stop()
    return {"cold": cold, "warm_each": warm,
            "warm_seconds": round(statistics.median(w["seconds"] for w in warm), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--window", type=int, default=256)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--filters", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    from tests.ui.harness import build_store, write_scene

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="segpipe-ui-bench-") as tmp:
        work = Path(tmp)
        store = build_store(work, window=args.window, depth=args.depth, filters=args.filters)
        model_uri = f"models:/{store.name}/{store.champion}"
        scene = write_scene(work / "scene.tif", args.size)
        in_process = _in_process(store.tracking_uri, model_uri, scene, work / "a.tif",
                                 args.repeats)
        command = _command(store.tracking_uri, model_uri, scene, work / "b.tif")
        browser = _browser(store.tracking_uri, scene, work, args.repeats)
        scene_mb = scene.stat().st_size / 1e6
    report = {
        "scene": f"{args.size}x{args.size}x4 uint16 GeoTIFF ({scene_mb:.1f} MB)",
        "model": {"architecture": "unet", "window": args.window, "depth": args.depth,
                  "filters": args.filters},
        "predict_in_process": in_process,
        "segpipe_predict_command": command,
        "ui_upload_to_mask": browser,
        "ui_warm_over_in_process": round(browser["warm_seconds"] / in_process["seconds"], 2),
        "machine": {"cpus": os.cpu_count(), "load_average_before": load_before,
                    "load_average_after": os.getloadavg()},
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

"""Fault cases of `segpipe prepare` and `segpipe predict`, each a real CLI process on data
made here."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from _faults_common import Context, case, child_env, segpipe


def _failure_lines(output: str) -> list[str]:
    return [line.strip() for line in output.splitlines() if line.startswith("prepare failed")]


def _refused(ctx: Context, ran, *needles: str) -> tuple[str, bool]:
    """Got/ok for a prepare that must stop with rc 1 and one message holding ``needles``."""
    lines = _failure_lines(ran.output)
    message = lines[0] if lines else ran.last_line()
    got = (f"rc {ran.returncode} in {ran.seconds} s, peak {ran.peak_rss_mb:.0f} MB: "
           f"{ctx.short(message)}")
    ok = (ran.returncode == 1 and len(lines) == 1 and not ran.traceback()
          and all(needle in message for needle in needles))
    return got, ok


@case("prepare", "rc 1, one message naming cut_image.tif (truncated or corrupt), no "
                 "traceback, no dataset")
def prepare_truncated_geotiff(ctx: Context) -> tuple[str, bool]:
    from rasterio.transform import from_origin

    from components.raster import write_array
    from tests.components.conftest import UTM, make_image, make_labels, write_pair
    from tests.components.test_robust_io import _half_written_geotiff

    src = ctx.folder("truncated") / "src"
    write_pair(src, "good", make_image(32), make_labels(32, (0, 1)))
    write_array(src / "cut_mask.tif", make_labels(512, (0, 1)), UTM,
                from_origin(600000, 3000000, 2, 2))
    _half_written_geotiff(src / "cut_image.tif")
    out = src.parent / "ds"
    ran = segpipe("prepare", str(src), str(out), "--patch-size", "32")
    got, ok = _refused(ctx, ran, "cut_image.tif", "truncated or corrupt")
    return got, ok and not out.exists()


@case("prepare", "rc 1 naming huge.png (50000x50000 pixels, more than max_pixels) before "
                 "decoding: peak memory far below the 2.5 GB one band would take")
def prepare_png_claiming_50000x50000(ctx: Context) -> tuple[str, bool]:
    from tests.components.test_robust_io import _png

    src = ctx.folder("huge_png") / "src"
    for sub in ("images", "masks"):
        _png(src / sub / "huge.png", 50_000, 50_000, 64)
    ran = segpipe("prepare", str(src), str(src.parent / "ds"))
    got, ok = _refused(ctx, ran, "huge.png", "50000x50000")
    return got, ok and ran.peak_rss_mb < 2500


@case("prepare", "rc 1 naming bomb.zip (declares 2 GiB, more than 200 times its size); "
                 "nothing extracted, no temporary file left")
def prepare_zip_bomb(ctx: Context) -> tuple[str, bool]:
    from tests.components.test_robust_io import _zip_bomb

    folder = ctx.folder("zip_bomb")
    archive = folder / "bomb.zip"
    _zip_bomb(archive, 2048)
    temp = ctx.folder("zip_bomb_tmpdir")
    ran = segpipe("prepare", str(archive), str(folder / "ds"), TMPDIR=str(temp))
    got, ok = _refused(ctx, ran, "bomb.zip", "2,147,483,648 bytes")
    left = sorted(p.name for p in folder.iterdir() if p != archive) + \
        sorted(p.name for p in temp.iterdir())
    size_mb = archive.stat().st_size / 1e6
    return (f"{size_mb:.1f} MB zip; {got}; left behind: {left or 'nothing'}",
            ok and not left)


@case("prepare", "palette auto: rc 1 naming the stray colour #FF00FF and its file")
def prepare_stray_colour_pixel(ctx: Context) -> tuple[str, bool]:
    from PIL import Image

    src = ctx.folder("stray_colour") / "src"
    rng = np.random.default_rng(0)
    colours = np.array([(0, 0, 0), (255, 0, 0)], np.uint8)
    for sub in ("images", "masks"):
        (src / sub).mkdir(parents=True)
    for i in range(3):
        ids = rng.integers(0, 2, (4, 4)).repeat(16, axis=0).repeat(16, axis=1)
        mask = colours[ids]
        if i == 1:
            mask[10, 20] = (255, 0, 255)
        Image.fromarray(rng.integers(0, 255, (64, 64, 3)).astype(np.uint8)).save(
            src / "images" / f"photo{i}.png")
        Image.fromarray(mask).save(src / "masks" / f"photo{i}.png")
    ran = segpipe("prepare", str(src), str(src.parent / "ds"), "--patch-size", "16")
    got, ok = _refused(ctx, ran, "photo1.png")
    return got, ok and "#ff00ff" in ran.output.lower()


@case("prepare", "one scene, split by scene: rc 1, the val and test splits named as empty")
def prepare_split_leaving_val_test_empty(ctx: Context) -> tuple[str, bool]:
    from components.sample_data import generate_sample_dataset

    src = generate_sample_dataset(ctx.folder("one_scene") / "src", scenes=1, size=64, seed=1)
    ran = segpipe("prepare", str(src), str(src.parent / "ds"), "--patch-size", "32",
                  "--strategy", "scene")
    got, ok = _refused(ctx, ran, "empty")
    return got, ok and "'val'" in got and not (src.parent / "ds").exists()


@case("prepare", "prepare killed (SIGKILL) with its temporary folder half written; the next "
                 "run completes and removes that folder")
def prepare_killed_then_rerun(ctx: Context) -> tuple[str, bool]:
    from components.atomic import MARKER
    from components.sample_data import generate_sample_dataset

    folder = ctx.folder("killed_prepare")
    src = generate_sample_dataset(folder / "src", scenes=6, size=256, seed=2)
    out = folder / "ds"
    args = ["prepare", str(src), str(out), "--patch-size", "32", "--stride", "16"]
    proc = subprocess.Popen([sys.executable, "-m", "pipelines.cli", *args], env=child_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    started, temp = time.perf_counter(), []
    while proc.poll() is None and time.perf_counter() - started < 300:
        temp = [p for p in folder.glob(".ds.*") if (p / MARKER).exists()]
        if temp and len(list(temp[0].iterdir())) > 1:  # the marker and some work
            break
        time.sleep(0.01)
    if proc.poll() is not None:
        return f"prepare ended (rc {proc.returncode}) before it could be killed", False
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = time.perf_counter() - started
    stale = sorted(p.name for p in folder.glob(".ds.*"))
    ran = segpipe(*args)
    left = sorted(p.name for p in folder.glob(".ds.*"))
    got = (f"killed at {killed_at:.1f} s leaving {len(stale)} temp folder(s) "
           f"({', '.join(stale)}); next run rc {ran.returncode} in {ran.seconds} s; temp "
           f"folders left: {len(left)}")
    return got, bool(stale) and ran.returncode == 0 and not left and out.is_dir()


def _predict(ctx: Context, scene: Path, out: Path):
    model = ctx.model()
    return segpipe("predict", str(scene), "--out", str(out), "--model-uri", model["uri"],
                   "--tracking-uri", model["tracking_uri"])


@case("predict", "rc 2 naming the scene (truncated or corrupt), no traceback, no mask left")
def predict_truncated_scene(ctx: Context) -> tuple[str, bool]:
    from tests.serving.conftest import write_scene

    folder = ctx.folder("predict_truncated")
    scene = write_scene(folder / "scene.tif", 300, 300)
    data = scene.read_bytes()
    scene.write_bytes(data[: len(data) // 2])
    out = folder / "mask.tif"
    ran = _predict(ctx, scene, out)
    message = ran.error_panel() or ran.last_line()
    got = f"rc {ran.returncode} in {ran.seconds} s: {ctx.short(message)}"
    leftovers = [p.name for p in folder.iterdir() if p.name != "scene.tif"]
    return got, (ran.returncode == 2 and "scene.tif" in message and not ran.traceback()
                 and not leftovers)


@case("predict", "rc 0; inf, -inf and NaN pixels are 255 in the mask, every other pixel a "
                 "class")
def predict_scene_with_inf_pixels(ctx: Context) -> tuple[str, bool]:
    import rasterio
    from rasterio.transform import from_origin

    from tests.serving.conftest import BANDS, CLASSES

    folder = ctx.folder("predict_inf")
    scene = folder / "scene.tif"
    pixels = np.random.default_rng(3).uniform(1, 1000, (BANDS, 64, 64)).astype("float32")
    bad = {(3, 4): np.inf, (5, 6): -np.inf, (7, 8): np.nan, (40, 50): np.inf}
    for (row, col), value in bad.items():
        pixels[row % BANDS, row, col] = value
    with rasterio.open(scene, "w", driver="GTiff", width=64, height=64, count=BANDS,
                       dtype="float32", crs="EPSG:32644",
                       transform=from_origin(600000, 2700000, 1.0, 1.0)) as dst:
        dst.write(pixels)
    ran = _predict(ctx, scene, folder / "mask.tif")
    if ran.returncode != 0:
        return f"rc {ran.returncode}: {ctx.short(ran.last_line())}", False
    with rasterio.open(folder / "mask.tif") as mask:
        values = mask.read(1)
    at_bad = [int(values[row, col]) for row, col in bad]
    others = int((values < CLASSES).sum())
    got = f"rc 0; mask at the 4 bad pixels {at_bad}; {others} of {64 * 64 - 4} others a class"
    return got, at_bad == [255] * 4 and others == 64 * 64 - 4

"""The Train page in a real browser: a tiny training started from the form runs the real
pipeline (`segpipe run`), its curves appear while it runs, and it ends with a new model
version; a second run, started from pasted YAML, is stopped and leaves no process behind."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

from pipelines.ui import progress
from tests.tiny_run import tiny_run_config
from tests.ui.harness import REPO_ROOT

RUN_TIMEOUT_MS = 480_000  # a tiny run takes 2-3 min on 2 busy cores
FIRST_LOAD_MS = 120_000  # the first visit loads TensorFlow (the config's models)
MODEL = "ui-tiny"
EXPERIMENT = "ui-train"


@pytest.fixture(scope="module")
def scenes(tmp_path_factory) -> Path:
    """Four 64 px scenes, as `segpipe sample-data` writes them."""
    out = tmp_path_factory.mktemp("ui-train-data") / "scenes"
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    subprocess.run([sys.executable, "-m", "pipelines.cli", "sample-data", str(out),
                    "--scenes", "4", "--size", "64", "--seed", "1"],
                   check=True, env=env, capture_output=True, timeout=120)
    return out


def _settle(page) -> None:
    """Wait for the rerun an input started to finish."""
    page.wait_for_timeout(200)
    page.locator("[data-testid='stApp'][data-test-script-state='notRunning']").wait_for(
        timeout=FIRST_LOAD_MS)


def _number(page, label: str, value) -> None:
    box = page.get_by_role("spinbutton", name=label, exact=True)
    box.fill(str(value))
    box.press("Enter")
    _settle(page)


def _text(page, label: str, value: str) -> None:
    box = page.get_by_role("textbox", name=label, exact=True)
    box.fill(value)
    box.press("Enter")
    _settle(page)


def _keep_only(page, label: str, kept: set[str]) -> None:
    """Remove every chosen option of the multiselect ``label`` but ``kept``."""
    box = page.get_by_test_id("stMultiSelect").filter(
        has=page.get_by_text(label, exact=True))
    while True:
        labels = box.locator("button[aria-label^='Remove ']").evaluate_all(
            "buttons => buttons.map(b => b.getAttribute('aria-label'))")
        chips = [name for name in labels if name.removeprefix("Remove ") not in kept]
        if not chips:
            return
        box.get_by_role("button", name=chips[0], exact=True).click()
        _settle(page)


def _tick(page, label: str) -> None:
    """Tick the checkbox ``label`` by its label text, as a user clicks it."""
    page.get_by_test_id("stCheckbox").get_by_text(label, exact=True).click()
    _settle(page)
    expect(page.get_by_role("checkbox", name=label, exact=True)).to_be_checked()


def _expand(page, title: str) -> None:
    page.get_by_text(title, exact=True).click()
    _settle(page)


def _open_train(page, url: str) -> None:
    page.goto(f"{url}/train")
    page.get_by_role("radio", name="Form").wait_for(timeout=FIRST_LOAD_MS)
    page.get_by_role("textbox", name="Source", exact=True).wait_for(timeout=FIRST_LOAD_MS)
    _settle(page)


def _no_traceback(page) -> None:
    text = page.locator("body").inner_text()
    assert "Traceback" not in text and 'File "' not in text, text[-2000:]


def _shot(page, folder: Path, name: str) -> None:
    _settle(page)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def _fill_tiny_training(page, scenes: Path) -> None:
    """The form, as a user would fill it for a tiny run: the common fields up front, then
    a few fields in their sections and a tiny U-Net search space."""
    _text(page, "Source", str(scenes))
    _text(page, "Palette", "classes.json")
    _number(page, "Patch size (px)", 32)
    _number(page, "Trials", 1)  # one trial: a second one in its own TensorFlow worker cost ~30 s
    _number(page, "Epochs per trial", 2)
    _text(page, "Model name", MODEL)
    _keep_only(page, "Architectures", {"unet"})
    _expand(page, "Data: tiles")
    _number(page, "min valid fraction", 0.3)
    _expand(page, "Data: split")
    _text(page, "ratios", "[0.5, 0.25, 0.25]")
    _expand(page, "Tuning: the Optuna study")
    _number(page, "n workers", 1)
    _expand(page, "Search space")
    _text(page, "batch_size choices", "[8]")
    _keep_only(page, "Searched unet parameters", {"depth", "filters"})
    _number(page, "unet.depth low", 2)
    _number(page, "unet.depth high", 2)
    _text(page, "unet.filters choices", "[4]")
    _expand(page, "Training: fixed settings of every trial")
    _number(page, "overlay tiles", 0)
    # A two-epoch micro model need not beat answering the majority class everywhere: let
    # the gate promote it anyway, so the run ends with a champion whatever it learnt.
    _expand(page, "Registry and champion gate")
    _tick(page, "promote below trivial")
    _expand(page, "Tracking: MLflow and Optuna stores")
    _text(page, "mlflow experiment", EXPERIMENT)


def _run_folder(workdir: Path, page) -> Path:
    run_id = page.get_by_role("combobox", name="Run").input_value().split(" · ")[0]
    return workdir / "runs" / run_id


def mentioning(folder: Path) -> list[int]:
    """Processes whose command line or environment mention ``folder`` (any process of a
    run started there does: its config path, its workdir, its marker)."""
    needle = str(folder).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            data = (entry / "cmdline").read_bytes() + (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in data:
            found.append(int(entry.name))
    return found


@pytest.mark.slow
def test_training_from_the_form_shows_curves_and_registers_a_version(
        page, ui_app, ui_workdir, scenes, tiny_store, screenshot_dir):
    _open_train(page, ui_app.url)
    _fill_tiny_training(page, scenes)
    _shot(page, screenshot_dir, "train_form_filled")
    main = page.get_by_test_id("stMain")
    expect(main).not_to_contain_text("does not validate")
    page.get_by_role("button", name="Start", exact=True).click()

    # The page switches to the run and follows it.
    expect(main).to_contain_text("running", timeout=60_000)
    folder = _run_folder(ui_workdir, page)
    expect(main).to_contain_text("ingest: done", timeout=RUN_TIMEOUT_MS)
    charts = main.get_by_test_id("stVegaLiteChart")
    expect(charts).to_have_count(3, timeout=RUN_TIMEOUT_MS)  # val mIoU, train and val loss
    expect(main).to_contain_text("best so far: trial")
    _shot(page, screenshot_dir, "train_running_curves")

    expect(main).to_contain_text("finished after", timeout=RUN_TIMEOUT_MS)
    expect(main).to_contain_text(f"{MODEL} v1", timeout=60_000)
    expect(main).to_contain_text("Trials · 1 of 1 finished")
    expect(main).to_contain_text("promoted: no champion yet")
    expect(main).to_contain_text("register: done")
    _shot(page, screenshot_dir, "train_finished")
    _no_traceback(page)

    from mlflow import MlflowClient

    client = MlflowClient(tiny_store.tracking_uri)
    version = client.get_model_version_by_alias(MODEL, "champion")
    parent = client.get_run(version.run_id)
    assert parent.data.tags["kfp.run_name"] == progress.kfp_run_name(folder)
    assert 0.0 <= parent.data.metrics["test_miou"] <= 1.0
    trials = client.search_runs([parent.info.experiment_id],
                                f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert sorted(t.data.tags.get("optuna.trial") for t in trials
                  if "optuna.trial" in t.data.tags) == ["0"]
    import yaml

    submitted = yaml.safe_load((folder / f"{folder.name}.yaml").read_text())
    assert submitted["registry"]["promote_below_trivial"] is True  # the ticked box
    assert mentioning(folder) == []


def _stopped_run(source: Path) -> str:
    """A run that would train for long: two workers, each on a trial of 2000 epochs. The
    space has two points, one per worker (a one-point space is one trial: the other worker
    would end at once, and the page could miss both workers running)."""
    filters = {"type": "categorical", "choices": [4, 6]}
    return tiny_run_config(source=str(source),
                           tuning={"n_workers": 2, "epochs": 2000,
                                   "train": {"early_stopping_patience": 0},
                                   "search_space": {"models": {"unet": {"filters": filters}}}},
                           registry={"model_name": "ui-stopped"},
                           tracking={"mlflow_experiment": EXPERIMENT})


@pytest.mark.slow
def test_stop_leaves_no_process_of_the_run(page, ui_app, ui_workdir, scenes, screenshot_dir):
    _open_train(page, ui_app.url)
    page.get_by_text("YAML", exact=True).click()
    _settle(page)
    box = page.get_by_role("textbox", name="Config (YAML)", exact=True)
    box.fill(_stopped_run(scenes))
    box.press("Control+Enter")
    _settle(page)
    page.get_by_role("button", name="Start", exact=True).click()
    main = page.get_by_test_id("stMain")
    expect(main).to_contain_text("running", timeout=60_000)
    folder = _run_folder(ui_workdir, page)
    # Stop while the trials train: the tune workers are TensorFlow processes of their own.
    expect(main).to_contain_text("tune-worker ×2: running", timeout=RUN_TIMEOUT_MS)
    expect(main).to_contain_text(re.compile(r"Trials · 0 of \d finished"),
                                 timeout=RUN_TIMEOUT_MS)
    assert len(mentioning(folder)) >= 3  # segpipe run and its two tune workers at least
    # A new tab (as after a reload) opens on "New run", and says the run is going.
    other = page.context.new_page()
    try:
        _open_train(other, ui_app.url)
        expect(other.get_by_test_id("stMain")).to_contain_text(f"Run {folder.name} is running")
        other.get_by_role("button", name="View it").click()
        expect(other.get_by_role("combobox", name="Run")).to_have_value(
            f"{folder.name} · running")
    finally:
        other.close()
    page.get_by_role("button", name="Stop", exact=True).click()

    expect(main).to_contain_text("Stopped from this page", timeout=90_000)
    deadline = time.monotonic() + 60
    while mentioning(folder) and time.monotonic() < deadline:
        time.sleep(1)
    assert mentioning(folder) == []
    _shot(page, screenshot_dir, "train_stopped")
    _no_traceback(page)
    # `segpipe run` ends its own tasks on SIGTERM (the runner's side of the contract): the
    # app had nothing left to kill.
    from pipelines.ui import train_processes, train_runs

    report = train_processes.stop_report(train_runs.TrainRun(folder))
    assert report["killed"] == [], f"processes outlived segpipe run: {report['killed']}"

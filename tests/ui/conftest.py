"""Session fixtures for the UI tests: one tiny registered model, one `segpipe ui` process
(its training runs in a temporary workdir), one Chromium. Each browser test saves a
screenshot of its page under $SEGPIPE_UI_SCREENSHOTS (default: pytest's temporary
folder)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.ui.harness import (
    CHROMIUM,
    MAX_UPLOAD_MB,
    TinyStore,
    UiApp,
    build_store,
    launch_chromium,
    write_scene,
)

SCENE_SIZE = 96


@pytest.fixture(scope="session")
def tiny_store(tmp_path_factory) -> TinyStore:
    return build_store(tmp_path_factory.mktemp("ui-store"))


@pytest.fixture
def tracking_store(tiny_store):
    """The tiny store as MLflow's tracking URI, as the app sets it once at start."""
    import mlflow

    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(tiny_store.tracking_uri)
    yield tiny_store
    mlflow.set_tracking_uri(previous)


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    """The folder `segpipe ui --data-dir` offers: one georeferenced scene."""
    root = tmp_path_factory.mktemp("ui-data")
    (root / "survey").mkdir()
    write_scene(root / "survey" / "field.tif", 64, seed=3)
    return root


@pytest.fixture(scope="session")
def ui_workdir(tmp_path_factory) -> Path:
    """Where the app's Train page puts its runs."""
    return tmp_path_factory.mktemp("ui-workdir")


@pytest.fixture(scope="session")
def ui_app(tiny_store, data_dir, ui_workdir, tmp_path_factory):
    log = tmp_path_factory.mktemp("ui-app") / "segpipe-ui.log"
    app = UiApp(tiny_store.tracking_uri, log, "--data-dir", str(data_dir),
                "--max-upload-mb", str(MAX_UPLOAD_MB), "--workdir", str(ui_workdir))
    try:
        yield app.wait_ready()
    finally:
        app.stop()


@pytest.fixture(scope="package")
def browser():
    """Debian's Chromium through Playwright. Missing, it fails the tests (CI must not skip
    them): infra/local/browser.sh installs it. Package-scoped: Playwright's sync API keeps an
    asyncio loop running in the main thread while it is started, and tests outside tests/ui
    that the same worker runs later call ``asyncio.run``."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: run infra/local/browser.sh (installs Debian's "
                    f"chromium) or set $SEGPIPE_CHROMIUM", pytrace=False)
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    try:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()
    finally:
        playwright.stop()


@pytest.fixture(scope="session")
def screenshot_dir(tmp_path_factory) -> Path:
    folder = os.environ.get("SEGPIPE_UI_SCREENSHOTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("ui-screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def page(browser, ui_app, screenshot_dir, request):
    """A fresh browser page (own session) on the app; its screenshot is saved at the end,
    whether the test passed or not."""
    context = browser.new_context(viewport={"width": 1400, "height": 1400},
                                  accept_downloads=True)
    context.set_default_timeout(30_000)
    page = context.new_page()
    try:
        yield page
    finally:
        try:
            page.screenshot(path=str(screenshot_dir / f"{request.node.name}.png"))
        finally:
            context.close()


@pytest.fixture(scope="session")
def scene_path(tmp_path_factory) -> Path:
    return write_scene(tmp_path_factory.mktemp("ui-scenes") / "scene.tif", SCENE_SIZE)

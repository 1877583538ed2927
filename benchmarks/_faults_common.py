"""What the fault cases of benchmarks/faults.py share: the case registry, commands run as a
user runs them (with their exit status, output, time and peak memory), the tiny registered
model and the one model server the predict and server cases use."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before anything imports TensorFlow
REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from serving.quiet import import_tensorflow_quietly  # noqa: E402

import_tensorflow_quietly()  # the cases' helpers import it; its start-up chatter is noise

#: What leaks from the server's insides: never in one of its answers.
LEAKS = ("Traceback", "stack_trace", "site-packages")
MODEL_NAME = "faults-bench"


@dataclass(frozen=True)
class Case:
    name: str
    group: str
    expected: str
    run: Callable[[Context], tuple[str, bool]]
    slow: bool = False


CASES: list[Case] = []


def case(group: str, expected: str, slow: bool = False):
    """Register ``run(context) -> (got, ok)`` as a case of the catalogue."""
    def register(run: Callable[[Context], tuple[str, bool]]):
        CASES.append(Case(run.__name__, group, expected, run, slow))
        return run
    return register


@dataclass(frozen=True)
class Ran:
    returncode: int
    output: str
    seconds: float
    peak_rss_mb: float

    def lines(self) -> list[str]:
        return [line for line in self.output.splitlines() if line.strip()]

    def last_line(self) -> str:
        lines = self.lines()
        return lines[-1].strip() if lines else ""

    def traceback(self) -> bool:
        return "Traceback" in self.output

    def error_panel(self) -> str:
        """The message inside typer's error box, its wrapped lines joined."""
        inside = [line.strip().strip("│").strip() for line in self.output.splitlines()
                  if line.strip().startswith("│")]
        return " ".join(inside)


def child_env(**extra: str) -> dict[str, str]:
    from tests.serving.server import child_env as serving_env

    env = serving_env(**extra)
    if "MLFLOW_TRACKING_URI" not in extra:
        env.pop("MLFLOW_TRACKING_URI", None)
    return env


def run_command(command: list[str], cwd: Path | None = None, timeout: float = 600,
                **env: str) -> Ran:
    """Run to the end (killed at ``timeout``); the peak RSS is this child's own (wait4)."""
    with tempfile.TemporaryFile() as out:
        started = time.perf_counter()
        proc = subprocess.Popen(command, cwd=cwd, env=child_env(**env), stdout=out,
                                stderr=subprocess.STDOUT)
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - started > timeout:
                proc.kill()
            time.sleep(0.05)
        proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - started
        out.seek(0)
        text = out.read().decode("utf-8", errors="replace")
    return Ran(proc.returncode, text, round(seconds, 1), round(usage.ru_maxrss / 1024, 1))


def segpipe(*args: str, cwd: Path | None = None, timeout: float = 600, **env: str) -> Ran:
    return run_command([sys.executable, "-m", "pipelines.cli", *args], cwd=cwd,
                       timeout=timeout, **env)


class Context:
    """One catalogue run: a temporary root, and the model and server made on first use."""

    def __init__(self, root: Path):
        self.root = root
        self._model: dict | None = None
        self._server = None

    def folder(self, name: str) -> Path:
        path = self.root / name
        path.mkdir(parents=True)
        return path

    def short(self, text: str, limit: int = 300) -> str:
        """A message as the table shows it: temporary paths shortened, length capped."""
        text = " ".join(text.split()).replace(str(self.root), "<tmp>")
        return text if len(text) <= limit else f"{text[:limit]}..."

    def model(self) -> dict:
        """A tiny U-Net logged as segpipe's pyfunc and registered (version 1)."""
        if self._model is None:
            self._model = _register_tiny_model(self.root / "model")
        return self._model

    def server(self):
        """`segpipe serve` on the tiny model, started once."""
        if self._server is None:
            from tests.serving.server import free_port, segpipe_serve

            model = self.model()
            self._server = segpipe_serve(model["uri"], free_port(), self.root / "server.log",
                                         MLFLOW_TRACKING_URI=model["tracking_uri"])
            self._server.wait_ready(timeout=300)
        return self._server

    def close(self) -> None:
        if self._server is not None:
            self._server.stop()


def _register_tiny_model(root: Path) -> dict:
    import keras
    import mlflow

    from segmodels import build_model
    from serving.pyfunc import log_segmentation_model
    from tests.serving.conftest import BANDS, CLASSES, make_config

    root.mkdir(parents=True)
    keras.utils.set_random_seed(0)
    network = build_model("unet", num_classes=CLASSES, in_channels=BANDS, depth=3, filters=4)
    network.save(root / "model.keras")
    tracking_uri = f"sqlite:///{root / 'mlflow.db'}"
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(tracking_uri)
    try:
        experiment = mlflow.create_experiment("faults",
                                              artifact_location=(root / "artifacts").as_uri())
        with mlflow.start_run(experiment_id=experiment):
            log_segmentation_model(root / "model.keras", make_config(),
                                   registered_model_name=MODEL_NAME)
    finally:
        mlflow.set_tracking_uri(previous)
    return {"uri": f"models:/{MODEL_NAME}/1", "tracking_uri": tracking_uri,
            "max_pixels": make_config().max_pixels}

"""Predict through a running scoring server instead of a local model.

The client does the resampling to the model's resolution, the windowing and the blending,
exactly as locally; each batch of raw windows goes to the server as base64 ``.npy`` arrays
(binary, not JSON numbers) with ``overlap=0``, ``resample=false`` and
``output=probabilities``, so the server runs one forward pass (D4-averaged with ``tta``) per
window and normalizes with the model's own statistics. Invalid pixels (the scene's nodata,
which the server does not know) travel as NaN in float windows; windows without any travel
in the smallest integer type that holds them, so the payload grows only where a window
touches nodata."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import requests

from serving.blending import PredictFn
from serving.config import ServingConfig
from serving.encode import decode_npy_answer, encode_npy
from serving.handler import NPY_COLUMN
from serving.pixels import compact

#: How MLflow's own scoring server words its refusal of a dataframe the signature rejects.
_SIGNATURE_REFUSAL = "not compatible with model signature"


class EndpointError(RuntimeError):
    """The scoring server refused or failed a request."""


def _unreachable(url: str, exc: requests.RequestException) -> EndpointError:
    reason = ("timed out" if isinstance(exc, requests.Timeout)
              else "connection refused or host not found" if isinstance(
                  exc, requests.ConnectionError) else type(exc).__name__)
    return EndpointError(f"endpoint {url} is not reachable ({reason}); is the server "
                         f"running (`segpipe serve`)?")


def check_endpoint_reachable(url: str, timeout: float = 10.0) -> None:
    """One GET /ping before any work: a server that is not there or not ready is an
    EndpointError naming it."""
    base = url.rstrip("/").removesuffix("/invocations")
    try:
        response = requests.get(f"{base}/ping", timeout=timeout)
    except requests.RequestException as exc:
        raise _unreachable(url, exc) from None
    if response.status_code != 200:
        raise EndpointError(f"endpoint {url} is not ready: {base}/ping answered "
                            f"{response.status_code}")


def endpoint_predict_fn(url: str, tta: bool = False, timeout: float = 600.0) -> PredictFn:
    """A PredictFn over raw-pixel windows, answered by ``url`` (…/invocations)."""
    session = requests.Session()
    if not url.rstrip("/").endswith("/invocations"):
        url = url.rstrip("/") + "/invocations"

    def predict(batch: np.ndarray) -> np.ndarray:
        payload = {"dataframe_split": {"columns": [NPY_COLUMN],
                                       "data": [[encode_npy(compact(w))] for w in batch]},
                   "params": {"tta": tta, "overlap": 0.0, "output": "probabilities",
                              "resample": False}}
        try:
            response = session.post(url, json=payload, timeout=timeout)
        except requests.RequestException as exc:
            raise _unreachable(url, exc) from None
        if response.status_code != 200:
            hint = (" (the server checked the .npy route against the model's tensor "
                    "signature, as a plain MLflow scoring server or an older segpipe server "
                    "does; serve it with the `segpipe serve` of the segpipe that registered "
                    "it)"
                    if _SIGNATURE_REFUSAL in response.text else "")
            raise EndpointError(f"{url} answered {response.status_code}: "
                                f"{response.text[:500]}{hint}")
        records = response.json()["predictions"]
        return np.stack([decode_npy_answer(r["probabilities"]) for r in records])

    return predict


def load_serving_config(model_uri: str) -> ServingConfig:
    """The ServingConfig stored in a logged segmentation model, without loading Keras."""
    import mlflow

    local = Path(mlflow.artifacts.download_artifacts(f"{model_uri.rstrip('/')}/MLmodel"))
    flavor = mlflow.models.Model.load(local).flavors["python_function"]
    relative = flavor["artifacts"]["serving_config"]["path"]
    config_path = mlflow.artifacts.download_artifacts(f"{model_uri.rstrip('/')}/{relative}")
    return ServingConfig.load(Path(config_path))

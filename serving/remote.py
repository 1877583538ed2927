"""Predict through a running scoring server instead of a local model.

The client does the resampling to the model's resolution, the windowing and the blending,
exactly as locally; each batch of raw windows goes to the server as base64 ``.npy`` arrays
(binary, not JSON numbers) with ``overlap=0``, ``resample=false`` and
``output=probabilities``, so the server runs one forward pass (D4-averaged with ``tta``) per
window and normalizes with the model's own statistics. Invalid pixels (the scene's nodata,
which the server does not know) travel as the model's mean (serving.predict.wire_fill),
which the server normalizes to the 0 a local prediction feeds the model there; windows
travel in the smallest integer type that holds them where one does. A scene whose nodata is
not the model's sends it as param ``nodata``, so the server does not take the model's value
for invalid where the scene's pixels of it are valid; NaN as the string ``"nan"`` (JSON has
no NaN)."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import requests

from serving.bands import band_nodata, same_nodata
from serving.blending import PredictFn
from serving.config import ServingConfig
from serving.encode import decode_npy_answer, encode_npy
from serving.handler import NPY_COLUMN
from serving.json_body import NAN_TEXT
from serving.pixels import Nodata, compact
from serving.quiet import plain_images_quiet

#: How MLflow's own scoring server words its refusal of a dataframe the signature rejects.
_SIGNATURE_REFUSAL = "not compatible with model signature"


class EndpointError(RuntimeError):
    """The scoring server refused or failed a request."""


class OtherModel(EndpointError):
    """The server runs another model than the client's (``served``: the URI it was started
    with); the message names both and what differs."""

    def __init__(self, message: str, served: str):
        super().__init__(message)
        self.served = served


def request_failed(url: str, exc: requests.RequestException) -> EndpointError:
    """What went wrong with a request to ``url``, in one line: only a connection that could
    not be made is "not reachable"; a server that closed the connection without answering,
    cut its answer off or took too long, or a request that could not be sent at all (its
    body not encodable, a malformed URL), says so."""
    detail = " ".join(str(exc).split())[:200]
    named = f"{type(exc).__name__}{': ' + detail if detail else ''}"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return EndpointError(f"endpoint {url}: the answer was cut off ({named}); the server "
                             f"may have stopped while answering (see its log)")
    if isinstance(exc, requests.ConnectionError) and _dropped(exc):
        return EndpointError(f"endpoint {url}: the server closed the connection without "
                             f"answering ({named}); it may have run out of memory (see its "
                             f"log)")
    if isinstance(exc, requests.ConnectionError):  # ConnectTimeout included
        reason = ("timed out" if isinstance(exc, requests.Timeout)
                  else "connection refused or host not found")
        return EndpointError(f"endpoint {url} is not reachable ({reason}); is the server "
                             f"running (`segpipe serve`)?")
    if isinstance(exc, requests.Timeout):
        return EndpointError(f"endpoint {url} did not answer in time ({type(exc).__name__}); "
                             f"the server may be busy or the scene too large for its timeout")
    return EndpointError(f"endpoint {url}: the request could not be sent ({named})")


def _dropped(exc: requests.ConnectionError) -> bool:
    """Whether the connection was made, then closed or reset by the server: requests wraps
    urllib3's ProtocolError ("Connection aborted.") for that, and a MaxRetryError whose
    reason is a NewConnectionError for a connection never made."""
    from urllib3.exceptions import ProtocolError

    cause = exc.args[0] if exc.args else None
    return isinstance(cause, ProtocolError) or isinstance(getattr(cause, "reason", None),
                                                          ProtocolError)


def _get(url: str, route: str, timeout: float) -> requests.Response:
    """GET ``route`` of the server ``url`` (…/invocations or its root) names; an EndpointError
    when it does not answer."""
    base = url.rstrip("/").removesuffix("/invocations")
    try:
        return requests.get(f"{base}{route}", timeout=timeout)
    except requests.RequestException as exc:
        raise request_failed(url, exc) from None


def check_endpoint_reachable(url: str, timeout: float = 10.0) -> None:
    """One GET /ping before any work: a server that is not there or not ready is an
    EndpointError naming it."""
    response = _get(url, "/ping", timeout)
    if response.status_code != 200:
        raise EndpointError(f"endpoint {url} is not ready: {response.url} answered "
                            f"{response.status_code}")


def wire_nodata(nodata: Nodata) -> float | None:
    """The one value a server is told for ``nodata``: NaN for per-band values, which the
    client applies itself (ScenePredictor with ``normalize=False`` finds the invalid pixels
    and sends them filled, serving.predict.wire_fill)."""
    return float("nan") if isinstance(nodata, tuple) else nodata


def scene_nodata(scene: str | os.PathLike, config: ServingConfig,
                 driver: str | None = None) -> float | None:
    """The nodata a scene declares when it is not the model's: the server must then be told
    (param ``nodata``), or it would take the model's value for invalid in windows where the
    scene's pixels of that value are valid. None when the model's own applies, or when the
    scene's is NaN and the model has none (NaN pixels are invalid anyway). Per-band tags
    (serving.bands.band_nodata) are applied by the client, the windows carrying those pixels
    filled: the server is told NaN, so it marks no other pixel."""
    import rasterio

    # A plain image: the resolution notes say so.
    with plain_images_quiet(), rasterio.open(scene, driver=driver) as dataset:
        nodata = wire_nodata(band_nodata(dataset))
    if nodata is None or same_nodata(nodata, config.nodata):
        return None
    if math.isnan(nodata) and config.nodata is None:
        return None  # NaN pixels are invalid anyway: NaN marks no other (NaN != NaN)
    return float(nodata)


def nodata_param(nodata: float) -> float | str:
    """``nodata`` as the server's param takes it: NaN as NAN_TEXT."""
    return NAN_TEXT if math.isnan(nodata) else nodata


def endpoint_predict_fn(url: str, tta: bool = False, timeout: float = 600.0,
                        nodata: float | None = None) -> PredictFn:
    """A PredictFn over raw-pixel windows, answered by ``url`` (…/invocations); ``nodata``:
    the scene's, when it is not the model's (scene_nodata). Sent only then, so a server whose
    model predates the param still answers every other scene."""
    session = requests.Session()
    if not url.rstrip("/").endswith("/invocations"):
        url = url.rstrip("/") + "/invocations"

    def predict(batch: np.ndarray) -> np.ndarray:
        payload = {"dataframe_split": {"columns": [NPY_COLUMN],
                                       "data": [[encode_npy(compact(w))] for w in batch]},
                   "params": {"tta": tta, "overlap": 0.0, "output": "probabilities",
                              "resample": False,
                              **({} if nodata is None else {"nodata": nodata_param(nodata)})}}
        try:
            response = session.post(url, json=payload, timeout=timeout)
        except requests.RequestException as exc:
            raise request_failed(url, exc) from None
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


@dataclass(frozen=True)
class ModelCard:
    """What tells a logged model apart, read without loading Keras: the URI it was asked by,
    its id (MLmodel's ``model_uuid``), its run and its ServingConfig."""

    uri: str
    model_uuid: str | None
    run_id: str | None
    config: ServingConfig

    def describe(self) -> str:
        ids = [f"logged model {self.model_uuid}" if self.model_uuid else None,
               f"run {self.run_id[:8]}" if self.run_id else None]
        known = ", ".join(i for i in ids if i)
        return f"{self.uri} ({known})" if known else self.uri


def logged_model_id(model_uri: str) -> str | None:
    """The id of a ``models:/<id>`` URI (MLflow 3's logged models, ``m-...``): one part and
    no alias, as MLflow parses it (mlflow.store.artifact.utils.models); None for any other
    URI (``models:/NAME/VERSION``, ``models:/NAME@ALIAS``, ``runs:/``, a path)."""
    if not model_uri.startswith("models:/"):
        return None
    reference = model_uri[len("models:/"):].strip("/")
    return reference if reference and "/" not in reference and "@" not in reference else None


class ModelCardError(RuntimeError):
    """A model URI that names no model, or no segpipe model; one line naming the URI."""


def load_model_card(model_uri: str) -> ModelCard:
    """The ModelCard of a logged segmentation model (two small files), by any URI MLflow
    takes for a model: ``models:/NAME/VERSION``, ``models:/NAME@ALIAS``, ``models:/m-<id>``
    (MLflow 3's logged-model id), ``runs:/RUN/PATH`` or a local folder. The files are read
    through the model's own artifact repository: ``<uri>/MLmodel`` is no URI MLflow parses
    for ``models:/`` (it would take ``MLmodel`` for a stage of a model named by the id)."""
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    try:
        # as mlflow.artifacts.download_artifacts does: a local store's files are read where
        # they are, a remote one's fetched into a temporary folder of MLflow's
        repository = get_artifact_repository(model_uri.rstrip("/"))
        mlmodel = mlflow.models.Model.load(Path(repository.download_artifacts("MLmodel")))
        relative = mlmodel.flavors["python_function"]["artifacts"]["serving_config"]["path"]
        config = ServingConfig.load(Path(repository.download_artifacts(relative)))
    except (MlflowException, OSError) as exc:
        message = getattr(exc, "message", None) or str(exc)
        line = " ".join(message.split())[:200]
        raise ModelCardError(f"model {model_uri}: no such model ({line})") from None
    except KeyError as exc:
        raise ModelCardError(f"model {model_uri} is not a segpipe segmentation model (its "
                             f"MLmodel has no {exc} entry)") from None
    return ModelCard(model_uri, mlmodel.model_uuid, mlmodel.run_id, config)


def load_serving_config(model_uri: str) -> ServingConfig:
    """The ServingConfig stored in a logged segmentation model, without loading Keras."""
    return load_model_card(model_uri).config


#: Serving config fields whose difference makes a server's masks wrong for the client's
#: model (the client blends with its window, names its classes, resamples to its grid).
_COMPARED = {"class_names": "classes", "in_channels": "bands", "patch_size": "window",
             "scale": "scale", "gsd": "gsd", "nodata": "nodata"}


def _shown(value) -> str:
    return "none" if value is None else str(value)


def check_endpoint_model(url: str, card: ModelCard, timeout: float = 10.0) -> str | None:
    """Ask the server which model it runs (GET /model): OtherModel when it is not
    ``card``'s model (another logged model, or a serving config that differs where the
    client relies on it), naming both and what differs; a warning line when the server
    does not say (no /model: an older segpipe server or MLflow's own); None when it is."""
    response = _get(url, "/model", timeout)
    if response.status_code != 200:
        return (f"endpoint {url} does not say which model it serves (GET /model answered "
                f"{response.status_code}: an older segpipe server, or MLflow's own); the mask "
                f"is right only if it runs {card.uri}")
    try:
        served = response.json()
        theirs = dict(served.get("serving_config") or {})
    except (ValueError, AttributeError, TypeError):
        raise EndpointError(f"endpoint {url}: GET /model did not answer a model "
                            f"description ({response.text[:80]!r})") from None
    ours = card.config.model_dump(mode="json")
    differs = [f"{label} {_shown(theirs[field])} there, {_shown(ours[field])} here"
               for field, label in _COMPARED.items()
               if field in theirs and theirs[field] != ours[field]]
    other = served.get("model_uuid") not in (None, card.model_uuid) and card.model_uuid
    if not differs and not other:
        return None
    theirs_card = ModelCard(str(served.get("model_uri")), served.get("model_uuid"),
                            served.get("run_id"), card.config)
    why = "; ".join(differs) if differs else "another logged model"
    raise OtherModel(f"endpoint {url} serves {theirs_card.describe()}, not "
                     f"{card.describe()}: {why}", theirs_card.uri)

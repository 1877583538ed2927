"""The JSON checks of a request body for serving/guard.py (which re-exports them): text as
``json.loads`` would decode it, a JSON object, and params the model declares, of the types it
declares. Stdlib only at import, as the guard (MLflow's schema classes load when params come)."""

from __future__ import annotations

import json
from typing import Any

from serving.asgi import Refusal, excerpt

#: How a request says nodata NaN: JSON has no NaN (Python writes one, most clients refuse
#: to), so the string, in any case. Only non-finite pixels are then invalid, not the
#: model's nodata.
NAN_TEXT = "nan"
#: The params that take NAN_TEXT besides their declared type (a double).
NAN_PARAMS = ("nodata",)


def is_nan_text(value: Any) -> bool:
    return isinstance(value, str) and value.strip().lower() == NAN_TEXT


def nan_params(document: dict[str, Any]) -> dict[str, Any]:
    """The document with NAN_TEXT params as float NaN: what a model takes whatever its
    serving code's age (one registered before NAN_TEXT refuses the string, not a NaN)."""
    params = document.get("params")
    if not isinstance(params, dict) or not any(
            is_nan_text(params.get(name)) for name in NAN_PARAMS):
        return document
    return {**document, "params": {
        name: float("nan") if name in NAN_PARAMS and is_nan_text(value) else value
        for name, value in params.items()}}


def mlflow_body(document: dict[str, Any], text: str, encoding: str, limit: int) -> bytes:
    """The body for MLflow's own route: the bytes as they came, but NAN_TEXT params as the
    NaN literal (Python's JSON parser takes it), since MLflow checks them against their
    declared type. Written again then, as UTF-8 without spaces (no larger than the body but
    for numbers written longer, ``1E5`` as ``100000.0``): a 413 past ``limit``."""
    rewritten = nan_params(document)
    if rewritten is document:
        return text.encode(encoding, "surrogatepass")
    body = json.dumps(rewritten, ensure_ascii=False, separators=(",", ":")).encode(
        "utf-8", "surrogatepass")
    if len(body) > limit:
        raise Refusal(413, f'the request body, its nodata "{NAN_TEXT}" written as NaN for '
                           f"MLflow, has {len(body)} bytes, the limit is {limit}: send the "
                           f"pixels as a base64 .npy array (dataframe column 'npy')")
    return body


def check_params(params: Any, schema: Any) -> None:
    """Refuse params that are not an object, names ``schema`` (MLflow's ParamSchema, or
    None) does not declare and values MLflow would not accept for their declared type."""
    if params is None:
        return
    if not isinstance(params, dict):
        raise Refusal(400, f"params must be a JSON object, got {type(params).__name__}")
    if not params:
        return
    specs = {spec.name: spec for spec in schema.params} if schema is not None else {}
    if unknown := sorted(set(params) - set(specs)):
        takes = f"the model takes {', '.join(sorted(specs))}" if specs \
            else "the model takes no params"
        raise Refusal(400, f"unknown params {', '.join(excerpt(n) for n in unknown[:5])}; "
                           f"{takes}")
    from mlflow.exceptions import MlflowException
    from mlflow.types.schema import ParamSpec

    for name, value in params.items():
        spec = specs[name]
        if name in NAN_PARAMS and is_nan_text(value):
            continue
        try:
            ParamSpec.validate_param_spec(value, spec)
        except MlflowException:
            kind = getattr(spec.dtype, "name", str(spec.dtype))
            wanted = f"a list of {kind}" if spec.shape == (-1,) else f"a {kind}"
            wanted += f' or "{NAN_TEXT}"' if name in NAN_PARAMS else ""
            raise Refusal(400, f"param {name} must be {wanted}, got {excerpt(value)}") from None


def decode_body(body: bytes | bytearray) -> str:
    """The body as text, in the encoding ``json.loads`` would detect (UTF-8 but for a BOM or
    UTF-16/32 zero bytes), with the same error handling."""
    try:
        return body.decode(json.detect_encoding(body), "surrogatepass")
    except UnicodeDecodeError as exc:
        raise Refusal(400, f"the request body is not UTF-8 text (byte {exc.start})") from None


def check_body(body: bytes | bytearray | str, schema: Any) -> dict[str, Any]:
    text = body if isinstance(body, str) else decode_body(body)
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise Refusal(400, f"the request body is not valid JSON: {exc.msg} at line "
                           f"{exc.lineno} column {exc.colno} ({len(body)} bytes)") from None
    except RecursionError:
        raise Refusal(400, "the request body is JSON nested too deeply") from None
    if not isinstance(document, dict):
        raise Refusal(400, f"the request body must be a JSON object, got "
                           f"{type(document).__name__}")
    check_params(document.get("params"), schema)
    return document

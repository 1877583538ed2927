"""What the model server takes on POST /invocations besides MLflow's JSON, and one line for
what it does not (serving/guard.py): MLflow's own answers to a form upload, a CSV body, ``{}``
or ``inputs`` that are no pixels talk of its 2.0 protocol change and tensor specs, which tell
someone sending an image nothing. Stdlib only, as the guard.

- an image file as the body (Content-Type IMAGE_TYPES) is answered as the same file in the
  dataframe column ``image``, its params from the query string (``?output=probabilities``);
- ``instances`` holding rows (JSON objects) are ``dataframe_records``;
- a form upload, CSV, Parquet or any other type, a JSON object without exactly one input, and
  ``inputs``/``instances`` that are no (N, H, W, bands) numbers are refused, naming what is
  taken (docs/serving.md, "Requests and answers").
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import parse_qsl

from serving.asgi import JSON_TYPE, Refusal, excerpt

#: The input keys of MLflow's JSON request format.
INPUT_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")
#: Content types of a body that is an image file; octet-stream as ``curl --data-binary``
#: sends a file without a type, GDAL telling the format by its bytes.
IMAGE_TYPES = ("image/tiff", "image/png", "image/jpeg", "application/octet-stream")
#: Where every refusal below points.
DOC = "docs/serving.md, Requests and answers"
#: What the server takes, shortest first.
TAKES = (f"send an image file as the body (Content-Type image/tiff, image/png or "
         f"image/jpeg), or {JSON_TYPE} "
         f'{{"dataframe_split": {{"columns": ["image"], "data": [["<base64 file>"]]}}}} '
         f"({DOC})")


def refuse_content_type(content_type: str) -> None:
    """Refuse a body that is neither JSON nor an image file (415), naming what is taken."""
    if content_type == JSON_TYPE or content_type in IMAGE_TYPES:
        return
    if content_type == "multipart/form-data":
        raise Refusal(415, f"form uploads (multipart/form-data) are not taken: send the file "
                           f"itself, curl -H 'Content-Type: image/tiff' --data-binary "
                           f"@scene.tif URL, or JSON ({DOC})")
    if content_type in ("text/csv", "application/x-parquet", "application/vnd.apache.parquet"):
        raise Refusal(415, f"{content_type}: a table (CSV, Parquet) cannot carry images; "
                           f"{TAKES}")
    raise Refusal(415, f"Content-Type {excerpt(content_type)} is not taken; {TAKES}")


def image_document(body: bytes | bytearray, query_string: bytes,
                   schema: Any) -> dict[str, Any]:
    """The dataframe request an image file body stands for: the file in column ``image``,
    params from the query string, typed as the model declares them (``true``/``false``,
    numbers); the guard's param checks follow."""
    params: dict[str, Any] = {}
    kinds = {spec.name: getattr(spec.dtype, "name", str(spec.dtype))
             for spec in (schema.params if schema is not None else [])}
    for name, text in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        params[name] = _typed(text, kinds.get(name))
    document: dict[str, Any] = {"dataframe_split": {
        "columns": ["image"], "data": [[base64.b64encode(body).decode("ascii")]]}}
    return {**document, "params": params} if params else document


def _typed(text: str, kind: str | None) -> Any:
    """A query string value as the JSON value of its declared type; left text when it is
    not one, for the type check to refuse."""
    if kind == "boolean" and text.lower() in ("true", "false"):
        return text.lower() == "true"
    if kind in ("double", "float", "integer", "long"):
        try:
            return float(text)
        except ValueError:
            return text
    return text


def check_inputs(document: dict[str, Any]) -> dict[str, Any]:
    """The document with exactly one input, ``instances`` of rows as ``dataframe_records``;
    a 400 naming what is taken otherwise."""
    keys = [key for key in document if key in INPUT_KEYS]  # others ignored, as MLflow does
    if not keys:
        keys = ", ".join(excerpt(key) for key in list(document)[:5])
        raise Refusal(400, f"the request holds no input{f' (its keys: {keys})' if keys else ''}"
                           f"; {TAKES}")
    if len(keys) != 1:
        raise Refusal(400, f"the request must hold one input, got "
                           f"{', '.join(excerpt(key) for key in keys[:5])}")
    key, value = keys[0], document[keys[0]]
    if key == "instances" and isinstance(value, list) and value and all(
            isinstance(row, dict) for row in value):
        return {"dataframe_records": value,
                **{k: v for k, v in document.items() if k != "instances"}}
    if key in ("inputs", "instances") and not _numbers_in(value):
        raise Refusal(400, f"{key} must be pixels, numbers nested (N, H, W, bands) deep, got "
                           f"{excerpt(value)}; images and large arrays go in dataframe "
                           f"columns 'image' or 'npy' ({DOC})")
    return document


def _numbers_in(value: Any) -> bool:
    """Whether ``value`` is a list whose first elements lead down to a number; its shape is
    the signature's to check (MLflow names the shape it expects)."""
    if not isinstance(value, list):
        return False
    while isinstance(value, list) and value:
        value = value[0]
    return isinstance(value, int | float) and not isinstance(value, bool)

"""What the model server takes on POST /invocations besides MLflow's JSON, and one line for
what it does not (serving/guard.py): MLflow's own answers to a form upload, a CSV body, ``{}``
or ``inputs`` that are no pixels talk of its 2.0 protocol change and tensor specs, which tell
someone sending an image nothing. Stdlib only, as the guard.

- an image file as the body (Content-Type IMAGE_TYPES) is answered as the same file in the
  dataframe column ``image``, its params from the query string (``?output=probabilities``),
  checked before the body is read; a JSON request's params go in its body, so a query
  string with one is refused;
- ``instances`` holding rows (JSON objects) are ``dataframe_records``;
- a form upload, CSV, Parquet or any other type, a JSON object without exactly one input, and
  ``inputs``/``instances`` that are no (N, H, W, bands) numbers are refused, naming what is
  taken (docs/serving.md, "Requests and answers").
"""

from __future__ import annotations

import binascii
import re
from typing import Any
from urllib.parse import parse_qsl

from serving.asgi import JSON_TYPE, Refusal, Scope, excerpt, header, mime_type
from serving.json_body import check_params

#: The input keys of MLflow's JSON request format.
INPUT_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")
#: Content types of a body that is an image file; octet-stream as ``curl --data-binary``
#: sends a file without a type, GDAL telling the format by its bytes.
IMAGE_TYPES = ("image/tiff", "image/png", "image/jpeg", "application/octet-stream")
#: Where every refusal below points.
DOC = "docs/serving.md, Requests and answers"
#: What the server takes, shortest first.
TAKES = (f"send an image file as the body (Content-Type image/tiff, image/png, image/jpeg "
         f"or application/octet-stream), or {JSON_TYPE} "
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


def image_limit(max_body_bytes: int) -> int:
    """The most an image body may have: its base64 text, what the model is handed, must fit
    the body limit."""
    return max_body_bytes * 3 // 4


def image_limit_note(max_body_bytes: int) -> str:
    """What a 413 of an image body adds to its limit: where that number comes from."""
    return (f" (an image body's limit: 3/4 of the server's body limit, {max_body_bytes}, as "
            f"it travels on to the model in base64)")


def check_head(scope: Scope, schema: Any, images: bool) -> tuple[str, dict[str, Any] | None]:
    """The body's type and an image body's params (``images``: whether the model takes
    image bodies): what the head alone tells, refused before a byte of the body is read or
    a turn is waited for."""
    content_type = mime_type(scope)
    if not content_type:
        raise Refusal(415, f"the request has no Content-Type; {TAKES}")
    refuse_content_type(content_type)
    encoding = (header(scope, b"content-encoding") or "identity").lower()
    if encoding != "identity":
        raise Refusal(415, f"the request body is {excerpt(encoding)}-encoded "
                           f"(Content-Encoding); send it uncompressed")
    if content_type == JSON_TYPE:
        refuse_query(scope)
        return content_type, None
    if not images:
        raise Refusal(415, f"this server's model predates image bodies: send JSON ({DOC})")
    return content_type, image_params(scope.get("query_string", b""), schema)


def refuse_query(scope: Scope) -> None:
    """A JSON request's params are its ``params`` key: a query string would be ignored."""
    if query := scope.get("query_string", b""):
        raise Refusal(400, f"the query string ({excerpt(query.decode('latin-1'))}) is read "
                           f"only with an image file as the body: params of a JSON request "
                           f'go in its "params" key ({DOC})')


def image_params(query_string: bytes, schema: Any) -> dict[str, Any] | None:
    """The params of an image body, from its query string (known before the body is read),
    typed as the model declares them (``true``/``false``, numbers) and checked as JSON
    params are; a name given twice is a 400."""
    params: dict[str, Any] = {}
    kinds = {spec.name: getattr(spec.dtype, "name", str(spec.dtype))
             for spec in (schema.params if schema is not None else [])}
    for name, text in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if name in params:
            raise Refusal(400, f"param {excerpt(name)} is given twice in the query string; "
                               f"give it once")
        params[name] = _typed(text, kinds.get(name))
    check_params(params, schema)
    return params or None


def image_document(held: list[bytearray], params: dict[str, Any] | None) -> dict[str, Any]:
    """The dataframe request an image file body stands for: the file in column ``image``.
    The body is taken from ``held`` and freed once encoded, and the base64 text made a str
    once, its bytes then freed: at most the text twice at once (serving/sizing.py, parsing),
    the text alone while the model runs."""
    raw = held.pop()
    encoded = bytearray(4 * ((len(raw) + 2) // 3))
    with memoryview(raw) as view:
        # in pieces: binascii allocates twice its input's size for its output
        for start in range(0, len(raw), _ENCODED_PIECE):
            at = start // 3 * 4
            piece = binascii.b2a_base64(view[start:start + _ENCODED_PIECE], newline=False)
            encoded[at:at + len(piece)] = piece
    del raw  # its last reference
    text = encoded.decode("ascii")
    del encoded
    document: dict[str, Any] = {"dataframe_split": {"columns": ["image"], "data": [[text]]}}
    return {**document, "params": params} if params else document


#: Raw bytes encoded at a time (a multiple of 3: no padding but at the end).
_ENCODED_PIECE = 3 * 2**16
#: A number as JSON writes one (no ``1_0``, which Python's float takes as 10), or what the
#: params' checks name: nan, inf.
_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?|[-+]?(nan|inf|infinity)",
                     re.IGNORECASE)


def _typed(text: str, kind: str | None) -> Any:
    """A query string value as the JSON value of its declared type; left text when it is
    not one, for the type check to refuse."""
    if kind == "boolean" and text.lower() in ("true", "false"):
        return text.lower() == "true"
    if kind in ("double", "float", "integer", "long") and _NUMBER.fullmatch(text):
        return float(text)
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

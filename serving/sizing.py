"""How much memory the model server may need, from its limits: what serving/server.py checks at
start against the container's memory limit, and what docs/serving.md sizes a pod by.

One request at its peak holds, in the worst of its phases (benchmarks/server_memory.py
measured each; benchmarks/README.md has the figures):

- parsing: its body twice (the body decoded to text, then the text and the parsed strings;
  an image file body, counted as the base64 text it becomes (at most the body limit), the
  text's bytes then its str; serving/guard.py frees each as soon as the next exists;
  measured 2.2-2.4 times the body with the prediction's own working set), plus what its
  JSON values take, at most BYTES_PER_JSON_VALUE each;
- predicting: the request's strings, the decoded pixels (3/4 of their base64), the blending's
  working set (BLENDING_BYTES: strips, row accumulators and batches of a panel 8192 px wide)
  and the result (a byte per pixel for a mask, a float32 per class for probabilities, which
  serving/decode.py's PixelBudget counts once per class, so at most 4 bytes per pixel of
  max_pixels);
- answering: the request's strings and the result with its base64 encoding twice (bytes, then
  text).

A worker holds what it holds with the model loaded (measured at start) plus that many
requests at once as the guard lets in (the model's own concurrency). Bodies are read before a
request gets its turn, within a budget for bodies in flight (body_budget_bytes): every phase
above holds the body once, so a request holds its body plus at most the rest of its peak, and
a budget of ``at_once`` bodies keeps the same bound however many requests are receiving
theirs. Stdlib only.
"""

from __future__ import annotations

import os
from pathlib import Path

MB = 10**6
#: What one JSON value of a request can take: parsed, an object's entry (key, value, table
#: slot) ~117 bytes, a list ~64, a number ~36; a request of JSON numbers (``{"inputs": ...}``)
#: took ~162 per value through MLflow's parsing, the array and the answer.
BYTES_PER_JSON_VALUE = 165
#: The blending's working set for one request at the widest panel, at 256-px windows.
BLENDING_BYTES = 300 * MB
#: Result bytes per pixel of max_pixels, at most: a mask's byte, or probabilities' 4 bytes per
#: class for max_pixels / classes pixels.
RESULT_BYTES_PER_PIXEL = {"mask": 1, "probabilities": 4}
#: The result and its base64 encoding as bytes and as text.
ANSWER_COPIES = 1 + 2 * 4 / 3
#: What a server worker held with a small U-Net loaded on TensorFlow or OpenVINO, after a few
#: requests (1.1-1.4 GB measured; the server logs its own at start): what sizing a pod
#: before the model is known assumes.
TYPICAL_LOADED_BYTES = 1500 * MB
#: Above this, a cgroup's memory limit means "none" (cgroup v1 writes a huge number).
_NO_LIMIT = 2**60


def request_peak_bytes(max_body_bytes: int, max_json_values: int, max_pixels: int) -> int:
    """The most one request can hold at a time within these limits."""
    body, result = max_body_bytes, max(RESULT_BYTES_PER_PIXEL.values()) * max_pixels
    parsing = 2 * body + BYTES_PER_JSON_VALUE * max_json_values
    predicting = body + 3 * body // 4 + BLENDING_BYTES + result
    answering = body + int(ANSWER_COPIES * result)
    return max(parsing, predicting, answering)


def body_budget_bytes(at_once: int, max_body_bytes: int) -> int:
    """The request bodies a worker may hold at once, read or being read, in progress or
    waiting their turn: ``at_once`` of the largest. With ``at_once`` requests in progress,
    each holding at most its body plus ``request_peak_bytes - max_body_bytes``, the worker
    stays within ``worker_peak_bytes``."""
    return at_once * max_body_bytes


def worker_peak_bytes(loaded_bytes: int, at_once: int, max_body_bytes: int,
                      max_json_values: int, max_pixels: int) -> int:
    """A worker's most: what it holds with the model loaded plus ``at_once`` requests."""
    return loaded_bytes + at_once * request_peak_bytes(max_body_bytes, max_json_values,
                                                       max_pixels)


def container_memory_limit(root: Path = Path("/sys/fs/cgroup")) -> int | None:
    """This process's cgroup memory limit in bytes (a Kubernetes container's
    ``limits.memory``), cgroup v2 or v1; None when there is none."""
    for path in (root / "memory.max", root / "memory" / "memory.limit_in_bytes"):
        try:
            text = path.read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < _NO_LIMIT:
            return int(text)
        return None
    return None


def resident_bytes() -> int:
    """This process's resident memory now (0 where /proc is not there)."""
    try:
        with open(f"/proc/{os.getpid()}/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def memory_warning(peak_bytes: int, workers: int, limit_bytes: int, limit_source: str,
                   detail: str) -> str | None:
    """The warning the server logs when its workers may need more than the limit; None when
    they fit."""
    needed = peak_bytes * workers
    if needed <= limit_bytes:
        return None
    return (f"the server may need up to {needed / MB:,.0f} MB ({workers} worker(s) x "
            f"{peak_bytes / MB:,.0f} MB: {detail}), above the memory limit of "
            f"{limit_bytes / MB:,.0f} MB ({limit_source}); a request near the limits could "
            f"get the process killed: lower --max-request-mb or the model's max_pixels, or "
            f"raise the limit (docs/serving.md, Memory)")

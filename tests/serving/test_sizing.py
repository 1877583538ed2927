"""The model server's memory bound (serving/sizing.py): the phases of a request it adds up,
the container limit it reads, and the warning it gives."""

from __future__ import annotations

from pathlib import Path

from serving import sizing
from serving.sizing import MB


def test_a_request_needs_its_body_twice_while_parsing_and_its_answer_copies():
    # a big body and few pixels: the parse is the peak
    assert sizing.request_peak_bytes(10_000 * MB, 0, 1) == 20_000 * MB
    # JSON values cost on top of the body
    assert sizing.request_peak_bytes(10_000 * MB, 10**6, 1) == 20_000 * MB + \
        sizing.BYTES_PER_JSON_VALUE * 10**6
    # many pixels and a small body: the answer (4 bytes per counted pixel, with its two
    # base64 copies) is the peak
    peak = sizing.request_peak_bytes(1 * MB, 0, 10**9)
    assert peak == 1 * MB + int(sizing.ANSWER_COPIES * 4 * 10**9)


def test_a_worker_holds_the_loaded_model_and_its_requests_at_once():
    one = sizing.request_peak_bytes(700 * MB, 2_000_000, 64_000_000)
    assert sizing.worker_peak_bytes(1500 * MB, 2, 700 * MB, 2_000_000, 64_000_000) == \
        1500 * MB + 2 * one


def test_the_container_limit_comes_from_cgroup_v2_or_v1(tmp_path: Path):
    assert sizing.container_memory_limit(tmp_path) is None
    (tmp_path / "memory.max").write_text("max\n")
    assert sizing.container_memory_limit(tmp_path) is None
    (tmp_path / "memory.max").write_text("6442450944\n")
    assert sizing.container_memory_limit(tmp_path) == 6442450944
    v1 = tmp_path / "v1"
    (v1 / "memory").mkdir(parents=True)
    (v1 / "memory" / "memory.limit_in_bytes").write_text("9223372036854771712\n")  # none
    assert sizing.container_memory_limit(v1) is None
    (v1 / "memory" / "memory.limit_in_bytes").write_text("4294967296\n")
    assert sizing.container_memory_limit(v1) == 4294967296


def test_the_warning_names_the_need_the_limit_and_what_to_change():
    assert sizing.memory_warning(3000 * MB, 2, 6000 * MB, "the container's", "x") is None
    warning = sizing.memory_warning(3000 * MB, 2, 4096 * MB, "the container's",
                                    "1,200 MB with the model loaded + ...")
    assert warning.startswith("the server may need up to 6,000 MB (2 worker(s) x 3,000 MB: "
                              "1,200 MB with the model loaded + ...), above the memory limit "
                              "of 4,096 MB (the container's)")
    assert "--max-request-mb" in warning and "max_pixels" in warning


def test_resident_bytes_are_this_process():
    assert sizing.resident_bytes() > 10 * MB

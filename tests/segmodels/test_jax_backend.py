"""segmodels is backend-neutral: the same code builds, predicts, scores and round-trips a
U-Net on JAX, and serving blends its predictions; the encoder U-Net builds, round-trips and
trains with its encoder warm-up on JAX. Keras fixes its backend at import, so the checks
(tests/jax_checks.py) run in one KERAS_BACKEND=jax interpreter shared by the suite's JAX
tests (the `jax_checks` fixture)."""

from __future__ import annotations

import pytest


def _passed(checks: dict[str, dict], name: str) -> None:
    result = checks[name]
    assert "error" not in result, result["error"]
    assert result["stdout"].strip().endswith("ok")


# slow: the shared fixture runs every JAX check (encoder U-Net, GPU benchmark) at once.
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_unet_on_jax_backend(jax_checks):
    _passed(jax_checks, "unet")


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_encoder_unet_and_its_warmup_on_jax_backend(jax_checks):
    _passed(jax_checks, "encoder_unet")

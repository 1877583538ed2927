"""serving/guard.py's checks on their own: params against the served model's real signature
(no stricter than MLflow's own conversion rules), and MLflow's error bodies made short."""

from __future__ import annotations

import json

import pytest
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

from serving.guard import MAX_MESSAGE, Refusal, check_body, check_params, short_error
from serving.pyfunc import params_schema
from tests.serving.conftest import make_config

SCHEMA = params_schema(make_config())


@pytest.mark.parametrize("params", [None, {}, {"overlap": 0}, {"overlap": 0.5, "tta": True},
                                    {"tta": None}, {"output": "probabilities",
                                                    "resample": False}])
def test_params_mlflow_accepts_pass(params):
    check_params(params, SCHEMA)


@pytest.mark.parametrize("params, message", [
    ({"ttta": True, "ovrlap": 1}, "unknown params 'ovrlap', 'ttta'; the model takes nodata, "
                                  "output, overlap, pixel_size, resample, tta"),
    ({"tta": 1}, "param tta must be a boolean, got 1"),
    ({"overlap": "0.5"}, "param overlap must be a double, got '0.5'"),
    ({"output": ["mask"]}, "param output must be a string, got ['mask']"),
    ([1, 2], "params must be a JSON object, got list"),
])
def test_params_mlflow_refuses_are_refused_with_a_short_message(params, message):
    with pytest.raises(Refusal) as refused:
        check_params(params, SCHEMA)
    assert refused.value.status == 400 and refused.value.message == message


def test_a_model_without_params_takes_none():
    check_params({}, None)
    with pytest.raises(Refusal, match="unknown params 'tta'; the model takes no params"):
        check_params({"tta": True}, None)


def test_long_names_and_values_are_quoted_as_excerpts():
    with pytest.raises(Refusal) as refused:
        check_params({"x" * 10_000: 1}, SCHEMA)
    assert len(refused.value.message) < 200
    with pytest.raises(Refusal) as refused:
        check_body(json.dumps({"inputs": [], "params": {"tta": "y" * 10_000}}).encode(),
                   SCHEMA)
    assert len(refused.value.message) < 200


def test_mlflow_errors_lose_their_echo_and_stack_trace():
    data = "[[1, 2, 3, 4]" + ", [1, 2, 3, 4]" * 5000 + "]"
    error = MlflowException(f"Failed to predict data '{data}'. \nError: Invalid parameters "
                            f"found: {{('tta', 'bad')}}", error_code=INVALID_PARAMETER_VALUE,
                            stack_trace="Traceback (most recent call last): ...")
    assert "stack_trace" in error.serialize_as_json()
    body = json.loads(short_error(400, error.serialize_as_json().encode()))
    assert body == {"error_code": "INVALID_PARAMETER_VALUE",
                    "message": "Invalid parameters found: {('tta', 'bad')}"}


def test_plain_text_and_long_errors_become_capped_json():
    body = json.loads(short_error(504, b"Request processing time exceeded limit"))
    assert body == {"error_code": "DEADLINE_EXCEEDED",
                    "message": "Request processing time exceeded limit"}
    body = json.loads(short_error(400, json.dumps({"error_code": "BAD_REQUEST",
                                                   "message": "z" * 100_000}).encode()))
    assert len(body["message"]) <= MAX_MESSAGE
    assert body["message"].endswith("... (100000 characters)")

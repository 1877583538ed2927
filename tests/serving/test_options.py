"""The model server's options: a flag, else its environment variable (how the serving image
and the Kubernetes Deployment configure it), else the one default in serving/options.py."""

from __future__ import annotations

import pytest

from serving import options
from serving.options import parse_args


def test_defaults_hold_when_neither_flag_nor_variable_is_given():
    args = parse_args(["--model-uri", "models:/m@champion"], environ={})
    assert (args.port, args.workers, args.timeout, args.max_request_mb,
            args.max_json_values, args.memory_limit_mb) == (
        options.DEFAULT_PORT, options.DEFAULT_WORKERS, options.DEFAULT_TIMEOUT,
        options.DEFAULT_MAX_REQUEST_MB, options.DEFAULT_MAX_JSON_VALUES, None)
    assert args.host == options.DEFAULT_HOST


def test_variables_set_what_flags_do_not_and_flags_win():
    environ = {"MODEL_URI": "models:/tea@prod", "SERVING_TIMEOUT": "900",
               "SERVING_WORKERS": "3", "SERVING_MAX_REQUEST_MB": "700",
               "SERVING_MAX_JSON_VALUES": "5", "SERVING_MEMORY_LIMIT_MB": "6000",
               "SERVING_PORT": "8080"}
    args = parse_args(["--timeout", "30"], environ=environ)
    assert (args.model_uri, args.timeout, args.workers, args.max_request_mb,
            args.max_json_values, args.memory_limit_mb, args.port) == (
        "models:/tea@prod", 30, 3, 700, 5, 6000, 8080)
    assert set(options.ENVIRONMENT) == set(options.DEFAULTS)


@pytest.mark.parametrize("environ, message", [
    ({"SERVING_TIMEOUT": "soon"}, "SERVING_TIMEOUT='soon': must be a whole number"),
    ({"SERVING_WORKERS": "0"}, "SERVING_WORKERS='0': must be at least 1, got 0"),
    ({}, "--model-uri (or $MODEL_URI) is required"),
])
def test_a_bad_or_missing_value_is_a_usage_error_naming_it(environ, message, capsys):
    argv = [] if "MODEL_URI" not in environ and not environ else ["--model-uri", "x"]
    with pytest.raises(SystemExit) as exit_:
        parse_args(argv, environ=environ)
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_the_help_names_each_variable_and_default(capsys):
    with pytest.raises(SystemExit):
        parse_args(["--help"], environ={})
    text = " ".join(capsys.readouterr().out.split())
    for variable in options.ENVIRONMENT.values():
        assert f"${variable}" in text, variable
    assert f"$SERVING_TIMEOUT; default {options.DEFAULT_TIMEOUT}" in text

"""One check for every http(s) address a user gives: the message names the field (as its
caller calls it) and the address, and says what an address looks like."""

from __future__ import annotations

import pytest

from serving.urls import UrlError, check_http_url


@pytest.mark.parametrize("url", ["http://127.0.0.1:5001", "https://mlflow.example/",
                                 "http://host/invocations", "http://[::1]:8080"])
def test_http_addresses_pass(url):
    check_http_url(url, "endpoint")


@pytest.mark.parametrize(("url", "problem"), [
    ("127.0.0.1:5001", "must be http(s)://host:port, e.g. http://x:1"),
    ("ftp://host:21", "must be http(s)://host:port, e.g. http://x:1"),
    ("http://:5001", "must be http(s)://host:port, e.g. http://x:1"),
    ("http://host:port", "not a URL (Port could not be cast to integer value as 'port')"),
    ("http://[::1", "not a URL (Invalid IPv6 URL)"),
])
def test_other_addresses_are_refused_naming_the_field(url, problem):
    with pytest.raises(UrlError) as raised:
        check_http_url(url, "MLflow UI address", "http://x:1")
    assert str(raised.value) == f"MLflow UI address {url}: {problem}"
    assert isinstance(raised.value, ValueError)  # a pydantic validator raises it as it is

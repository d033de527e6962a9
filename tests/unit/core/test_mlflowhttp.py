"""The canary for the one place neuroflow relies on MLflow's private behaviour: its HTTP client reads its retry and
timeout limits from the environment at every request (`neuroflow.core.mlflowhttp`). If MLflow starts reading them
once, or stops reading them, these fail."""

import os

import pytest
from mlflow.exceptions import MlflowException
from mlflow.utils.rest_utils import MlflowHostCreds, http_request

from neuroflow.core import mlflowhttp
from tests.utils.fault_proxy import FaultProxy


def attempts_with(proxy: FaultProxy, limits: dict[str, str]) -> int:
    before = proxy.count("/experiments/get")
    mlflowhttp.apply(limits)
    with pytest.raises(MlflowException):
        response = http_request(MlflowHostCreds(proxy.url), "/api/2.0/mlflow/experiments/get", "GET")
        raise MlflowException(f"answered {response.status_code}")  # not retried: a 503 that got through
    return proxy.count("/experiments/get") - before


def test_mlflow_reads_the_limits_at_every_request(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in mlflowhttp.NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(mlflowhttp, "USER_SET", frozenset())
    quick = {mlflowhttp.BACKOFF: "0", mlflowhttp.JITTER: "0", mlflowhttp.TIMEOUT: "5"}
    with FaultProxy("http://127.0.0.1:9") as proxy:
        proxy.fail("/experiments/get", status=503)
        assert attempts_with(proxy, quick | {mlflowhttp.RETRIES: "1"}) == 2
        assert attempts_with(proxy, quick | {mlflowhttp.RETRIES: "2"}) == 3  # the same process, new limits
        assert attempts_with(proxy, quick | mlflowhttp.FAIL_FAST) == 1


def test_the_users_own_limits_are_never_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(mlflowhttp.RETRIES, "7")
    monkeypatch.setattr(mlflowhttp, "USER_SET", frozenset({mlflowhttp.RETRIES}))
    monkeypatch.delenv(mlflowhttp.TIMEOUT, raising=False)
    mlflowhttp.apply(mlflowhttp.FAIL_FAST)
    assert os.environ[mlflowhttp.RETRIES] == "7" and os.environ[mlflowhttp.TIMEOUT] == "10"
    mlflowhttp.apply(mlflowhttp.waiting_limits(120))  # the client made last decides, not the first
    assert os.environ[mlflowhttp.TIMEOUT] == "15"


def test_failing_fast_puts_the_limits_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(mlflowhttp.RETRIES, "3")
    monkeypatch.delenv(mlflowhttp.TIMEOUT, raising=False)
    with mlflowhttp.failing_fast():
        assert os.environ[mlflowhttp.RETRIES] == "0" and os.environ[mlflowhttp.TIMEOUT] == "5"
    assert os.environ[mlflowhttp.RETRIES] == "3" and mlflowhttp.TIMEOUT not in os.environ

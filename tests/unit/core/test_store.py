"""How a store failure is told from a bug: by the errors' types down the chain, never by their text."""

import socket
import sqlite3
from pathlib import Path

import pytest
import requests
from mlflow.exceptions import MlflowException, RestException

from neuroflow.core.settings import TrackingSettings
from neuroflow.core.store import is_store_failure, refused_write, store_failure, unreachable


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wrapped_as_mlflow_does(error: Exception) -> MlflowException:
    """MLflow's http_request: `except Exception as e: raise MlflowException(f"API request to ... {e}")`."""
    try:
        raise error
    except Exception as caught:
        try:
            raise MlflowException(f"API request to /api/2.0/mlflow/runs/get failed with exception {caught}")
        except MlflowException as wrapped:
            return wrapped


def test_a_refused_connection_wrapped_by_mlflow_is_unreachable() -> None:
    try:
        requests.get(f"http://127.0.0.1:{closed_port()}/health", timeout=2)
    except requests.exceptions.ConnectionError as error:
        refused = error
    assert unreachable(wrapped_as_mlflow_does(refused))
    assert is_store_failure(wrapped_as_mlflow_does(refused))


def test_a_servers_temporarily_unavailable_answer_is_unreachable() -> None:
    answer = RestException({"error_code": "TEMPORARILY_UNAVAILABLE", "message": "busy"})
    assert unreachable(answer)
    assert not unreachable(RestException({"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "no such run"}))


def test_a_bug_whose_message_reads_like_an_outage_is_a_bug() -> None:
    for text in ("Connection refused", "Max retries exceeded", "API request to x failed", "readonly database"):
        bug = ValueError(text)
        assert not is_store_failure(bug)
        assert store_failure(bug, TrackingSettings()) is None


def test_a_read_only_sqlite_database_is_a_refused_write(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    sqlite3.connect(path).execute("create table t (x)").connection.commit()
    read_only = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    with pytest.raises(sqlite3.OperationalError) as raised:
        read_only.execute("insert into t values (1)")
    assert refused_write(wrapped_as_mlflow_does(raised.value)) == "readonly database"
    failure = store_failure(raised.value, TrackingSettings())
    assert failure is not None and "refused a write (readonly database)" in str(failure)


def test_a_folder_without_write_permission_is_a_refused_write(tmp_path: Path) -> None:
    assert refused_write(PermissionError(13, "Permission denied", str(tmp_path))) == "Permission denied"
    assert refused_write(FileNotFoundError(2, "No such file", str(tmp_path))) is None

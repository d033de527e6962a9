"""Prefect's temporary server as the CLI runs it: what happens when it does not come up."""

import subprocess
import sys

import pytest

from neuroflow.errors import ConfigError
from pipelines.temporary_server import TemporaryServer, free_port


def server_running(code: str, timeout: float) -> TemporaryServer:
    server = TemporaryServer(environment={}, startup_timeout=timeout, port=free_port())
    server.process = subprocess.Popen([sys.executable, "-c", code])
    return server


def test_a_server_that_dies_is_a_clear_error() -> None:
    server = server_running("raise SystemExit(1)", timeout=30)
    with pytest.raises(ConfigError, match=r"exited with code 1 before it answered.*PREFECT_API_URL"):
        server.wait_until_ready()


def test_a_server_that_never_answers_is_stopped_and_named() -> None:
    server = server_running("import time; time.sleep(60)", timeout=0.5)
    with pytest.raises(ConfigError, match=r"did not answer within 0\.5 s \(PREFECT_SERVER_EPHEMERAL_STARTUP"):
        server.wait_until_ready()
    assert server.process is not None and server.process.poll() is not None  # stopped, not left behind

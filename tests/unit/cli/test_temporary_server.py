"""Prefect's temporary server as the CLI runs it: what happens when it does not come up."""

import subprocess
import sys

import pytest

from neuroflow.cli.temporary_server import TemporaryServer, free_port
from neuroflow.core.errors import ConfigError


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


FAKE_API = """
import http.server, sys
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        print(self.path, flush=True)
        self.send_response(200)
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""


@pytest.mark.timeout(30)
def test_the_first_api_request_is_made_as_soon_as_the_server_is_up() -> None:
    port = free_port()
    server = TemporaryServer(environment={}, startup_timeout=30, port=port)
    server.process = subprocess.Popen([sys.executable, "-c", FAKE_API, str(port)], stdout=subprocess.PIPE, text=True)
    try:
        server.warm_up()  # returns once the API answered
        assert server.process.stdout is not None
        assert server.process.stdout.readline().strip() == "/api/admin/version"
    finally:
        server.stop()


@pytest.mark.timeout(10)
def test_warming_up_a_server_that_died_gives_up_at_once() -> None:
    server = server_running("raise SystemExit(1)", timeout=30)
    assert server.process is not None
    server.process.wait()
    server.warm_up()  # does not wait out the 30 s


class Captured:
    """Stands in for `subprocess.Popen` inside Prefect, to read the command it would run."""

    def __init__(self, args: list[str], env: dict[str, str], **_: object) -> None:
        self.args, self.env = args, env


def test_canary_our_command_and_environment_are_prefects_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fails when Prefect changes how it starts its temporary server: then `server_command` and
    `server_environment` must follow it."""
    from prefect.server.api import server as prefect_server

    from neuroflow.cli.temporary_server import server_command, server_environment

    monkeypatch.setattr(prefect_server.subprocess, "Popen", Captured)
    port = free_port()
    started = prefect_server.SubprocessASGIServer(port=port)._run_uvicorn_command()
    assert isinstance(started, Captured)
    assert started.args == server_command(port)
    assert started.env == server_environment()


def test_canary_prefects_log_and_event_workers_can_be_drained() -> None:
    """`send_prefect_backlog` drains these before the temporary server stops; fails when Prefect renames them."""
    import inspect

    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for worker in (APILogWorker, EventsWorker):
        assert "timeout" in inspect.signature(worker.drain_all).parameters

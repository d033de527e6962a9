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

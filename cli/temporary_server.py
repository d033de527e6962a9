"""Prefect's temporary API server, started by the CLI the moment it knows a run needs one.

With no `PREFECT_API_URL`, Prefect starts the same server (`uvicorn prefect.server.api.server:create_app`, UI off)
when the first flow runs, and only after importing the server's code into the calling process (~2 s here). Starting
that command ourselves, before TensorFlow and friends import, lets both happen at once on different cores; the flow
then runs against it through `PREFECT_API_URL`, and the runs land in the same `PREFECT_HOME` database.

A fresh server answers its first API request slowly (~0.3 s here, however long it has been up), and the flow engine
makes that request before anything else. A thread makes it for the flow as soon as the server is up, while the
command is still importing.
"""

import atexit
import contextlib
import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

from ..core.errors import ConfigError
from .processes import free_port, stop_process

PORT_IN_USE = 3  # uvicorn's exit code when it cannot bind


@dataclass
class TemporaryServer:
    """A Prefect API server process that lives as long as one CLI command."""

    environment: dict[str, str]
    startup_timeout: float
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Launch the server on a free port (what Prefect runs for its own temporary server, UI off)."""
        self.port = free_port()
        command = server_command(self.port)
        self.process = subprocess.Popen(command, env=self.environment, stdout=subprocess.DEVNULL)
        threading.Thread(target=self.warm_up, name="prefect-server-warm-up", daemon=True).start()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def answers(self, path: str) -> bool:
        """Whether the server answers GET `path` (under /api) with 200 right now."""
        with contextlib.suppress(OSError), urllib.request.urlopen(f"{self.api_url}{path}", timeout=2) as response:
            return bool(response.status == 200)
        return False

    def warm_up(self) -> None:
        """Make the server's first, slow API request (the one the flow engine starts with) as soon as it is up."""
        process = self.process
        deadline = time.monotonic() + self.startup_timeout
        while process is self.process and process is not None and process.poll() is None:
            if time.monotonic() > deadline or self.answers("/admin/version"):
                return
            time.sleep(0.1)

    def wait_until_ready(self) -> None:
        """Block until the server answers its health check; a server that dies or hangs is a clear error."""
        assert self.process is not None, "start() first"
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() == PORT_IN_USE:  # another program took the free port meanwhile
                self.start()
            elif self.process.poll() is not None:
                raise ConfigError(
                    f"Prefect's temporary server exited with code {self.process.returncode} before it answered "
                    "(its output is above); start one with `prefect server start` and set PREFECT_API_URL"
                )
            if self.answers("/health"):
                return
            time.sleep(0.1)
        self.stop()
        raise ConfigError(
            f"Prefect's temporary server did not answer within {self.startup_timeout:g} s "
            "(PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS); start one with `prefect server start` "
            "and set PREFECT_API_URL"
        )

    def stop(self) -> None:
        """Stop the server and wait for it, so its database is closed before the command returns."""
        if self.process is not None:
            stop_process(self.process, grace=5)


def server_command(port: int) -> list[str]:
    """The command Prefect runs for its own temporary server (`SubprocessASGIServer._run_uvicorn_command`)."""
    import prefect

    return [
        sys.executable,
        "-m",
        "uvicorn",
        "--app-dir",
        str(prefect.__module_path__.parent),
        "--factory",
        "prefect.server.api.server:create_app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "error",
        "--lifespan",
        "on",
    ]


def server_environment() -> dict[str, str]:
    """The environment Prefect gives its own temporary server: no UI, ephemeral services only, and this process's
    Prefect settings."""
    from prefect.settings import get_current_settings

    return {
        **os.environ,
        "PREFECT_UI_ENABLED": "0",
        "PREFECT__SERVER_EPHEMERAL": "1",
        "PREFECT__SERVER_FINAL": "1",
        **get_current_settings().to_environment_variables(exclude_unset=True),
    }


def start_temporary_server() -> TemporaryServer | None:
    """Start Prefect's temporary server now if runs will need one (no API URL, ephemeral mode on); else None."""
    from prefect.settings import get_current_settings

    settings = get_current_settings()
    if settings.api.url or not settings.server.ephemeral.enabled:
        return None
    server = TemporaryServer(server_environment(), float(settings.server.ephemeral.startup_timeout_seconds))
    server.start()
    atexit.register(server.stop)  # if the command ends before prefect_api() does
    return server


@contextlib.contextmanager
def prefect_api(server: TemporaryServer | None) -> Iterator[None]:
    """Run what is inside against `server` (waiting until it answers), then stop it; with None, against the
    configured API."""
    if server is None:
        yield
        return
    from prefect.settings import PREFECT_API_URL, PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    server.wait_until_ready()
    os.environ["PREFECT_API_URL"] = server.api_url  # for worker processes (Dask) started from here
    try:
        # Heartbeats let a lasting server mark crashed runs; this one ends with the process, and the engine waits up to
        # a second for its heartbeat thread at the end of every flow run.
        with temporary_settings({PREFECT_API_URL: server.api_url, PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
            try:
                yield
            finally:
                send_prefect_backlog()  # a failed run's last logs and states too
    finally:
        os.environ.pop("PREFECT_API_URL", None)
        server.stop()


def check_prefect_server() -> str:
    """The Prefect API URL in use, after checking that it answers; scheduling needs a real server."""
    from prefect.settings import PREFECT_API_URL

    api_url = PREFECT_API_URL.value()
    if not api_url:
        raise ConfigError(
            "scheduling needs a Prefect server: start one with `prefect server start` and "
            "`export PREFECT_API_URL=http://127.0.0.1:4200/api`, or use the compose stack (README)"
        )
    try:
        with urllib.request.urlopen(f"{api_url.rstrip('/')}/health", timeout=10) as response:
            response.read()
    except (OSError, ValueError) as error:
        raise ConfigError(f"the Prefect server at {api_url} does not answer ({error}); is it running?") from None
    return str(api_url)


def send_prefect_backlog(timeout: float = 10) -> None:
    """Let Prefect's log and event workers send what they queued while the server is there to receive it (they would
    otherwise try at exit, after it stopped, and wait out their timeouts)."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for worker in (APILogWorker, EventsWorker):
        worker.drain_all(timeout=timeout)

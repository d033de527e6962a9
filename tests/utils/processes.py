"""Start and stop the real processes integration tests talk to."""

import os
import signal
import subprocess
import time
from collections.abc import Callable
from typing import Any, TypeVar

from neuroflow.cli.processes import free_port as free_port  # re-exported for the tests

T = TypeVar("T")


def stop_group(process: subprocess.Popen, first: int = signal.SIGTERM, grace: float = 20) -> None:  # type: ignore[type-arg]
    """Stop a process started with `start_new_session=True` and everything it spawned; SIGKILL after `grace`."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, first)
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass


def wait_for(condition: Callable[[], T | None], timeout: float, what: str) -> T:
    """Poll `condition` every second until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(1)


def prefect_client(api_url: str) -> Any:
    """A synchronous Prefect client for one server."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: api_url}):
        return get_client(sync_client=True)

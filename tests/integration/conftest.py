"""Integration fixtures: one real (temporary) Prefect server for the session, and helpers to run flows and the CLI."""

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.utils.store import Store, merge

__all__ = ["Store", "merge", "run_cli"]


@pytest.fixture(scope="session")
def prefect_api_url() -> Iterator[str]:
    """A real Prefect API server on a free port with a throwaway database; flows in this session report to it."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield str(PREFECT_API_URL.value())


def run_cli(
    args: list[str], cwd: Path, api_url: str, timeout: float = 300, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the installed `neuroflow` command as a user would, against the session's Prefect server (with `env` on
    top of this environment, whose NEUROFLOW_* variables are left out)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("NEUROFLOW_")}
    env = base | {"PREFECT_API_URL": api_url} | (env or {})
    command = [str(Path(sys.executable).with_name("neuroflow")), *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)

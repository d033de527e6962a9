"""`neuroflow ui` serves the MLflow UI on the local store, where the champion can be found."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from neuroflow.pipelines.bookkeeping.registry import promote_version, register_version
from tests.utils.processes import free_port, stop_group

pytestmark = pytest.mark.integration


def get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.read()


def wait_until_up(port: int, process: subprocess.Popen, timeout: float = 90) -> int:  # type: ignore[type-arg]
    """Poll the UI's health check until it answers; fail with its output if it exits or takes too long."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            status, _ = get(f"http://127.0.0.1:{port}/health")
            return status
        except OSError:
            assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
            assert time.monotonic() < deadline, f"the MLflow UI did not answer within {timeout:.0f} s"
            time.sleep(0.5)


def test_ui_serves_the_local_store(tmp_path: Path) -> None:
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    register_version(client, "neuroflow-breast_cancer", "file:///tmp/model", run_id=None)  # type: ignore[arg-type]
    promote_version(client, "neuroflow-breast_cancer", "champion", "1")
    port = free_port()
    command = [str(Path(sys.executable).with_name("neuroflow")), "ui", "--port", str(port)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEUROFLOW_")}
    process = subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        assert wait_until_up(port, process) == 200
        status, page = get(f"http://127.0.0.1:{port}/")
        assert status == 200 and b"MLflow" in page
        url = f"http://127.0.0.1:{port}/api/2.0/mlflow/registered-models/alias?name=neuroflow-breast_cancer&alias=champion"
        status, body = get(url)
        assert json.loads(body)["model_version"]["version"] == "1"
    finally:
        stop_group(process)


def test_ui_stopped_with_sigterm_stops_the_server_it_started(tmp_path: Path) -> None:
    """A process manager stops `neuroflow ui` with SIGTERM to it alone; the MLflow UI (and its uvicorn) must go too."""
    import psutil

    port = free_port()
    command = [str(Path(sys.executable).with_name("neuroflow")), "ui", "--port", str(port)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEUROFLOW_")}
    process = subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        wait_until_up(port, process)
        children = psutil.Process(process.pid).children(recursive=True)
        assert children, "neuroflow ui runs the MLflow UI as a child process"
        process.send_signal(signal.SIGTERM)  # to neuroflow only, not its process group
        assert process.wait(timeout=60) in (0, -signal.SIGTERM, 128 + signal.SIGTERM)
        _, alive = psutil.wait_procs(children, timeout=30)
        assert not alive, f"left behind: {[child.cmdline() for child in alive]}"
        with pytest.raises(OSError):
            get(f"http://127.0.0.1:{port}/health")
    finally:
        stop_group(process)

"""`neuroflow ui` serves the MLflow UI on the local store, where the champion can be found."""

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from neuroflow.pipelines.registry import promote_version, register_version
from tests.utils.processes import free_port, stop_group

pytestmark = pytest.mark.integration


def get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.read()


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
        deadline = time.monotonic() + 90
        while True:
            try:
                status, _ = get(f"http://127.0.0.1:{port}/health")
                break
            except OSError:
                assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
                assert time.monotonic() < deadline, "the MLflow UI did not answer within 90 s"
                time.sleep(0.5)
        assert status == 200
        status, page = get(f"http://127.0.0.1:{port}/")
        assert status == 200 and b"MLflow" in page
        url = f"http://127.0.0.1:{port}/api/2.0/mlflow/registered-models/alias?name=neuroflow-breast_cancer&alias=champion"
        status, body = get(url)
        assert json.loads(body)["model_version"]["version"] == "1"
    finally:
        stop_group(process)

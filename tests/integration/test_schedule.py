"""`neuroflow schedule`: a real Prefect deployment on a cron schedule, whose runs train, link to MLflow, and report."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.integration.conftest import run_cli
from tests.utils.processes import prefect_client, stop_group
from tests.utils.processes import wait_for as poll_until

pytestmark = pytest.mark.integration


def wait_for(condition, timeout: float, what: str, process: subprocess.Popen):  # type: ignore[no-untyped-def]
    """Poll until `condition` holds, failing early with the process's output if it exits."""

    def alive_and(condition=condition):  # type: ignore[no-untyped-def]
        if process.poll() is not None:
            output = process.stdout.read() if process.stdout else ""
            pytest.fail(f"the schedule process exited while waiting for {what}:\n{output[-4000:]}")
        return condition()

    return poll_until(alive_and, timeout, what)


def test_schedule_serves_a_cron_deployment_whose_runs_train_and_publish_artifacts(
    tmp_path: Path, prefect_api_url: str
) -> None:
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    tracking_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEUROFLOW_")} | {"PREFECT_API_URL": prefect_api_url}
    command = [
        str(Path(sys.executable).with_name("neuroflow")),
        "schedule",
        "--cron",
        "30 4 * * 1",
        "--name",
        "weekly-test",
        "--epochs",
        "3",
        "--tracking-uri",
        tracking_uri,
    ]
    process = subprocess.Popen(
        command,
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    client = prefect_client(prefect_api_url)
    try:

        def deployment():  # type: ignore[no-untyped-def]
            try:
                return client.read_deployment_by_name("training/weekly-test")
            except Exception:
                return None

        served = wait_for(deployment, 120, "the deployment to be registered", process)
        assert [schedule.schedule.cron for schedule in served.schedules] == ["30 4 * * 1"]
        assert served.parameters["overrides"]["network"] == {"epochs": 3}

        run = client.create_flow_run_from_deployment(served.id)

        def finished():  # type: ignore[no-untyped-def]
            state = client.read_flow_run(run.id).state
            return state if state is not None and state.is_final() else None

        state = wait_for(finished, 240, "the flow run to finish", process)
        assert state.is_completed(), state.message

        keys = {
            artifact.key: artifact
            for artifact in client.read_artifacts(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id])))
        }
        summary = keys["training-summary-neuroflow-breast-cancer"].data
        assert "neuroflow-breast_cancer v1: promoted to **champion**" in summary
        assert "| test rows | 114 |" in summary
        link = keys["mlflow-run-neuroflow-breast-cancer"].data
        mlflow_run = MlflowClient(tracking_uri).get_model_version_by_alias("neuroflow-breast_cancer", "champion").run_id
        assert link.endswith(f"/#/experiments/1/runs/{mlflow_run})")
        tags = MlflowClient(tracking_uri).get_run(mlflow_run).data.tags
        assert tags["neuroflow.prefect_flow_run_id"] == str(run.id)
        assert tags["neuroflow.prefect_flow_run_url"].endswith(f"/runs/flow-run/{run.id}")
    finally:
        stop_group(process, signal.SIGINT, grace=30)
    after = client.read_deployment_by_name("training/weekly-test")
    assert not after.paused and all(schedule.active for schedule in after.schedules)


def test_schedule_refuses_a_bad_cron_and_explains(tmp_path: Path, prefect_api_url: str) -> None:
    result = run_cli(["schedule", "--cron", "every night"], tmp_path, prefect_api_url)
    assert result.returncode == 1
    assert "invalid --cron 'every night'" in result.stderr and "0 3 * * *" in result.stderr
    assert "Traceback" not in result.stderr


def test_schedule_without_a_prefect_server_says_how_to_start_one(tmp_path: Path) -> None:
    result = run_cli(["schedule", "--cron", "0 3 * * *"], tmp_path, api_url="http://127.0.0.1:9/api")
    assert result.returncode == 1
    assert "does not answer" in result.stderr and "Traceback" not in result.stderr

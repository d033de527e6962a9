"""The compose stack as a team runs it: PostgreSQL, MLflow server, Prefect server and worker, the prediction service.

The processes are the compose file's own services (see tests/utils/stack.py): the worker applies prefect.yaml, the
test triggers the scheduled deployment, and the model that run registers is served by the service.
"""

import itertools
import json
import os
import secrets
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.utils.processes import prefect_client, wait_for
from tests.utils.stack import ROOT, Stack

pytestmark = pytest.mark.integration

MODEL = "neuroflow-breast_cancer"
needs_compose = pytest.mark.skipif(
    shutil.which("docker-compose") is None, reason="needs Debian's docker-compose (scripts/setup_test_tools.sh)"
)


@needs_compose
def test_the_compose_file_is_valid_with_the_example_env(tmp_path: Path) -> None:
    shutil.copy(ROOT / "docker-compose.yml", tmp_path)
    shutil.copy(ROOT / ".env.example", tmp_path / ".env")
    result = subprocess.run(
        ["docker-compose", "-f", str(tmp_path / "docker-compose.yml"), "config", "-q"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    config = subprocess.run(
        ["docker-compose", "-f", str(tmp_path / "docker-compose.yml"), "config", "--services"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert sorted(config.stdout.split()) == ["mlflow", "postgres", "prefect-server", "prefect-worker", "service"]


@needs_compose
def test_a_broken_compose_file_is_caught_by_the_parser(tmp_path: Path) -> None:
    """The check above can fail: a healthcheck with a misspelt key is refused."""
    broken = (ROOT / "docker-compose.yml").read_text().replace("      interval: 5s\n", "      intervall: 5s\n", 1)
    (tmp_path / "docker-compose.yml").write_text(broken)
    shutil.copy(ROOT / ".env.example", tmp_path / ".env")
    result = subprocess.run(
        ["docker-compose", "-f", str(tmp_path / "docker-compose.yml"), "config", "-q"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0 and "intervall" in result.stderr


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The whole stack with basic auth on MLflow and a bearer token on the service; stopped even if a test fails."""
    if shutil.which("docker-compose") is None:
        pytest.skip("needs Debian's docker-compose (scripts/setup_test_tools.sh)")
    started = time.monotonic()
    stack = Stack.create(
        tmp_path_factory.mktemp("stack"),
        MLFLOW_SERVER_EXTRA_ARGS="--app-name basic-auth",
        MLFLOW_TRACKING_USERNAME="admin",
        MLFLOW_TRACKING_PASSWORD=secrets.token_hex(12),
        MLFLOW_FLASK_SERVER_SECRET_KEY=secrets.token_hex(16),
        NEUROFLOW_SERVICE__AUTH_TOKEN=secrets.token_hex(16),
        NEUROFLOW_SERVICE__POLL_SECONDS="5",
        NEUROFLOW_NETWORK__EPOCHS="8",
    )
    try:
        stack.create_databases()
        stack.start("mlflow")
        stack.start("prefect-server")
        stack.wait_healthy(["mlflow", "prefect-server"], timeout=180)
        stack.start("prefect-worker")
        stack.start("service")
        stack.wait_healthy(["prefect-worker", "service"], timeout=180)
        stack.timings["healthy"] = time.monotonic() - started
        yield stack
    finally:
        stack.stop()
        stack.drop_databases()
        print(f"\nstack timings (s): {json.dumps({k: round(v, 1) for k, v in stack.timings.items()})}")


def mlflow_client(stack: Stack) -> Any:
    """An MLflow client that logs in the way the worker and the service do (basic auth from .env)."""
    from mlflow.tracking import MlflowClient

    os.environ["MLFLOW_TRACKING_USERNAME"] = stack.env["MLFLOW_TRACKING_USERNAME"]
    os.environ["MLFLOW_TRACKING_PASSWORD"] = stack.env["MLFLOW_TRACKING_PASSWORD"]
    return MlflowClient(stack.url("mlflow"))


@pytest.fixture
def logged_in(stack: Stack) -> Iterator[Any]:
    yield mlflow_client(stack)
    os.environ.pop("MLFLOW_TRACKING_USERNAME", None)
    os.environ.pop("MLFLOW_TRACKING_PASSWORD", None)


def predict(stack: Stack, rows: list[dict[str, Any]]) -> tuple[int, dict[str, Any], str | None]:
    token = stack.env["NEUROFLOW_SERVICE__AUTH_TOKEN"]
    request = urllib.request.Request(
        stack.url("service") + "/predict",
        data=json.dumps({"records": rows}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read()), response.headers.get("X-Model-Version")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}"), None


def run_deployment(stack: Stack, overrides: dict[str, Any] | None = None) -> Any:
    """Trigger the scheduled deployment now, as `prefect deployment run training/nightly` does."""
    client = prefect_client(stack.url("prefect-server") + "/api")
    deployment = client.read_deployment_by_name("training/nightly")
    parameters = {"overrides": overrides} if overrides else None
    return client.create_flow_run_from_deployment(deployment.id, parameters=parameters)


def wait_finished(stack: Stack, run_ids: list[Any], timeout: float) -> list[Any]:
    client = prefect_client(stack.url("prefect-server") + "/api")

    def states() -> list[Any] | None:
        current = [client.read_flow_run(run_id).state for run_id in run_ids]
        return current if all(state is not None and state.is_final() for state in current) else None

    try:
        return wait_for(states, timeout, f"flow runs {run_ids}")
    except AssertionError:
        raise AssertionError(f"flow runs did not finish\n--- worker\n{stack.tail('prefect-worker')}") from None


def breast_cancer_rows(count: int) -> list[dict[str, Any]]:
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame.drop(columns=["target"])
    return [{key: float(value) for key, value in row.items()} for row in frame.head(count).to_dict("records")]


def test_the_scheduled_deployment_trains_registers_and_the_service_serves_it(stack: Stack, logged_in: Any) -> None:
    client = prefect_client(stack.url("prefect-server") + "/api")
    deployment = client.read_deployment_by_name("training/nightly")
    assert [schedule.schedule.cron for schedule in deployment.schedules] == ["0 3 * * *"]
    assert deployment.work_pool_name == "neuroflow" and not deployment.paused

    before = predict(stack, breast_cancer_rows(1))
    assert before[0] == 503  # no champion yet: the service says so instead of guessing

    started = time.monotonic()
    run = run_deployment(stack)
    [state] = wait_finished(stack, [run.id], timeout=420)
    stack.timings["first_flow_run"] = time.monotonic() - started
    assert state.is_completed(), f"{state.message}\n--- worker\n{stack.tail('prefect-worker')}"

    champion = logged_in.get_model_version_by_alias(MODEL, "champion")
    assert champion.version == "1"
    mlflow_run = logged_in.get_run(champion.run_id)
    assert mlflow_run.info.status == "FINISHED"
    assert mlflow_run.info.artifact_uri.startswith("mlflow-artifacts:")  # proxied through the server
    assert mlflow_run.data.metrics["test_roc_auc"] > 0.9
    assert mlflow_run.data.tags["neuroflow.prefect_flow_run_id"] == str(run.id)
    assert {artifact.path for artifact in logged_in.list_artifacts(champion.run_id, "plots")}
    assert "mlflow.note.content" in mlflow_run.data.tags

    artifacts = {artifact.key for artifact in client.read_artifacts() if artifact.flow_run_id == run.id}
    assert {"training-summary-neuroflow-breast-cancer", "mlflow-run-neuroflow-breast-cancer"} <= artifacts

    with pytest.raises(urllib.error.HTTPError) as refused:  # basic auth is on: no credentials, no data
        urllib.request.urlopen(stack.url("mlflow") + "/api/2.0/mlflow/experiments/search?max_results=1", timeout=10)
    assert refused.value.code == 401

    def served() -> tuple[int, dict[str, Any], str | None] | None:
        answer = predict(stack, breast_cancer_rows(3))
        return answer if answer[0] == 200 else None

    _, body, version = wait_for(served, 60, "the service to serve the new champion")
    assert version == "1" and body["model_version"] == "1"
    assert len(body["predictions"]) == 3
    stack.timings["served_after_run"] = time.monotonic() - started


def test_concurrent_trainings_take_turns_on_the_alias(stack: Stack, logged_in: Any) -> None:
    from pipelines.registry import HISTORY_TAG, lock_name

    if not logged_in.search_model_versions(f"name='{MODEL}'"):
        pytest.skip("needs the first test's version 1")
    started = time.monotonic()
    runs = [run_deployment(stack, {"data": {"seed": seed}}) for seed in (1, 2, 3)]
    states = wait_finished(stack, [run.id for run in runs], timeout=600)
    stack.timings["three_concurrent_runs"] = time.monotonic() - started
    assert all(state.is_completed() for state in states), [state.message for state in states]

    versions = logged_in.search_model_versions(f"name='{MODEL}'")
    assert sorted(int(version.version) for version in versions) == [1, 2, 3, 4]
    assert len({version.run_id for version in versions}) == 4
    assert not logged_in.search_registered_models(f"name='{lock_name(MODEL, 'champion')}'")

    history = json.loads(logged_in.get_registered_model(MODEL).tags[HISTORY_TAG])
    for earlier, later in itertools.pairwise(history):
        assert later["previous"] == earlier["version"], history  # no move was lost or made on a stale read
    by_version = {version.version: version for version in versions}
    for entry in history[1:]:
        decided_against = by_version[entry["version"]].tags["neuroflow.champion_version_at_decision"]
        assert decided_against == entry["previous"], (entry, by_version[entry["version"]].tags)
    champion = logged_in.get_model_version_by_alias(MODEL, "champion").version
    assert champion == history[-1]["version"]

    def serving_champion() -> bool:
        return predict(stack, breast_cancer_rows(1))[2] == champion

    wait_for(serving_champion, 60, f"the service to follow the champion to v{champion}")

"""The compose stack as a team runs it: PostgreSQL, MLflow server, Prefect server and worker, the prediction service.

The processes are the compose file's own services (see tests/utils/stack.py): the worker applies prefect.yaml, the
test triggers the scheduled deployment, and the model that run registers is served by the service.
"""

import base64
import itertools
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.utils.processes import prefect_client, wait_for
from tests.utils.stack import ROOT, Stack

pytestmark = pytest.mark.integration

MODEL = "neuroflow-breast_cancer"
needs_compose = pytest.mark.skipif(
    shutil.which("docker-compose") is None, reason="needs Debian's docker-compose (scripts/setup_test_tools.sh)"
)


def compose_config(folder: Path, compose_text: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`docker-compose config ARGS` on a compose file beside a copy of .env.example as its .env."""
    (folder / "docker-compose.yml").write_text(compose_text)
    shutil.copy(ROOT / ".env.example", folder / ".env")
    command = ["docker-compose", "-f", str(folder / "docker-compose.yml"), "config", *args]
    return subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)


@needs_compose
def test_the_compose_file_is_valid_with_the_example_env(tmp_path: Path) -> None:
    compose = (ROOT / "docker-compose.yml").read_text()
    checked = compose_config(tmp_path, compose, "-q")
    assert checked.returncode == 0, checked.stderr
    services = compose_config(tmp_path, compose, "--services").stdout.split()
    assert sorted(services) == ["mlflow", "postgres", "prefect-server", "prefect-worker", "service"]


@needs_compose
def test_a_broken_compose_file_is_caught_by_the_parser(tmp_path: Path) -> None:
    """The check above can fail: a healthcheck with a misspelt key is refused."""
    broken = (ROOT / "docker-compose.yml").read_text().replace("      interval: 5s\n", "      intervall: 5s\n", 1)
    result = compose_config(tmp_path, broken, "-q")
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
        NEUROFLOW_SERVICE__LIVE_METRICS_SECONDS="2",
        NEUROFLOW_NETWORK__EPOCHS="8",
        NEUROFLOW_MONITORING__RETRAIN_DATA="/data/incoming/fresh.csv",
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


def ensure_a_version(stack: Stack, client: Any) -> None:
    """A test that needs a registered version stands alone: the first test's version 1 when it ran, else one
    trained here through the same deployment."""
    if client.search_model_versions(f"name='{MODEL}'"):
        return
    states = wait_finished(stack, [run_deployment(stack).id], timeout=600)
    assert all(state.is_completed() for state in states), (states, stack.tail("prefect-worker"))
    assert client.search_model_versions(f"name='{MODEL}'"), "the training deployment registered no version"


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


def breast_cancer_frame() -> pd.DataFrame:
    from sklearn.datasets import load_breast_cancer

    return load_breast_cancer(as_frame=True).frame


def shifted(frame: pd.DataFrame, columns: list[str], deviations: float = 3.0) -> pd.DataFrame:
    """The same rows with `columns` moved by a few standard deviations (the world changed; labels did not)."""
    moved = frame.copy()
    for column in columns:
        moved[column] = moved[column] + deviations * frame[column].std()
    return moved


def serve_rows(stack: Stack, frame: pd.DataFrame, batch: int = 25) -> tuple[list[str], list[str]]:
    """Send the rows' features to /predict; the request ids and versions of the answers, in order."""
    features = frame.drop(columns="target")
    ids, versions = [], []
    for start in range(0, len(features), batch):
        rows = [
            {key: float(value) for key, value in row.items()}
            for row in features.iloc[start : start + batch].to_dict("records")
        ]
        status, body, version = predict(stack, rows)
        assert status == 200, body
        ids += [item["request_id"] for item in body["predictions"]]
        versions.append(str(version))
    return ids, versions


def neuroflow_cli(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    """A `neuroflow` command as an operator runs it beside the worker (its environment: servers, log, secrets)."""
    command = [str(Path(sys.executable).with_name("neuroflow")), *args]
    return subprocess.run(
        command,
        cwd=stack.working_dir("prefect-worker"),
        env=stack.environment("prefect-worker"),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_loop_drift_retrains_through_the_gate_and_the_service_follows(
    stack: Stack, logged_in: Any, tmp_path: Path
) -> None:
    """Served records land in PostgreSQL; in-distribution traffic is no drift; labels come back as live metrics;
    shifted traffic is drift, the hourly monitoring deployment runs the training deployment on fresh data, the new
    version meets the gate, and the service answers with it once it wins. A second look in the cool-down retrains
    nothing."""
    champion = logged_in.get_model_version_by_alias(MODEL, "champion").version
    frame = breast_cancer_frame()
    calm = frame.sample(200, random_state=7)
    started = time.monotonic()
    ids, versions = serve_rows(stack, calm)
    assert set(versions) == {champion}
    logged = wait_for(
        lambda: int(stack.query("PREDICTIONS_DB", "SELECT count(*) FROM neuroflow_predictions")) >= 200 or None,
        30,
        "the served records in PostgreSQL",
    )
    assert logged

    looked = neuroflow_cli(stack, "monitor", "--last", "200", "--json")
    assert looked.returncode == 0, looked.stderr[-3000:]
    verdict = json.loads(looked.stdout.strip().splitlines()[-1])
    assert verdict["drift_detected"] is False and verdict["verdict"] == "no drift", verdict
    assert verdict["rows"] == 200 and verdict["model_version"] == champion
    stack.timings["monitor_cli"] = time.monotonic() - started

    # Labels come back: half through the service, half in bulk from a file.
    token = stack.env["NEUROFLOW_SERVICE__AUTH_TOKEN"]
    labels = calm["target"].astype(int).tolist()
    body = {"feedback": [{"request_id": i, "label": y} for i, y in zip(ids[:100], labels[:100], strict=True)]}
    request = urllib.request.Request(
        stack.url("service") + "/feedback",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert json.loads(response.read()) == {"recorded": 100, "unknown_ids": []}
    bulk = tmp_path / "labels.csv"
    pd.DataFrame({"id": [*ids[100:], "never-served-0"], "truth": [*labels[100:], 1]}).to_csv(bulk, index=False)
    loaded = neuroflow_cli(stack, "feedback", "--data", str(bulk), "--id-column", "id", "--target", "truth")
    assert loaded.returncode == 0 and "recorded 100 label(s)" in loaded.stdout, loaded.stderr[-2000:]
    assert "never-served-0" in loaded.stderr

    def live_accuracy() -> float | None:
        with urllib.request.urlopen(stack.url("service") + "/metrics", timeout=10) as response:
            text = response.read().decode()
        found = re.search(
            rf'^neuroflow_live_metric{{(?=[^}}]*metric="accuracy")(?=[^}}]*model_version="{champion}")'
            rf'(?=[^}}]*role="champion")[^}}]*}} (\S+)$',
            text,
            re.M,
        )
        return float(found.group(1)) if found else None

    assert wait_for(live_accuracy, 60, "the live accuracy gauge") >= 0.85

    # The world moves: 15 of 30 features by 3 standard deviations. Fresh labelled data of the new world is on disk.
    moved = list(frame.columns[:15])
    incoming = stack.root / "data" / "incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    shifted(frame, moved).to_csv(incoming / "fresh.csv", index=False)
    serve_rows(stack, shifted(frame.sample(200, random_state=8), moved))
    client = prefect_client(stack.url("prefect-server") + "/api")
    monitoring = client.read_deployment_by_name("monitoring/hourly")
    assert [schedule.schedule.cron for schedule in monitoring.schedules] == ["0 * * * *"]
    looks = [client.create_flow_run_from_deployment(monitoring.id, parameters={"last": 200})]
    [state] = wait_finished(stack, [looks[0].id], timeout=300)
    assert state.is_completed(), f"{state.message}\n--- worker\n{stack.tail('prefect-worker')}"
    stack.timings["monitoring_run"] = time.monotonic() - started

    [look] = logged_in.search_runs(  # the MLflow run of this very look (an hourly one may have come too)
        [logged_in.get_experiment_by_name("neuroflow").experiment_id],
        f"tags.`neuroflow.kind` = 'monitoring' and tags.`neuroflow.prefect_flow_run_id` = '{looks[0].id}'",
    )
    assert look.data.tags["neuroflow.drift"] == "drift"
    assert look.data.tags["neuroflow.monitored_model_version"] == champion
    assert look.data.metrics["share_drifted"] >= 0.3
    assert "drift_report.html" in {artifact.path for artifact in logged_in.list_artifacts(look.info.run_id)}
    artifacts = {artifact.key for artifact in client.read_artifacts() if artifact.flow_run_id == looks[0].id}
    assert "monitoring-neuroflow-breast-cancer" in artifacts

    def retrainings() -> list[Any]:
        return [run for run in client.read_flow_runs() if "neuroflow-drift-retrain" in (run.tags or [])]

    [retraining] = wait_for(retrainings, 60, "the drift-triggered training run")
    [trained] = wait_finished(stack, [retraining.id], timeout=420)
    assert trained.is_completed(), f"{trained.message}\n--- worker\n{stack.tail('prefect-worker')}"
    stack.timings["retraining_run"] = time.monotonic() - started
    assert retraining.parameters["data_path"].endswith("fresh.csv")

    [new] = [v for v in logged_in.search_model_versions(f"name='{MODEL}'") if int(v.version) > int(champion)]
    assert new.tags["neuroflow.champion_version_at_decision"] == champion  # judged by the same gate
    now = logged_in.get_model_version_by_alias(MODEL, "champion").version
    if now == new.version:  # it won on the new world's held-out rows: the service follows it
        wait_for(lambda: predict(stack, breast_cancer_rows(1))[2] == new.version, 60, "the service to follow")
    else:
        assert now == champion
    stack.timings["loop_total"] = time.monotonic() - started

    # A second look at the same drift, inside the cool-down: judged and published, but no second training.
    looks.append(client.create_flow_run_from_deployment(monitoring.id, parameters={"last": 200, "version": champion}))
    [again] = wait_finished(stack, [looks[1].id], timeout=300)
    assert again.is_completed(), f"{again.message}\n--- worker\n{stack.tail('prefect-worker')}"
    assert len(retrainings()) == 1  # the cool-down held (an hourly look in between would have met it too)
    assert "cool-down" in stack.tail("prefect-worker", 20_000)


def test_concurrent_trainings_take_turns_on_the_alias(stack: Stack, logged_in: Any) -> None:
    from neuroflow.pipelines.bookkeeping.registry import HISTORY_TAG, lock_name

    ensure_a_version(stack, logged_in)
    started = time.monotonic()
    before = len(logged_in.search_model_versions(f"name='{MODEL}'"))
    runs = [run_deployment(stack, {"data": {"seed": seed}}) for seed in (1, 2, 3)]
    states = wait_finished(stack, [run.id for run in runs], timeout=600)
    stack.timings["three_concurrent_runs"] = time.monotonic() - started
    assert all(state.is_completed() for state in states), [state.message for state in states]

    versions = logged_in.search_model_versions(f"name='{MODEL}'")
    assert sorted(int(version.version) for version in versions) == list(range(1, before + 4))
    assert len({version.run_id for version in versions}) == before + 3
    assert not logged_in.search_registered_models(f"name='{lock_name(MODEL, 'champion')}'")
    # Both servers keep their state in PostgreSQL, not in a file beside them.
    assert stack.query("MLFLOW_DB", f"SELECT count(*) FROM model_versions WHERE name = '{MODEL}'") == str(before + 3)
    flow_runs = stack.query("PREFECT_DB", "SELECT count(*) FROM flow_run WHERE state_type = 'COMPLETED'")
    assert int(flow_runs) >= 4

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


def test_the_daily_scoring_deployment_scores_the_incoming_file(stack: Stack, logged_in: Any) -> None:
    """The compose worker's second deployment: the file dropped into the `incoming` volume is scored with the
    champion into the `scored` volume, and the MLflow UI shows what that version scored."""
    ensure_a_version(stack, logged_in)
    from sklearn.datasets import load_breast_cancer

    incoming = stack.root / "data" / "incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    load_breast_cancer(as_frame=True).frame.drop(columns="target").head(200).to_csv(incoming / "score.csv", index=False)
    client = prefect_client(stack.url("prefect-server") + "/api")
    deployment = client.read_deployment_by_name("scoring/daily")
    assert [schedule.schedule.cron for schedule in deployment.schedules] == ["0 4 * * *"]
    run = client.create_flow_run_from_deployment(deployment.id)
    [state] = wait_finished(stack, [run.id], timeout=300)
    assert state.is_completed(), f"{state.message}\n--- worker\n{stack.tail('prefect-worker')}"
    champion = logged_in.get_model_version_by_alias(MODEL, "champion").version
    [scored] = logged_in.search_runs(
        [logged_in.get_experiment_by_name("neuroflow").experiment_id],
        f"tags.`neuroflow.kind` = 'scoring' and tags.`neuroflow.prefect_flow_run_id` = '{run.id}'",
    )
    assert scored.data.tags["neuroflow.scored_model_version"] == champion
    assert scored.data.metrics["rows_scored"] == 200 and scored.data.metrics["rows_rejected"] == 0
    [output] = list((stack.root / "data" / "scored").glob(f"score-{MODEL}-v{champion}-*.parquet"))
    assert len(pd.read_parquet(output)) == 200
    artifacts = {artifact.key for artifact in client.read_artifacts() if artifact.flow_run_id == run.id}
    assert "scoring-summary-neuroflow-breast-cancer" in artifacts


class Browser:
    """Debian's headless Chromium through its chromedriver (Selenium); no browser is downloaded."""

    def __init__(self, width: int = 1440, height: int = 960) -> None:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        options = webdriver.ChromeOptions()
        options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
        for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
            options.add_argument(argument)
        options.add_argument(f"--window-size={width},{height}")
        service = Service(executable_path=shutil.which("chromedriver") or "/usr/bin/chromedriver")
        self.driver = webdriver.Chrome(options=options, service=service)

    def log_in(self, username: str, password: str) -> None:
        """Send basic-auth credentials with every request, as a browser does once the user has typed them."""
        token = base64.b64encode(f"{username}:{password}".encode()).decode()
        self.driver.execute_cdp_cmd("Network.enable", {})
        self.driver.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {"Authorization": f"Basic {token}"}})

    def bearer(self, token: str) -> None:
        """Send a bearer token with every request (the service's auth), as an API tool configured with it does."""
        self.driver.execute_cdp_cmd("Network.enable", {})
        self.driver.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {"Authorization": f"Bearer {token}"}})

    def remember(self, url: str, settings: dict[str, str]) -> None:
        """Store UI preferences for a site in its localStorage, as a returning user has them."""
        self.driver.get(url)
        for key, value in settings.items():
            self.driver.execute_script("window.localStorage.setItem(arguments[0], arguments[1])", key, value)

    def open(self, url: str | None, *texts: str, timeout: float = 60) -> str:
        """Load a page (None: stay on this one) and wait until every one of `texts` is visible on it; returns the
        page's text."""
        if url is not None:
            self.driver.get(url)
        deadline = time.monotonic() + timeout
        while True:
            body = self.driver.find_element("tag name", "body").text
            if all(text in body for text in texts):
                time.sleep(1)  # let charts and images finish drawing before a screenshot
                return str(self.driver.find_element("tag name", "body").text)
            if time.monotonic() > deadline:
                missing = [text for text in texts if text not in body]
                raise AssertionError(f"{url or 'the page'} never showed {missing}; it shows:\n{body[:3000]}")
            time.sleep(0.5)

    def close_panels(self, selector: str) -> None:
        """Click every close button matching `selector` (side panels a person would close before looking)."""
        self.driver.execute_script(
            "document.querySelectorAll(arguments[0]).forEach(button => button.click())", selector
        )
        time.sleep(0.5)

    def scroll_to(self, text: str) -> Any:
        """Bring the first element whose own text is `text` to the top of its scrolling area."""
        element = self.driver.find_element("xpath", f"//*[normalize-space(text())='{text}']")
        self.driver.execute_script("arguments[0].scrollIntoView({block: 'start'})", element)
        time.sleep(0.5)
        return element

    def images_loaded(self) -> int:
        """How many <img> elements on the page have loaded a picture."""
        script = "return [...document.images].filter(i => i.complete && i.naturalWidth > 100).length"
        return int(self.driver.execute_script(script))

    def screenshot(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        assert self.driver.save_screenshot(str(path))
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 20_000
        copy_to = os.environ.get("SCREENSHOTS_DIR")  # `make screenshots` refreshes the README pictures
        if copy_to and path.name in README_PICTURES:
            folder = ROOT / copy_to  # relative to the checkout (tests run in a scratch folder)
            folder.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, folder / path.name)
        return path

    def close(self) -> None:
        self.driver.quit()


README_PICTURES = {
    "drift-report.png",
    "mlflow-run.png",
    "mlflow-model.png",
    "mlflow-plot.png",
    "prefect-deployment.png",
    "service-docs.png",
}
# The MLflow 3.17 UI opens its chat assistant beside pages on a first visit; a returning user has closed it.
MLFLOW_ASSISTANT_CLOSE = 'button[aria-label="Close"]'
MLFLOW_ASSISTANT_CLOSED = {
    "mlflow.assistant.fab.autoOpenedOnFirstLoad_v1": "true",
    "mlflow.assistant.panelOpen_v1": "false",
}
_chromium_missing = pytest.mark.skipif(
    shutil.which("chromium") is None or shutil.which("chromedriver") is None,
    reason="needs Debian's chromium and chromium-driver (scripts/setup_test_tools.sh)",
)


def needs_chromium(test: Any) -> Any:
    """A browser test: marked `browser`, and skipped where Debian's Chromium is missing."""
    return pytest.mark.browser(_chromium_missing(test))


@needs_chromium
def test_a_person_finds_the_run_its_plots_and_the_champion_in_the_mlflow_ui(
    stack: Stack, logged_in: Any, tmp_path: Path
) -> None:
    champion = logged_in.get_model_version_by_alias(MODEL, "champion")
    run = logged_in.get_run(champion.run_id)
    experiment = logged_in.get_experiment(run.info.experiment_id)
    base = stack.url("mlflow")
    browser = Browser()
    try:
        browser.log_in(stack.env["MLFLOW_TRACKING_USERNAME"], stack.env["MLFLOW_TRACKING_PASSWORD"])
        browser.remember(base, MLFLOW_ASSISTANT_CLOSED)
        browser.open(f"{base}/#/experiments/{experiment.experiment_id}/runs", experiment.name, run.info.run_name)
        browser.close_panels(MLFLOW_ASSISTANT_CLOSE)
        browser.screenshot(tmp_path / "mlflow-experiment.png")
        page = browser.open(
            f"{base}/#/experiments/{experiment.experiment_id}/runs/{run.info.run_id}",
            run.info.run_name,
            "test_roc_auc",
            "network.hidden_units",
        )
        assert MODEL in page  # the run names the model version it registered
        browser.close_panels(MLFLOW_ASSISTANT_CLOSE)
        browser.screenshot(tmp_path / "mlflow-run.png")
        browser.open(
            f"{base}/#/experiments/{experiment.experiment_id}/runs/{run.info.run_id}/artifacts/plots/learning_curves.png",
            "learning_curves.png",
        )
        wait_for(browser.images_loaded, 30, "the learning-curve plot to load")
        browser.close_panels(MLFLOW_ASSISTANT_CLOSE)
        browser.screenshot(tmp_path / "mlflow-plot.png")
        page = browser.open(f"{base}/#/models/{MODEL}", MODEL, "champion", f"Version {champion.version}")
        aliases = browser.scroll_to("Versions")
        assert aliases.is_displayed()
        browser.close_panels(MLFLOW_ASSISTANT_CLOSE)
        browser.screenshot(tmp_path / "mlflow-model.png")
    finally:
        browser.close()


@needs_chromium
def test_a_person_reads_the_served_model_on_the_swagger_page(stack: Stack, logged_in: Any, tmp_path: Path) -> None:
    """/docs in a browser: titled with the served model and version, /predict with a real training row as its
    example and its answer typed (0/1 integers for breast_cancer)."""
    ensure_a_version(stack, logged_in)
    version = predict(stack, breast_cancer_rows(1))[2]
    browser = Browser(height=1500)
    try:
        browser.bearer(stack.env["NEUROFLOW_SERVICE__AUTH_TOKEN"])
        browser.open(f"{stack.url('service')}/docs", f"neuroflow: {MODEL} v{version}", "/predict", "/metadata")
        browser.driver.find_element("xpath", "//span[@data-path='/predict']").click()
        page = browser.open(None, "Example Value", "mean radius", "422")
        assert "googletagmanager" not in browser.driver.page_source
        assert "PredictOutput" in page and "500" not in page.split("Responses")[-1][:200]
        browser.screenshot(tmp_path / "service-docs.png")
    finally:
        browser.close()


@needs_chromium
def test_a_person_finds_the_deployment_and_its_schedule_in_the_prefect_ui(stack: Stack, tmp_path: Path) -> None:
    client = prefect_client(stack.url("prefect-server") + "/api")
    deployment = client.read_deployment_by_name("training/nightly")
    browser = Browser()
    try:
        browser.open(f"{stack.url('prefect-server')}/deployments", "nightly", "training")
        page = browser.open(
            f"{stack.url('prefect-server')}/deployments/deployment/{deployment.id}", "nightly", "neuroflow"
        )
        assert "At 03:00 AM" in page or "0 3 * * *" in page, page[:2000]
        browser.screenshot(tmp_path / "prefect-deployment.png")
        runs = [run for run in client.read_flow_runs() if run.deployment_id == deployment.id]
        if runs:
            browser.open(f"{stack.url('prefect-server')}/runs/flow-run/{runs[0].id}", runs[0].name)
            browser.screenshot(tmp_path / "prefect-flow-run.png")
    finally:
        browser.close()


@needs_chromium
def test_a_person_reads_the_drift_report_offline(stack: Stack, logged_in: Any, tmp_path: Path) -> None:
    """The monitoring run's HTML report, downloaded from MLflow and opened from disk with no network: Evidently's
    verdict, the drifted columns and their tests."""
    experiment = logged_in.get_experiment_by_name("neuroflow").experiment_id
    looks = logged_in.search_runs([experiment], "tags.`neuroflow.drift` = 'drift'", order_by=["start_time ASC"])
    assert looks, "no monitoring run found drift: this test reads the loop test's report, run the file whole"
    report = Path(logged_in.download_artifacts(looks[0].info.run_id, "drift_report.html", str(tmp_path)))
    assert '<script src="http' not in report.read_text()
    browser = Browser(height=1300)
    try:
        page = browser.open(report.as_uri(), "Dataset Drift is detected", "Share of Drifted Columns", "K-S p_value")
        assert "Drift in column 'prediction'" in page
        browser.driver.find_element("xpath", "//*[normalize-space(text())='Drift Score']").click()  # drifted first
        table = browser.open(None, "Drift Score").split("Drift Score", 1)[1]
        assert table.split("\n")[2].startswith("Detected"), table[:300]  # the smallest p-value: a drifted column
        browser.screenshot(tmp_path / "drift-report.png")
    finally:
        browser.close()


@needs_chromium
def test_a_person_reads_the_model_card_and_the_data_report_offline_and_from_the_service(
    stack: Stack, logged_in: Any, tmp_path: Path
) -> None:
    """The champion's model card from the running service (GET /model-card, as the registry holds it), and its run's
    model card and data validation page downloaded from MLflow and opened from disk with no network."""
    champion = logged_in.get_model_version_by_alias(MODEL, "champion")
    request = urllib.request.Request(
        stack.url("service") + "/model-card",
        headers={"Authorization": f"Bearer {stack.env['NEUROFLOW_SERVICE__AUTH_TOKEN']}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        served = response.read().decode()
        assert response.headers["Content-Type"].startswith("text/markdown")
    assert served.startswith(f"# Model card: {MODEL} v") and "## Promotion decision" in served
    assert served == logged_in.get_model_version(MODEL, response.headers["X-Model-Version"]).description
    card = Path(logged_in.download_artifacts(champion.run_id, "model_card/model_card.html", str(tmp_path)))
    report = Path(logged_in.download_artifacts(champion.run_id, "data_report/validation.html", str(tmp_path)))
    for page in (card, report):
        assert "<script" not in page.read_text() and "http" not in page.read_text()
    browser = Browser(height=1300)
    try:
        page = browser.open(card.as_uri(), f"Model card: {MODEL} v{champion.version}", "Performance", "95% interval")
        assert "gradient boosting" in page and "permutation importance" in page
        browser.screenshot(tmp_path / "model-card.png")
        page = browser.open(report.as_uri(), "Data validation (Great Expectations)", "expectations met")
        assert "passed" in page
        browser.screenshot(tmp_path / "data-report.png")
    finally:
        browser.close()

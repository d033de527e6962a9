"""The trust boundary against real processes: a real `mlflow server` behind a fault-injecting proxy, and the
installed `neuroflow` command. Under every fault the champion alias stays where it was, every registered version
carries a decision, the command ends in one paragraph and a non-zero exit, and the run is marked FAILED when the
store can still be reached."""

import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient

from tests.integration.conftest import run_cli
from tests.utils.fault_proxy import FaultProxy
from tests.utils.processes import free_port, stop_group, wait_for

pytestmark = pytest.mark.integration

MODEL = "trust-gate"
# A network that cannot beat a real champion: had the gate promoted it, the fault would have made it champion.
WEAK = ["--epochs", "1", "--hidden-units", "2", "--seed", "7"]
# A short store budget keeps the fault cases quick; the default is about a minute.
FAULT_ENV = {"NEUROFLOW_TRACKING__STORE_TIMEOUT_SECONDS": "16"}


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A real tracking server (SQLite behind it, artifacts served by it) with v1 of MODEL trained as champion."""
    root = tmp_path_factory.mktemp("trust")
    port = free_port()
    command = [
        sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        "--backend-store-uri", f"sqlite:///{root / 'server.db'}", "--artifacts-destination", str(root / "artifacts"),
    ]  # fmt: skip
    log = (root / "server.log").open("w")
    process = subprocess.Popen(command, cwd=root, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: healthy(url), 120, "the MLflow server")
        yield {"url": url, "root": root, "client": MlflowClient(url)}
    finally:
        stop_group(process)
        log.close()


@pytest.fixture(scope="module")
def champion(server: dict[str, Any], prefect_api_url: str) -> str:
    result = run_cli(["train", "--tracking-uri", server["url"], "--model-name", MODEL], server["root"], prefect_api_url)
    assert result.returncode == 0, result.stderr[-3000:]
    version = server["client"].get_model_version_by_alias(MODEL, "champion").version
    return str(version)


def train_through(proxy: FaultProxy, workdir: Path, api_url: str) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    arguments = ["train", "--tracking-uri", proxy.url, "--model-name", MODEL, *WEAK]
    result = run_cli(arguments, workdir, api_url, env=FAULT_ENV)
    return result, time.monotonic() - started


def newest_version(client: MlflowClient) -> Any:
    versions = client.search_model_versions(f"name='{MODEL}'")
    return max(versions, key=lambda version: int(version.version))


def latest_training_run(client: MlflowClient) -> Any:
    experiment = client.get_experiment_by_name("neuroflow").experiment_id
    runs = client.search_runs(
        [experiment], "tags.`neuroflow.kind` = 'training'", order_by=["attributes.start_time DESC"], max_results=1
    )
    return runs[0]


def champion_of(client: MlflowClient) -> str:
    return str(client.get_model_version_by_alias(MODEL, "champion").version)


def one_paragraph_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-3000:]
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output[-4000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr[-3000:]
    return errors[0]


def test_an_alias_read_that_fails_never_promotes(
    server: dict[str, Any], champion: str, prefect_api_url: str, tmp_path: Path
) -> None:
    """Before: the 503 read as "no champion yet" and the 2-unit, 1-epoch network became champion."""
    client = server["client"]
    with FaultProxy(server["url"]) as proxy:
        proxy.fail("/registered-models/alias", method="GET")
        result, _ = train_through(proxy, tmp_path, prefect_api_url)
    error = one_paragraph_error(result)
    assert "could not decide" in error and "did not move" in error and "neuroflow promote" in error
    assert proxy.count("/registered-models/alias", "503") >= 1
    assert champion_of(client) == champion
    candidate = newest_version(client)
    assert int(candidate.version) > int(champion)
    assert candidate.tags["neuroflow.promotion"] == "undecided"
    assert "registry" in candidate.tags["neuroflow.promotion_reason"]
    assert latest_training_run(client).info.status == "FAILED"


def test_a_registry_that_hangs_is_given_up_on_and_never_promotes(
    server: dict[str, Any], champion: str, prefect_api_url: str, tmp_path: Path
) -> None:
    """A server that accepts the alias read and never answers: MLflow's default (120 s a try, 7 retries) would wait
    about 16 minutes; the store budget (16 s here) bounds it, and the gate decides nothing."""
    client = server["client"]
    with FaultProxy(server["url"]) as proxy:
        proxy.fail("/registered-models/alias", method="GET", status=None, delay=120)
        result, seconds = train_through(proxy, tmp_path, prefect_api_url)
        proxy.dead.set()  # release the hanging handlers
    error = one_paragraph_error(result)
    assert "could not decide" in error and "timed out" in error
    assert champion_of(client) == champion
    assert newest_version(client).tags["neuroflow.promotion"] == "undecided"
    print(f"registry hung on the alias read: command ended after {seconds:.1f} s")


def test_a_lock_that_cannot_be_taken_leaves_an_undecided_version(
    server: dict[str, Any], champion: str, prefect_api_url: str, tmp_path: Path
) -> None:
    """Before: the version was registered, the lock's create failed, and the version carried no decision at all."""
    client = server["client"]
    with FaultProxy(server["url"]) as proxy:
        proxy.fail("/registered-models/create", method="POST", body=".lock-")
        result, _ = train_through(proxy, tmp_path, prefect_api_url)
    assert "could not decide" in one_paragraph_error(result)
    assert champion_of(client) == champion
    candidate = newest_version(client)
    assert candidate.tags["neuroflow.promotion"] == "undecided"
    assert candidate.tags["neuroflow.promotion_reason"].startswith("the registry failed")


def test_a_server_that_dies_after_registering_leaves_the_alias_and_a_decision_tag(
    server: dict[str, Any], champion: str, prefect_api_url: str, tmp_path: Path
) -> None:
    client = server["client"]
    before = int(newest_version(client).version)
    with FaultProxy(server["url"]) as proxy:
        proxy.die_after("/model-versions/create", method="POST")
        result, seconds = train_through(proxy, tmp_path, prefect_api_url)
        assert proxy.dead.is_set() and proxy.count("", "dropped") >= 1
    error = one_paragraph_error(result)
    assert "could not decide" in error or "did not answer" in error
    assert champion_of(client) == champion
    candidate = newest_version(client)
    assert int(candidate.version) == before + 1
    assert candidate.tags["neuroflow.promotion"] == "undecided"  # born with it: nothing after registration got through
    print(f"server died after registering: command ended after {seconds:.1f} s")


def test_a_store_failure_mid_run_marks_the_run_failed_and_registers_nothing(
    server: dict[str, Any], champion: str, prefect_api_url: str, tmp_path: Path
) -> None:
    client = server["client"]
    before = int(newest_version(client).version)
    with FaultProxy(server["url"]) as proxy:
        proxy.fail("/model-versions/create", method="POST")
        result, _ = train_through(proxy, tmp_path, prefect_api_url)
    error = one_paragraph_error(result)
    assert f"the MLflow tracking store at {proxy.url} did not answer" in error and "/health" in error
    assert int(newest_version(client).version) == before
    run = latest_training_run(client)
    assert run.info.status == "FAILED" and "did not answer" in run.data.tags["mlflow.note.content"]


def test_a_server_unreachable_from_the_start_is_one_paragraph_before_anything_loads(
    prefect_api_url: str, tmp_path: Path
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = run_cli(["train", "--tracking-uri", url], tmp_path, prefect_api_url, timeout=60)
    error = one_paragraph_error(result)
    assert f"the MLflow tracking server at {url} does not answer" in error
    assert "Training" not in result.stdout


def test_a_read_only_store_is_one_paragraph(prefect_api_url: str, tmp_path: Path) -> None:
    database = tmp_path / "mlflow.db"
    trained = run_cli(["train", "--epochs", "1"], tmp_path, prefect_api_url)
    assert trained.returncode == 0, trained.stderr[-3000:]
    read_only = f"sqlite:///file:{database}?mode=ro&uri=true"
    result = run_cli(["train", "--epochs", "1", "--tracking-uri", read_only], tmp_path, prefect_api_url)
    error = one_paragraph_error(result)
    assert "refused a write (readonly database)" in error


SECRET = "s3cr3t-Pa55word"


def test_credentials_in_the_tracking_uri_are_never_written_down(
    server: dict[str, Any], prefect_api_url: str, tmp_path: Path
) -> None:
    """Before: `--tracking-uri http://alice:pw@host` stored the password in the run's parameters and printed it in
    every "View run" link. Now the URI loses its credentials at once and MLflow gets them from its own variables."""
    from tests.utils.processes import prefect_client

    uri = server["url"].replace("http://", f"http://alice:{SECRET}@")
    model = "trust-secrets"
    result = run_cli(
        ["train", "--tracking-uri", uri, "--model-name", model, "--epochs", "2", "--verbose"], tmp_path, prefect_api_url
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert SECRET not in result.stdout + result.stderr
    assert "alice" not in result.stdout + result.stderr
    client = server["client"]
    version = client.get_model_version(model, "1")
    run = client.get_run(version.run_id)
    written = [*run.data.params.values(), *run.data.tags.values(), version.description or "", *version.tags.values()]
    assert run.data.params["tracking.tracking_uri"] == server["url"]
    assert run.data.params["tracking.password"] == "**********"
    folder = Path(client.download_artifacts(run.info.run_id, "", str(tmp_path / "artifacts")))
    for path in folder.rglob("*"):
        if path.is_file() and path.suffix in (".json", ".txt", ".yaml", ".html", ".md", ".csv", ""):
            written.append(path.read_text(errors="replace"))
    with prefect_client(prefect_api_url) as prefect:
        written += [str(artifact.data) for artifact in prefect.read_artifacts()]
    assert written and not [text for text in written if SECRET in text]


def test_neuroflow_config_hides_database_credentials(tmp_path: Path, prefect_api_url: str) -> None:
    env = {"NEUROFLOW_TRACKING__TRACKING_URI": f"postgresql://mlflow:{SECRET}@db:5432/mlflow"}
    result = run_cli(["config"], tmp_path, prefect_api_url, env=env)
    assert result.returncode == 0, result.stderr
    assert SECRET not in result.stdout and "postgresql://***@db:5432/mlflow" in result.stdout

"""The `neuroflow` command as a user runs it: a real process, its output and its exit code."""

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from tests.integration.conftest import run_cli
from tests.utils.factories import classification_frame, mixed_frame

pytestmark = pytest.mark.integration


def test_help_does_not_load_the_heavy_libraries(tmp_path: Path) -> None:
    result = run_cli(["--help"], tmp_path, api_url="http://127.0.0.1:9/api")
    assert result.returncode == 0 and "train" in result.stdout
    import subprocess
    import sys

    heavy = ("tensorflow", "mlflow", "prefect", "great_expectations")
    probe = f"import sys, neuroflow.cli; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]"


def test_mixed_csv_with_missing_values_trains_without_preparation(tmp_path: Path, prefect_api_url: str) -> None:
    mixed_frame(rows=300).to_csv(tmp_path / "customers.csv", index=False)
    result = run_cli(
        ["train", "--data", "customers.csv", "--target", "label", "--epochs", "20"], tmp_path, prefect_api_url
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "neuroflow-customers version 1 is now champion" in result.stdout
    assert "neuroflow ui" in result.stdout
    assert "epoch 1/20" in result.stderr  # progress while it trains
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    champion = client.get_model_version_by_alias("neuroflow-customers", "champion")
    accuracy = client.get_run(champion.run_id).data.metrics["test_accuracy"]
    assert accuracy > 0.7  # the label is learnable; a model that ignored the categories would sit near 0.5
    assert (tmp_path / "reports").is_dir()


@pytest.mark.parametrize(
    ("setup", "args", "expected"),
    [
        ("empty", ["--data", "data.csv", "--target", "y"], "data file data.csv is empty"),
        ("no_target", ["--data", "data.csv", "--target", "y"], "target column 'y' is not in data.csv"),
        (
            "text",
            ["--data", "data.csv", "--target", "target"],
            "column 'f1': expected numbers, found text in 8 rows, e.g. 'lots'",
        ),
    ],
)
def test_bad_data_ends_in_one_paragraph_and_no_traceback(
    tmp_path: Path, prefect_api_url: str, setup: str, args: list[str], expected: str
) -> None:
    path = tmp_path / "data.csv"
    if setup == "empty":
        path.write_text("")
    elif setup == "no_target":
        classification_frame(rows=50).to_csv(path, index=False)
    else:
        frame = classification_frame(rows=200).astype({"f1": object})
        frame.loc[np.arange(0, 200, 25), "f1"] = "lots"
        frame.to_csv(path, index=False)
    result = run_cli(["train", *args, "--epochs", "2"], tmp_path, prefect_api_url)
    assert result.returncode == 1
    assert expected in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    if setup == "text":
        assert "Report: " in result.stderr and "nothing was trained or registered" in result.stderr
        report = Path(result.stderr.split("Report: ")[-1].split()[0])
        assert report.is_file() and report.suffix == ".html"
        client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
        assert client.search_registered_models() == []


def test_an_imbalanced_mixed_csv_with_id_and_constant_columns_trains_and_says_what_it_did(
    tmp_path: Path, prefect_api_url: str
) -> None:
    frame = mixed_frame(rows=900, seed=3)
    frame = pd.concat([frame[frame["label"] == "no"], frame[frame["label"] == "yes"].head(60)])
    frame = frame.sample(frac=1.0, random_state=0).reset_index(drop=True)
    frame.insert(0, "customer_id", [f"C{i:05d}" for i in range(len(frame))])
    frame["channel"] = "web"
    frame["plan"] = np.arange(len(frame)) % 4 + 1  # integer codes of a category
    frame.to_parquet(tmp_path / "customers.parquet", index=False)
    result = run_cli(
        [
            "train",
            *("--data", "customers.parquet", "--target", "label", "--epochs", "15"),
            *("--class-weight", "balanced", "--categorical", "plan"),
        ],
        tmp_path,
        prefect_api_url,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "column 'customer_id' dropped, not learned: ID-like" in result.stderr
    assert "column 'channel' dropped, not learned: constant" in result.stderr
    assert "class weights:" in result.stderr
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    champion = client.get_model_version_by_alias("neuroflow-customers", "champion")
    run = client.get_run(champion.run_id)
    assert run.data.tags["neuroflow.dropped_columns"] == "customer_id, channel"
    assert run.data.params["network.class_weight"] == "balanced"
    report_path = client.download_artifacts(champion.run_id, "data_report/columns.json", str(tmp_path))
    report = {row["column"]: row["action"] for row in json.loads(Path(report_path).read_text())["columns"]}
    assert report["customer_id"].startswith("dropped: ID-like") and report["city"].startswith("categorical")
    schema_path = client.download_artifacts(champion.run_id, "schema/schema.json", str(tmp_path))
    features = {column["name"]: column for column in json.loads(Path(schema_path).read_text())["features"]}
    assert list(features) == ["age", "income", "city", "member", "plan"]
    assert features["plan"]["kind"] == "categorical" and features["plan"]["categories"] == ["1", "2", "3", "4"]
    assert report["plan"].startswith("categorical (integer codes): one-hot; 4 of 4 value(s) get a column of their own")
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    try:
        signature = mlflow.models.get_model_info(f"models:/neuroflow-customers/{champion.version}").signature
    finally:
        mlflow.set_tracking_uri(previous)
    assert signature.inputs.input_dict()["plan"].type.name == "long"


def test_train_without_a_prefect_server_starts_a_temporary_one_while_libraries_load(tmp_path: Path) -> None:
    """The temporary server starts before the heavy imports; the flow reports everything to it (runs, task runs, logs,
    artifacts) before it stops, also when the run fails, and Prefect never starts a second one."""
    import os
    import sqlite3
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEUROFLOW_", "PREFECT_API_URL"))}
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    # --verbose: Prefect's own "Starting temporary server" line would be filtered out of the default output.
    command = [str(Path(sys.executable).with_name("neuroflow")), "train", "--epochs", "2", "--verbose"]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "is now champion" in result.stdout
    assert result.stderr.index("starting Prefect's temporary server meanwhile") < result.stderr.index("epoch 1/2")
    assert "Starting temporary server" not in result.stderr  # Prefect's own would mean the early one went unused
    with sqlite3.connect(tmp_path / "prefect-home" / "prefect.db") as database:
        flow_runs = database.execute("SELECT id, state_type FROM flow_run").fetchall()
        assert [state for _, state in flow_runs] == ["COMPLETED"]
        flow_run_id = flow_runs[0][0]
        tasks = database.execute("SELECT state_type FROM task_run WHERE flow_run_id = ?", (flow_run_id,)).fetchall()
        assert len(tasks) >= 8 and {state for (state,) in tasks} == {"COMPLETED"}
        logged = database.execute("SELECT message FROM log WHERE flow_run_id = ?", (flow_run_id,)).fetchall()
        assert any("steps:" in message for (message,) in logged)  # the flow's last log line made it before the stop
        artifacts = database.execute("SELECT key FROM artifact WHERE flow_run_id = ?", (flow_run_id,)).fetchall()
        assert ("training-summary-neuroflow-breast-cancer",) in artifacts

    frame = classification_frame(rows=200).astype({"f1": object})
    frame.loc[np.arange(0, 200, 25), "f1"] = "lots"
    frame.to_csv(tmp_path / "bad.csv", index=False)
    command = [*command[:2], "--data", "bad.csv", "--target", "target"]
    failed = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert failed.returncode == 1 and "data validation failed" in failed.stderr
    with sqlite3.connect(tmp_path / "prefect-home" / "prefect.db") as database:
        flow_run_id, state = database.execute("SELECT id, state_type FROM flow_run ORDER BY created DESC").fetchone()
        assert state == "FAILED"  # a failed run is recorded as such, with its last words
        logged = database.execute("SELECT message FROM log WHERE flow_run_id = ?", (flow_run_id,)).fetchall()
        assert any("data validation failed" in message for (message,) in logged)


def test_the_default_output_is_neuroflows_own_and_a_terminal_gets_a_live_display(tmp_path: Path) -> None:
    """Prefect's task bookkeeping and MLflow's store notes stay out of the default output (`--verbose` has them); in a
    terminal, training shows one live line (epoch, bar, elapsed and remaining time, metrics) instead of epoch lines."""
    import os
    import pty
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEUROFLOW_", "PREFECT_API_URL", "CI"))}
    env |= {"PREFECT_HOME": str(tmp_path / "prefect-home"), "TERM": "xterm-256color", "COLUMNS": "160"}
    command = [str(Path(sys.executable).with_name("neuroflow")), "train", "--epochs", "3"]
    plain = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert plain.returncode == 0, plain.stderr[-3000:]
    assert (
        "epoch 1/3" in plain.stderr and "neuroflow.pipelines.bookkeeping.registry" in plain.stderr
    )  # one line per epoch
    for noise in ("Task run '", "Creating initial MLflow database tables", "Created temporary directory"):
        assert noise not in plain.stderr

    leader, follower = pty.openpty()
    fresh = tmp_path / "terminal"  # a store of its own: here too the first version becomes champion
    fresh.mkdir()
    terminal = subprocess.Popen(command, cwd=fresh, env=env, stdin=follower, stdout=follower, stderr=follower)
    os.close(follower)
    screen = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed: the command is done
            break
        if not chunk:
            break
        screen += chunk
    assert terminal.wait(timeout=300) == 0, screen.decode(errors="replace")[-3000:]
    shown = screen.decode(errors="replace")
    assert "epoch 3/3" in shown and "━" in shown and "val_loss" in shown  # the live line, drawn to the end
    assert "epoch 1/3  accuracy" not in shown  # no plain epoch lines beside it
    started = shown.index("neuroflow.pipelines.steps.training - training ")
    assert "epoch " not in shown[shown.rindex("\n", 0, started) : started]  # that line is not drawn over
    assert "is now champion" in shown

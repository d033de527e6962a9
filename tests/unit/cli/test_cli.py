from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from neuroflow.cli import app
from neuroflow.cli.options import build_overrides
from neuroflow.pipelines.bookkeeping.registry import register_version

runner = CliRunner()


def test_help_explains_every_command() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    commands = ("train", "schedule", "promote", "rollback", "history", "schema", "config", "ui", "predict", "monitor")
    for command in (*commands, "feedback"):
        assert command in result.output
    for command in ("train", "schedule"):  # schedule takes every training option
        help_text = runner.invoke(app, [command, "--help"]).output
        options = ("--dataset", "--data", "--target", "--hidden-units", "--optimizer", "--patience", "--config")
        for option in (*options, "--delimiter", "--decimal", "--thousands"):
            assert option in help_text
        assert "(default: 128,128)" in help_text  # defaults are shown, not swallowed as markup
    assert "--cron" in runner.invoke(app, ["schedule", "--help"]).output


def test_only_given_options_override() -> None:
    assert build_overrides(network={"epochs": 3, "dropout": None}, data={"dataset": None}) == {"network": {"epochs": 3}}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--epochs", "0"], "network.epochs"),
        (["train", "--optimizer", "lbfgs"], "network.optimizer"),
        (["train", "--dataset", "mnist"], "unknown data set 'mnist'"),
        (["train", "--data", "missing.csv", "--target", "y"], "data file missing.csv does not exist"),
        (["train", "--data", "x.csv"], "--target"),
        (["train", "--config", "nope.yaml"], "config file nope.yaml does not exist"),
        (["train", "--reference-schema", "nope.json"], "reference schema nope.json does not exist"),
        (["schedule", "--cron", "0 3 * * *", "--epochs", "0"], "network.epochs"),
        (["schedule", "--cron", "daily"], "invalid --cron 'daily'"),
        (["train", "--decimal", ",", "--thousands", ","], "data.thousands and data.decimal are both ','"),
        (["train", "--decimal", ";"], "data.decimal"),
        (["predict", "--data", "new.csv", "-o", "out.parquet"], "--data new.csv does not exist"),
        (["predict", "--data", "model.json", "-o", "out.txt"], "--output out.txt must end in .csv or .parquet"),
        (["predict", "--data", "model.json", "-o", "nowhere/out.csv"], "the folder of --output"),
        (["predict", "--data", "m.csv", "-o", "o.csv", "--version", "2", "--alias", "x"], "not both"),
    ],
)
def test_bad_input_is_one_clear_message(workdir: Path, args: list[str], message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output


def test_predict_reports_mistakes_about_existing_files_before_loading_a_model(workdir: Path) -> None:
    (workdir / "new.csv").write_text("a,b\n1,2\n")
    (workdir / "model.json").write_text("{}")
    cases = [
        (["--data", "model.json", "-o", "out.csv"], "--data model.json must be a .csv or .parquet file"),
        (["--data", "new.csv", "-o", "new.csv"], "--output is the input file"),
        (["--data", "new.csv", "-o", "o.csv", "--dask-workers", "2"], "partitioned Parquet folder"),
        (["--data", "new.csv", "-o", "o.parquet", "--dask-workers", "2", "--dask-address", "tcp://x:1"], "not both"),
    ]
    for args, message in cases:
        result = runner.invoke(app, ["predict", *args, "--tracking-uri", "http://127.0.0.1:9"])
        assert result.exit_code == 1 and message in result.output, result.output
        assert "Traceback" not in result.output and "connection" not in result.output.lower()


def test_monitor_and_feedback_report_mistakes_before_reading_any_store(workdir: Path) -> None:
    (workdir / "labels.csv").write_text("id,truth\nabc-0,1\n")
    (workdir / "labels.json").write_text("{}")
    cases = [
        (["monitor", "--last", "5", "--since", "1h"], "give --last N or --since TIME, not both"),
        (["monitor", "--since", "yesterday"], "--since 'yesterday': give an ISO time"),
        (["feedback", "--data", "missing.csv"], "--data missing.csv does not exist"),
        (["feedback", "--data", "labels.json"], "give a .csv or .parquet file"),
        (
            ["feedback", "--data", "labels.csv", "--id-column", "request_id", "--target", "truth"],
            "no column 'request_id'",
        ),
        (["feedback", "--data", "labels.csv", "--id-column", "id", "--target", "truth"], "prediction log is off"),
    ]
    for args, message in cases:
        extra = ["--tracking-uri", "http://127.0.0.1:9"] if args[0] == "monitor" else []
        env = {"NEUROFLOW_SERVICE__PREDICTION_LOG": "off"}
        result = runner.invoke(app, [*args, *extra], env=env)
        assert result.exit_code == 1 and message in result.output, (args, result.output)
        assert "Traceback" not in result.output and "connection" not in result.output.lower()


def test_feedback_from_a_file_checks_labels_as_the_endpoint_does(store: Any, tmp_path: Path) -> None:
    """`neuroflow feedback` stored any label; now a label outside the champion's classes refuses the file, as the
    endpoint refuses the request, naming the classes in the target's type."""
    import numpy as np

    from neuroflow.core.predictionlog import ParquetStore, PredictionLog, Served, new_request_ids
    from neuroflow.models.schema import infer_schema
    from tests.utils.factories import classification_frame

    schema = infer_schema(classification_frame(rows=60), "target", "binary")
    client = store.client()
    run = client.create_run(store.experiment("served"))
    client.log_dict(run.info.run_id, schema.to_dict(), "schema/schema.json")
    client.create_registered_model("neuroflow-served")
    version = client.create_model_version("neuroflow-served", "runs:/x/model", run_id=run.info.run_id).version
    client.set_registered_model_alias("neuroflow-served", "champion", version)
    log_folder = tmp_path / "log"
    ids = new_request_ids(2)
    served = Served(ids, "neuroflow-served", "1", [{"f0": 0.1}] * 2, np.array([1, 0], dtype=object),
                    np.array([[0.2, 0.8], [0.7, 0.3]]), ("0", "1"), "champion")  # fmt: skip
    log = PredictionLog(ParquetStore(log_folder))
    log.record(served)
    log.flush()
    common = ["--model-name", "neuroflow-served", "--tracking-uri", store.tracking_uri, "--id-column", "id"]
    env = {"NEUROFLOW_SERVICE__PREDICTION_LOG": str(log_folder)}
    (tmp_path / "bad.csv").write_text(f"id,label\n{ids[0]},1\n{ids[1]},7\n")
    bad = runner.invoke(app, ["feedback", "--data", str(tmp_path / "bad.csv"), *common], env=env)
    said = " ".join(bad.output.split())
    assert bad.exit_code == 1 and f"{ids[1]}: one of the classes [0, 1]" in said and "nothing was stored" in said
    assert ParquetStore(log_folder).read_feedback().empty
    (tmp_path / "good.csv").write_text(f"id,label\n{ids[0]},1\n{ids[1]},0\n")
    good = runner.invoke(app, ["feedback", "--data", str(tmp_path / "good.csv"), *common], env=env)
    assert good.exit_code == 0 and "recorded 2 label(s)" in good.output, good.output


def test_config_shows_the_effective_settings(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (workdir / "c.yaml").write_text("network:\n  epochs: 12\n")
    monkeypatch.setenv("NEUROFLOW_DATA__DATASET", "wine")
    result = runner.invoke(app, ["config", "--config", "c.yaml"])
    assert result.exit_code == 0
    assert "epochs: 12" in result.output and "dataset: wine" in result.output


def test_schema_command_writes_a_reference_schema(workdir: Path) -> None:
    result = runner.invoke(app, ["schema", "--dataset", "wine", "--output", "wine.json"])
    assert result.exit_code == 0, result.output
    written = (workdir / "wine.json").read_text()
    assert '"task": "multiclass"' in written and '"model_name": "neuroflow-wine"' in written


def test_promote_rollback_and_history(tracking_uri: str) -> None:
    client = MlflowClient(tracking_uri)
    for _ in range(2):
        register_version(client, "neuroflow-wine", "file:///tmp/model", run_id=None)  # type: ignore[arg-type]
    common = ["--dataset", "wine", "--tracking-uri", tracking_uri]
    assert runner.invoke(app, ["promote", "1", *common]).exit_code == 0
    assert "version 2" in runner.invoke(app, ["promote", "2", *common]).output
    rolled = runner.invoke(app, ["rollback", *common])
    assert rolled.exit_code == 0 and "version 1 (rolled back)" in rolled.output
    assert client.get_model_version_by_alias("neuroflow-wine", "champion").version in (1, "1")
    lines = runner.invoke(app, ["history", *common]).output.strip().splitlines()
    assert [line.split()[3] for line in lines] == ["v1", "v2", "v1"]
    failed = runner.invoke(app, ["promote", "7", *common])
    assert failed.exit_code == 1 and "has no version 7" in failed.output
    again = runner.invoke(app, ["rollback", *common])
    assert again.exit_code == 1 and "no earlier champion" in again.output


def test_registry_commands_a_person_can_trust(tracking_uri: str) -> None:
    """Promoting the champion says so and records nothing; rollback walks back along the history; --reason is kept;
    `neuroflow versions` lists every version (and --json)."""
    import json

    client = MlflowClient(tracking_uri)
    for _ in range(3):
        register_version(client, "neuroflow-wine", "file:///tmp/model", run_id=None)  # type: ignore[arg-type]
    common = ["--dataset", "wine", "--tracking-uri", tracking_uri]
    for version in ("1", "2", "3"):
        assert runner.invoke(app, ["promote", version, *common, "--reason", f"try v{version}"]).exit_code == 0
    same = runner.invoke(app, ["promote", "3", *common])
    assert same.exit_code == 0 and "v3 is already champion; nothing was moved or recorded" in same.output
    history = [line.split()[3] for line in runner.invoke(app, ["history", *common]).output.strip().splitlines()]
    assert history == ["v1", "v2", "v3"]  # no "champion → v3 (was v3)"
    assert "promoted by hand: try v2" in runner.invoke(app, ["history", *common]).output
    walked = [runner.invoke(app, ["rollback", *common, "--reason", "bad night"]).output for _ in range(2)]
    assert "version 2 (rolled back)" in walked[0] and "version 1 (rolled back)" in walked[1]
    assert "rolled back by hand: bad night" in runner.invoke(app, ["history", *common]).output
    listed = runner.invoke(app, ["versions", *common])
    assert listed.exit_code == 0, listed.output
    assert [line.split()[0] for line in listed.output.splitlines() if line.startswith("v")] == ["v3", "v2", "v1"]
    assert "@champion" in next(line for line in listed.output.splitlines() if line.startswith("v1 "))
    rows = json.loads(runner.invoke(app, ["versions", *common, "--json"]).output)
    assert [row["version"] for row in rows] == ["3", "2", "1"] and rows[2]["aliases"] == ["champion"]
    assert rows[0]["decision"] == "promoted" and {"created", "metric", "score", "low", "high"} <= set(rows[0])


def test_ui_with_a_tracking_server_says_where_its_ui_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEUROFLOW_TRACKING__UI_URL", "https://mlflow.example.com")
    result = runner.invoke(app, ["ui", "--tracking-uri", "http://mlflow:5000"])
    assert result.exit_code == 0
    assert "tracking server http://mlflow:5000: open https://mlflow.example.com" in result.output

"""Where a person is sent to look at a run: MLflow run URLs and the Prefect artifacts' text."""

from neuroflow.core.settings import TrackingSettings
from neuroflow.pipelines.bookkeeping.runs import artifact_key
from neuroflow.pipelines.bookkeeping.tracking import describe_outcome, summary_markdown

SUMMARY = {
    "run_id": "abc123",
    "model_name": "neuroflow-wine",
    "version": "4",
    "promoted": False,
    "champion_version": "2",
    "test_metrics": {"accuracy": 0.97222, "f1_macro": 0.9711},
    "decision": "does not beat the champion: accuracy 0.9722 vs champion v2 0.9861",
    "run_url": "http://mlflow.example/#/experiments/3/runs/abc123",
    "data_digest": "d1g35t",
    "prefect_flow_run_url": "http://prefect.example/runs/flow-run/42",
}


def test_run_urls_follow_the_store_or_the_configured_ui() -> None:
    assert TrackingSettings().run_url("1", "r") == "http://127.0.0.1:5000/#/experiments/1/runs/r"
    server = TrackingSettings(tracking_uri="http://mlflow:5000/")
    assert server.run_url("1", "r") == "http://mlflow:5000/#/experiments/1/runs/r"
    public = TrackingSettings(tracking_uri="http://mlflow:5000", ui_url="https://mlflow.example.com/")
    assert public.run_url("2", "s") == "https://mlflow.example.com/#/experiments/2/runs/s"


def test_artifact_keys_are_what_prefect_accepts() -> None:
    assert artifact_key("training-summary", "neuroflow-breast_cancer") == "training-summary-neuroflow-breast-cancer"
    assert artifact_key("mlflow-run", "My Model.v2") == "mlflow-run-my-model-v2"


def test_the_prefect_summary_tells_data_metrics_and_decision() -> None:
    text = summary_markdown(SUMMARY, {"data set": "wine", "test_rows": 36})
    assert text.startswith("## neuroflow-wine v4: **not promoted**; the champion stays v2")
    assert "[Open the MLflow run](http://mlflow.example/#/experiments/3/runs/abc123)" in text
    assert "| test rows | 36 |" in text and "| accuracy | 0.9722 |" in text
    assert "**Promotion decision:** does not beat the champion" in text


def test_the_mlflow_description_links_back_to_prefect() -> None:
    assert "Prefect flow run: [http://prefect.example/runs/flow-run/42]" in describe_outcome(SUMMARY)
    assert "Prefect" not in describe_outcome(SUMMARY | {"prefect_flow_run_url": None})

"""`training_flow` for real: Prefect, Great Expectations, Keras, MLflow registry, on bundled and generated data."""

from dataclasses import replace
from pathlib import Path

import keras
import mlflow
import numpy as np
import pytest
from sklearn.preprocessing import StandardScaler

from neuroflow.errors import DataValidationError
from neuroflow.models.schema import infer_schema
from neuroflow.pipelines.data import load_dataset, split_data
from neuroflow.pipelines.flows import training_flow
from neuroflow.pipelines.outcomes import TrainingOutcome
from neuroflow.settings import DataSettings
from tests.integration.conftest import Store

pytestmark = pytest.mark.integration

NAME = "neuroflow-breast_cancer"
QUICK = {"network": {"epochs": 8}}
WORSE = {"network": {"epochs": 1, "hidden_units": [2], "optimizer": "sgd", "learning_rate": 1e-4}}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    return Store(tmp_path_factory.mktemp("store"))


@pytest.fixture(scope="module")
def first(store: Store, prefect_api_url: str) -> TrainingOutcome:
    return training_flow(settings=store.settings(**QUICK))


def versions(store: Store, name: str = NAME) -> list[str]:
    return sorted(str(v.version) for v in store.client().search_model_versions(f"name='{name}'"))


def test_first_version_is_champion_with_its_whole_story(first: TrainingOutcome, store: Store) -> None:
    client = store.client()
    assert first.promoted and first.version == "1" and first.champion_version == "1"
    assert str(client.get_model_version_by_alias(NAME, "champion").version) == "1"

    run = client.get_run(first.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["network.hidden_units"] == "[64, 32]"
    assert {"test_accuracy", "test_roc_auc", "test_f1", "test_log_loss", "epochs_run"} <= set(run.data.metrics)
    losses = client.get_metric_history(first.run_id, "val_loss")
    assert [m.step for m in losses] == list(range(int(run.data.metrics["epochs_run"])))
    dataset_input = run.inputs.dataset_inputs[0]
    assert dataset_input.dataset.digest == run.data.tags["neuroflow.data_digest"]

    def artifacts(path: str) -> set[str]:
        return {Path(item.path).name for item in client.list_artifacts(first.run_id, path)}

    assert {"learning_curves.png", "confusion_matrix.png", "roc_curve.png"} <= artifacts("plots")
    assert {"index.html", "summary.json", "validations"} <= artifacts("data_report")
    assert "schema.json" in artifacts("schema")
    assert {"promotion.json", "summary.json"} <= artifacts("")

    info = mlflow.models.get_model_info(f"models:/{NAME}/1")
    features = load_dataset(DataSettings()).features.columns
    assert info.signature.inputs.input_names() == list(features)
    assert info.signature.outputs.input_names() == ["prediction", "probability_0", "probability_1"]
    version = client.get_model_version(NAME, "1")
    assert version.tags["neuroflow.promotion"] == "promoted"
    assert version.description == "Promoted to champion: first version: no champion yet"
    description = run.data.tags["mlflow.note.content"]
    assert f"**{NAME} v1**, promoted to champion" in description and "roc_auc" in description
    assert run.data.tags["mlflow.source.name"] == "neuroflow training_flow"


def test_a_worse_model_is_registered_but_not_champion(first: TrainingOutcome, store: Store) -> None:
    worse = training_flow(settings=store.settings(**WORSE))
    assert not worse.promoted
    assert worse.champion_version == "1"
    assert str(store.client().get_model_version_by_alias(NAME, "champion").version) == "1"
    tags = store.client().get_model_version(NAME, worse.version).tags
    assert tags["neuroflow.promotion"] == "not promoted"
    assert float(tags["neuroflow.roc_auc"]) < float(tags["neuroflow.champion_roc_auc"])
    assert float(tags["neuroflow.champion_roc_auc"]) == pytest.approx(first.test_metrics["roc_auc"], abs=1e-6)


def test_the_same_seed_gives_the_same_metrics_and_a_tie_keeps_the_champion(
    first: TrainingOutcome, store: Store
) -> None:
    again = training_flow(settings=store.settings(**QUICK))
    assert again.test_metrics == pytest.approx(first.test_metrics, abs=1e-9)
    assert not again.promoted


def test_preprocessing_travels_with_the_model(first: TrainingOutcome, store: Store, tmp_path: Path) -> None:
    """The served model, fed raw values, equals the network fed a scaler fitted independently on the train split."""
    settings = store.settings(**QUICK)
    split = split_data(load_dataset(settings.data), 0.2, 0.2, settings.data.seed)
    served = mlflow.pyfunc.load_model(f"models:/{NAME}@champion").predict(split.test_features)

    local = Path(mlflow.artifacts.download_artifacts(f"models:/{NAME}/1", dst_path=str(tmp_path)))
    network = keras.models.load_model(next(local.rglob("network.keras")), compile=False)
    scaler = StandardScaler().fit(split.train_features)
    expected = np.asarray(network(scaler.transform(split.test_features).astype("float32")))[:, 0]

    assert np.max(np.abs(served["probability_1"].to_numpy() - expected)) <= 1e-5
    assert list(served["prediction"]) == [("1" if p >= 0.5 else "0") for p in served["probability_1"]]


def test_data_that_breaks_the_schema_fails_and_registers_nothing(
    first: TrainingOutcome, store: Store, tmp_path: Path
) -> None:
    frame = load_dataset(DataSettings()).frame
    reference = infer_schema(frame, "target", "binary").save(tmp_path / "reference.json")
    bad = frame.drop(columns=["worst area"]).astype({"mean radius": object})
    bad.loc[:9, "mean radius"] = "unknown"
    bad.loc[:99, "mean texture"] = 500.0
    bad.to_csv(tmp_path / "new_batch.csv", index=False)
    before = versions(store)

    settings = store.settings(
        data={"path": tmp_path / "new_batch.csv", "target": "target", "reference_schema": reference},
        tracking={"model_name": NAME},
        **QUICK,
    )
    with pytest.raises(DataValidationError) as caught:
        training_flow(settings=settings)

    message = str(caught.value)
    assert "nothing was trained or registered" in message
    for expected in (
        "'worst area': missing",
        "'mean radius': expected numbers, found text in 10 rows, e.g. 'unknown'",
        "'mean texture': must lie in",
    ):
        assert expected in message
    assert caught.value.report_path is not None and caught.value.report_path.is_file()
    assert str(caught.value.report_path) in message
    assert versions(store) == before

    failed = store.client().search_runs(
        [store.client().get_experiment_by_name("neuroflow").experiment_id],
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )[0]
    assert failed.info.status == "FAILED"
    assert failed.data.tags["neuroflow.validation"] == "failed"
    assert failed.data.tags["mlflow.note.content"].startswith("**Failed.** data validation failed")
    assert "index.html" in {Path(a.path).name for a in store.client().list_artifacts(failed.info.run_id, "data_report")}


@pytest.mark.parametrize(("dataset", "metric"), [("wine", "f1"), ("diabetes", "rmse")])
def test_multiclass_and_regression_flows(store: Store, prefect_api_url: str, dataset: str, metric: str) -> None:
    outcome = training_flow(settings=store.settings(data={"dataset": dataset}, network={"epochs": 5}))
    assert outcome.model_name == f"neuroflow-{dataset}" and outcome.promoted
    assert metric in outcome.test_metrics
    run = store.client().get_run(outcome.run_id)
    plots = {Path(a.path).name for a in store.client().list_artifacts(outcome.run_id, "plots")}
    if dataset == "wine":
        assert plots == {"learning_curves.png", "confusion_matrix.png"}
        assert run.data.tags["neuroflow.task"] == "multiclass"
    else:
        assert plots == {"learning_curves.png", "predicted_vs_actual.png", "residuals.png"}
        served = mlflow.pyfunc.load_model(f"models:/neuroflow-{dataset}@champion").predict(
            load_dataset(DataSettings(dataset=dataset)).features.head(3)
        )
        assert served["prediction"].between(0, 500).all()


def test_a_champion_on_other_columns_is_kept(store: Store, prefect_api_url: str) -> None:
    """A new data shape under the same name cannot be compared; the champion stays and the user is told why."""
    other = training_flow(
        settings=store.settings(
            data={"dataset": "wine"}, tracking={"model_name": "neuroflow-diabetes"}, network={"epochs": 2}
        )
    )
    assert not other.promoted
    assert "could not be scored" in other.decision and f"neuroflow promote {other.version}" in other.decision


def test_the_flow_run_is_recorded_in_prefect_and_linked_from_mlflow(first: TrainingOutcome, store: Store) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["training"])))
    assert runs and any(run.state and run.state.is_completed() for run in runs)
    tagged = store.client().get_run(first.run_id).data.tags["neuroflow.prefect_flow_run_id"]
    assert tagged in {str(run.id) for run in runs}


def test_the_registered_model_loads_without_neuroflow_installed(first: TrainingOutcome, store: Store) -> None:
    """The model carries its own code (models/ and neuroflow/), as a Bento or another environment needs."""
    import json
    import subprocess
    import sys
    import sysconfig

    script = Path(__file__).with_name("isolated_load.py")
    site_packages = sysconfig.get_paths()["purelib"]
    done = subprocess.run(
        [sys.executable, "-S", str(script), store.tracking_uri, f"models:/{NAME}/1", site_packages],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=store.root,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    rows = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(rows) == 3 and {"prediction", "probability_0", "probability_1"} <= set(rows[0])


def test_a_run_with_a_reference_schema_joins_the_model_it_came_from(
    first: TrainingOutcome, store: Store, tmp_path: Path
) -> None:
    """Before: `train --data new_batch.csv --reference-schema reference.json` registered `neuroflow-new_batch`, a new
    model whose v1 became champion with nothing to beat. The schema now names its model, and the run joins it."""
    frame = load_dataset(DataSettings()).frame
    reference = replace(infer_schema(frame, "target", "binary"), model_name=NAME).save(tmp_path / "reference.json")
    frame.to_csv(tmp_path / "new_batch.csv", index=False)
    settings = store.settings(
        data={"path": tmp_path / "new_batch.csv", "target": "target", "reference_schema": reference}, **WORSE
    )
    outcome = training_flow(settings=settings)
    assert outcome.model_name == NAME
    assert not outcome.promoted and outcome.champion_version is not None
    assert versions(store, "neuroflow-new_batch") == []

"""`training_flow` for real: Prefect, Great Expectations, Keras, MLflow registry, on bundled and generated data."""

from dataclasses import replace
from pathlib import Path
from typing import Any

import keras
import mlflow
import numpy as np
import pytest

from neuroflow.core.errors import ConfigError, DataValidationError, SmokeTestFailedError
from neuroflow.core.settings import DataSettings
from neuroflow.models.schema import infer_schema
from neuroflow.pipelines.flows import training_flow
from neuroflow.pipelines.outcomes import TrainingOutcome, UnchangedOutcome
from neuroflow.pipelines.steps.data import load_dataset, split_data
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
    assert run.data.params["network.hidden_units"] == "[128, 128]"  # the tabular preset, the default
    assert run.data.params["network.preset"] == "tabular"
    assert {"test_accuracy", "test_roc_auc", "test_f1", "test_log_loss", "epochs_run"} <= set(run.data.metrics)
    losses = client.get_metric_history(first.run_id, "val_loss")
    assert [m.step for m in losses] == list(range(int(run.data.metrics["epochs_run"])))
    dataset_input = run.inputs.dataset_inputs[0]
    assert dataset_input.dataset.digest == run.data.tags["neuroflow.data_digest"]

    def artifacts(path: str) -> set[str]:
        return {Path(item.path).name for item in client.list_artifacts(first.run_id, path)}

    assert {"learning_curves.png", "confusion_matrix.png", "roc_curve.png"} <= artifacts("plots")
    assert {"index.html", "summary.json", "validations", "validation.html"} <= artifacts("data_report")
    assert "schema.json" in artifacts("schema")
    assert {"promotion.json", "summary.json"} <= artifacts("")

    info = mlflow.models.get_model_info(f"models:/{NAME}/1")
    features = load_dataset(DataSettings()).features.columns
    assert info.signature.inputs.input_names() == list(features)
    assert info.signature.outputs.input_names() == ["prediction", "probability_0", "probability_1"]
    version = client.get_model_version(NAME, "1")
    assert version.tags["neuroflow.promotion"] == "promoted"
    card = version.description  # the model card, with the decision
    assert card.startswith(f"# Model card: {NAME} v1") and "**Promoted to champion**" in card
    assert "first version: no champion yet" in card and "logistic regression" in card and "95% interval" in card
    assert version.tags["neuroflow.logged_model_id"] == info.model_id
    assert client.get_logged_model(info.model_id).tags["neuroflow.registered_version"] == f"{NAME}/1"
    assert run.info.run_name == "breast_cancer v1 promoted" and run.data.tags["neuroflow.champion"] == "yes"
    assert run.data.tags["neuroflow.baseline"].startswith("the network ")
    assert {"baseline.logistic_regression.roc_auc", "baseline.gradient_boosting.roc_auc", "baseline.gap"} <= set(
        run.data.metrics
    )
    assert (
        run.data.metrics["test_roc_auc_low"]
        <= run.data.metrics["test_roc_auc"]
        <= run.data.metrics["test_roc_auc_high"]
    )
    assert any(name.startswith("system/step_seconds.") for name in run.data.metrics)
    assert not any(name.startswith(("step_seconds.", "peak_rss_mb.")) for name in run.data.metrics)
    assert {"model_card.md", "model_card.html"} <= artifacts("model_card")
    assert "permutation_importance.png" in artifacts("plots") and "validation.html" in artifacts("data_report")
    assert "| When (UTC) | Alias | Version |" in client.get_registered_model(NAME).description
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
    run = store.client().get_run(worse.run_id)
    assert (
        run.info.run_name == f"breast_cancer v{worse.version} not promoted"
        and "neuroflow.champion" not in run.data.tags
    )
    assert (
        "training stopped at the cap of 1 epochs" in run.data.tags["neuroflow.warnings"]
    )  # one epoch, still improving
    assert float(tags["neuroflow.roc_auc"]) < float(tags["neuroflow.champion_roc_auc"])
    assert float(tags["neuroflow.champion_roc_auc"]) == pytest.approx(first.test_metrics["roc_auc"], abs=1e-6)


def test_unchanged_data_and_settings_register_nothing_and_say_so(first: TrainingOutcome, store: Store) -> None:
    """A nightly run on unchanged data registered a duplicate (v3 identical to v1); now it says "unchanged since v1"
    in its outcome, on its MLflow run and in its Prefect artifact, and registers nothing."""
    from prefect.client.orchestration import get_client

    before = versions(store)
    again = training_flow(settings=store.settings(**QUICK))
    assert isinstance(again, UnchangedOutcome)
    assert again.champion_version == "1" and not again.promoted
    assert versions(store) == before
    run = store.client().get_run(again.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["neuroflow.outcome"] == "unchanged" and run.data.tags["neuroflow.unchanged_since"] == "1"
    assert "Unchanged since v1" in run.data.tags["mlflow.note.content"]
    fingerprint = store.client().get_model_version(NAME, "1").tags["neuroflow.training_fingerprint"]
    assert run.data.tags["neuroflow.training_fingerprint"] == fingerprint
    with get_client(sync_client=True) as client:
        artifact = client.read_latest_artifacts()
        summaries = [a for a in artifact if a.key == "training-summary-neuroflow-breast-cancer"]
    assert summaries and "unchanged since v1" in str(summaries[0].data)


def test_force_trains_anyway_and_the_same_seed_ties_with_the_champion(first: TrainingOutcome, store: Store) -> None:
    again = training_flow(settings=store.settings(**QUICK), force=True)
    assert isinstance(again, TrainingOutcome)
    assert again.test_metrics == pytest.approx(first.test_metrics, abs=1e-9)
    assert not again.promoted and "does not beat the champion" in again.decision


def test_preprocessing_travels_with_the_model(first: TrainingOutcome, store: Store, tmp_path: Path) -> None:
    """The served model, fed raw values, equals the network fed a scaler fitted independently on the train split (the
    default preset's robust scaling: median and quartile range)."""
    import neuroflow.models.layers  # noqa: F401 (registers the tabular preset's layers with Keras)

    settings = store.settings(**QUICK)
    split = split_data(load_dataset(settings.data), 0.2, 0.2, settings.data.seed)
    served = mlflow.pyfunc.load_model(f"models:/{NAME}@champion").predict(split.test_features)

    local = Path(mlflow.artifacts.download_artifacts(f"models:/{NAME}/1", dst_path=str(tmp_path)))
    network = keras.models.load_model(next(local.rglob("network.keras")), compile=False)
    train = split.train_features.to_numpy("float64")
    low, median, high = np.percentile(train, [25, 50, 75], axis=0)
    spread = np.where(high > low, high - low, (train.max(axis=0) - train.min(axis=0)) / 2)
    scaled = (split.test_features.to_numpy("float64") - median) / spread
    expected = np.asarray(network(scaled.astype("float32")))[:, 0]

    assert np.max(np.abs(served["probability_1"].to_numpy() - expected)) <= 1e-5
    assert list(served["prediction"]) == [(1 if p >= 0.5 else 0) for p in served["probability_1"]]  # the target's ints


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
        assert plots == {"learning_curves.png", "confusion_matrix.png", "permutation_importance.png"}
        assert run.data.tags["neuroflow.task"] == "multiclass"
    else:
        assert plots == {
            "learning_curves.png",
            "predicted_vs_actual.png",
            "residuals.png",
            "permutation_importance.png",
        }
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


def test_every_version_passes_a_smoke_test_in_a_fresh_process_before_it_can_be_champion(
    first: TrainingOutcome, store: Store
) -> None:
    run = store.client().get_run(first.run_id)
    assert run.data.tags["neuroflow.smoke_test"] == "passed"
    assert run.data.metrics["smoke_test_seconds"] > 0
    smoke = mlflow.artifacts.load_dict(f"runs:/{first.run_id}/smoke_test.json")
    assert smoke["passed"] and smoke["max_difference"] <= 1e-5


def test_weights_tampered_with_after_logging_are_refused_and_never_promoted(
    tmp_path: Path, prefect_api_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Even a first version (nothing to beat) is not champion when the service could not load what was registered."""
    from neuroflow.pipelines.steps import fitting

    real_log_model = fitting.tracking.log_model

    def log_then_tamper(run_id, predictor, example, workdir):  # type: ignore[no-untyped-def]
        logged = real_log_model(run_id, predictor, example, workdir)
        model = mlflow.MlflowClient().get_logged_model(logged.uri.removeprefix("models:/"))
        stored = Path(model.artifact_location.removeprefix("file://")) / "artifacts" / "weights.npz"
        arrays = dict(np.load(stored, allow_pickle=False))
        np.savez(stored, **{k: v * 1.01 if v.dtype.kind == "f" else v for k, v in arrays.items()})
        return logged

    monkeypatch.setattr(fitting.tracking, "log_model", log_then_tamper)
    tampered = Store(tmp_path)
    with pytest.raises(
        SmokeTestFailedError, match=r"v1 was registered but failed its smoke test.*weights\.npz"
    ) as raised:
        training_flow(settings=tampered.settings(network={"epochs": 2}))
    assert "has no 'champion' yet" in str(raised.value) and "train again" in str(raised.value)
    client = tampered.client()
    assert client.get_registered_model(NAME).aliases == {}
    tags = client.get_model_version(NAME, "1").tags
    assert tags["neuroflow.promotion"] == "not promoted" and "smoke test" in tags["neuroflow.promotion_reason"]
    run = client.get_run(client.get_model_version(NAME, "1").run_id)
    assert run.data.tags["neuroflow.smoke_test"] == "failed" and run.info.status == "FAILED"


def test_the_deployment_form_shows_named_typed_fields(prefect_api_url: str) -> None:
    """The Prefect UI's custom-run form is generated from the deployment's parameter schema: it showed `settings: None`,
    `overrides` and `config_file`; now the fields people change, typed, bounded and described."""
    from prefect.client.orchestration import get_client

    deployment_id = training_flow.to_deployment(name="form-check").apply()
    with get_client(sync_client=True) as client:
        schema = client.read_deployment(deployment_id).parameter_openapi_schema
    fields = schema["properties"]
    assert list(fields)[:9] == [
        "dataset", "data_path", "target", "epochs", "hidden_units", "learning_rate", "dropout", "model_name", "force",
    ]  # fmt: skip

    def accepted(field: str) -> dict:  # type: ignore[type-arg]
        return next(option for option in fields[field]["anyOf"] if option.get("type") != "null")

    assert accepted("epochs") == {"type": "integer", "minimum": 1}
    assert accepted("hidden_units")["items"] == {"type": "integer", "minimum": 1}
    assert accepted("dropout") == {"type": "number", "minimum": 0, "exclusiveMaximum": 1}
    assert set(accepted("dataset")["enum"]) == {"breast_cancer", "wine", "diabetes"}
    assert set(accepted("preset")["enum"]) == {"tabular", "classic"}
    assert fields["force"]["type"] == "boolean" and fields["force"]["default"] is False
    assert fields["epochs"]["description"].startswith("Most epochs to train")
    assert all(fields[name].get("description") for name in fields), "every field is described on the form"
    assert not schema.get("required")


def test_the_named_fields_train_as_the_form_gave_them(store: Store, prefect_api_url: str) -> None:
    with pytest.raises(ConfigError, match="either a whole `settings` object"):
        training_flow(epochs=3, settings=store.settings())
    tracking = {"tracking_uri": store.tracking_uri}
    outcome = training_flow(
        dataset="wine",
        epochs=2,
        hidden_units=[6],
        dropout=0.1,
        model_name="form-wine",
        overrides={"tracking": tracking},
    )
    params = store.client().get_run(outcome.run_id).data.params
    assert params["data.dataset"] == "wine" and params["network.epochs"] == "2"
    assert params["network.hidden_units"] == "[6]" and params["network.dropout"] == "0.1"
    assert outcome.model_name == "form-wine" and outcome.version == "1"


def test_a_table_as_it_comes_trains_with_its_dates_headers_and_warnings(
    store: Store, prefect_api_url: str, tmp_path: Path
) -> None:
    """Padded headers, a date in every row, a 300-value text column, a constant and an empty column, 5 % positives,
    and a test split of 12 rows: trained as it is, and every one of those is handled or pointed out."""
    import json

    from tests.utils.factories import messy_frame

    messy_frame(rows=300, positives=0.05).to_csv(tmp_path / "weather.csv", index=False)
    outcome = training_flow(
        settings=store.settings(
            data={"path": str(tmp_path / "weather.csv"), "target": "label", "test_size": 0.04},
            tracking={"model_name": "weather"},
            network={"epochs": 2},
        )
    )
    client = store.client()
    run = client.get_run(outcome.run_id)
    warnings = run.data.tags["neuroflow.warnings"]
    assert "the test split has only 12 rows" in warnings and "95% interval" in warnings
    assert "'sunny' is 5.0%" in warnings and "--class-weight balanced" in warnings
    assert set(outcome.warnings) == set(warnings.split(" | "))

    def artifact(path: str) -> Any:
        return json.loads(Path(client.download_artifacts(run.info.run_id, path, str(tmp_path))).read_text())

    columns = {row["column"]: row for row in artifact("data_report/columns.json")["columns"]}
    assert set(columns) == {"date", "temp", "shop", "pixel", "nothing"}  # headers trimmed
    assert columns["date"]["kind"] == "datetime" and columns["date"]["action"].startswith("date: turned into 6 numbers")
    assert columns["pixel"]["action"] == "dropped: constant: every row holds 0"
    assert columns["nothing"]["action"] == "dropped: empty: every value is missing"
    assert len(columns["shop"]["kept"]) < 10 and columns["shop"]["pooled"] > 150  # 300 values in 288 rows: most rare
    assert "share one 'unknown' column" in columns["shop"]["action"]
    schema = artifact("schema/schema.json")
    assert [f["name"] for f in schema["features"]] == ["date", "temp", "shop"]
    card = client.get_model_version("weather", outcome.version).description
    assert "Warnings" in card and "only 12 rows" in card

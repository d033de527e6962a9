"""What the MLflow run records: the data set digest and schema, and a model whatever its column types."""

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.data.digest_utils import compute_pandas_digest
from mlflow.tracking import MlflowClient

from neuroflow.core.errors import ChampionNotComparableError
from neuroflow.models.schema import infer_schema
from neuroflow.pipelines.bookkeeping.registry import register_version
from neuroflow.pipelines.bookkeeping.tracking import epoch_logger, log_model
from neuroflow.pipelines.steps.data import frame_digest
from neuroflow.pipelines.steps.evaluation import score_registered_model
from tests.utils.factories import classification_frame, mixed_frame, train_tiny
from tests.utils.store import Store


def test_digest_is_mlflows_own_on_small_and_large_frames() -> None:
    small = mixed_frame(rows=300)
    rng = np.random.default_rng(0)
    large = pd.DataFrame(
        {
            "x": rng.normal(size=12_000),
            "n": rng.integers(0, 9, size=12_000),
            "city": rng.choice(["oslo", "lima"], size=12_000).astype(object),
        }
    )
    assert frame_digest(small) == compute_pandas_digest(small)
    assert frame_digest(large) == compute_pandas_digest(large)


def test_digest_follows_the_values_and_the_row_count() -> None:
    frame = mixed_frame(rows=300)
    changed = frame.copy()
    changed.iloc[0, 0] = changed.iloc[1, 0]
    assert frame_digest(changed) != frame_digest(frame)
    assert frame_digest(frame.iloc[:-1]) != frame_digest(frame)


def test_dataset_schema_is_the_learned_one_and_infers_only_unknown_columns() -> None:
    from neuroflow.models.packaging import model_signature
    from neuroflow.pipelines.bookkeeping.tracking import dataset_schema

    frame = mixed_frame(rows=300)
    schema = infer_schema(frame, "label", "binary")
    logged = dataset_schema(schema, frame.assign(note="free text"))
    by_name = {spec.name: spec for spec in logged.inputs}
    assert list(by_name) == [*frame.columns, "note"]
    for spec in model_signature(schema).inputs.inputs:
        assert by_name[spec.name] == spec
    assert by_name["age"].required is False  # it has missing values
    assert by_name["label"].required is True
    assert by_name["note"].type.name == "string"  # not in the schema: inferred


def test_a_model_trained_on_whole_number_columns_is_logged_loads_and_can_be_scored(
    tmp_path: Path, store: Store
) -> None:
    """Counts and ages come as int64; MLflow refused them against the signature's doubles when logging the model, when
    the promotion gate scored the champion on new test rows, and in `pyfunc.predict` on the training file itself."""
    frame = classification_frame(rows=120)
    frame["visits"] = np.random.default_rng(0).integers(0, 40, len(frame))  # int64, no missing values
    tiny = train_tiny(frame, "target", "binary")
    schema, split, predictor = tiny.schema, tiny.split, tiny.predictor
    experiment = store.experiment("ints")
    run_id = MlflowClient().create_run(experiment).info.run_id
    example = split.test_features.head(5)
    assert example["visits"].dtype == "int64"
    logged = log_model(run_id, predictor, example, tmp_path)
    loaded = mlflow.pyfunc.load_model(logged.uri)
    predicted = loaded.predict(split.test_features)  # int64 as read, no cast
    client = MlflowClient()
    version = register_version(client, "ints", logged.uri, run_id, logged.file_digests)
    champion_score = score_registered_model(client, "ints", version, schema, split)  # as the gate scores one
    assert len(predicted) == len(split.test_features)
    assert loaded.metadata.get_input_schema().input_types_dict()["visits"].name == "long"
    assert loaded.metadata.get_input_schema().input_types_dict()["f0"].name == "double"
    assert champion_score is not None and 0 <= champion_score <= 1


def test_the_gate_scores_a_champion_without_running_its_code_and_refuses_changed_files(
    tmp_path: Path, store: Store
) -> None:
    """The artifact store is not trusted: code in a logged model must not run in the trainer, and a file changed since
    registration makes the champion not comparable (so nothing is promoted over it)."""
    frame = classification_frame(rows=120)
    tiny = train_tiny(frame, "target", "binary")
    schema, split, predictor = tiny.schema, tiny.split, tiny.predictor
    marker = tmp_path / "code-ran"
    experiment = store.experiment("trust")
    client = MlflowClient()
    run_id = client.create_run(experiment).info.run_id
    logged = log_model(run_id, predictor, split.test_features.head(5), tmp_path / "work")
    version = register_version(client, "trust", logged.uri, run_id, logged.file_digests)
    stored = [path.parent for path in store.artifacts.rglob("MLmodel")]
    assert len(stored) == 1
    for code in stored[0].rglob("*.py"):
        code.write_text(f"import pathlib; pathlib.Path({str(marker)!r}).touch()\n" + code.read_text())
    score = score_registered_model(client, "trust", version, schema, split)
    assert 0 <= score <= 1 and not marker.exists(), "the gate ran code from the artifact store"
    weights = stored[0] / "artifacts" / "weights.npz"
    weights.write_bytes(weights.read_bytes()[:-8] + bytes(8))
    with pytest.raises(ChampionNotComparableError, match=r"changed since registration: weights\.npz"):
        score_registered_model(client, "trust", version, schema, split)


class RecordingClient:
    """Stands in for the tracking store: records each batch written."""

    def __init__(self) -> None:
        self.batches: list[list[mlflow.entities.Metric]] = []

    def log_batch(self, run_id: str, metrics: list[mlflow.entities.Metric]) -> None:
        self.batches.append(list(metrics))


def test_epoch_metrics_are_written_in_batches_and_all_of_them_at_the_end() -> None:
    client = RecordingClient()
    with epoch_logger(client, "run", interval=3600) as log_epoch:  # type: ignore[arg-type]
        for epoch in range(5):
            log_epoch(epoch, {"loss": 1.0 / (epoch + 1), "val_loss": 2.0})
        assert client.batches == []  # fast epochs wait for the interval
    assert len(client.batches) == 1
    assert [(m.key, m.step) for m in client.batches[0]][:3] == [("loss", 0), ("val_loss", 0), ("loss", 1)]
    assert len(client.batches[0]) == 10

    client = RecordingClient()
    with epoch_logger(client, "run", interval=0) as log_epoch:  # type: ignore[arg-type]
        for epoch in range(3):
            log_epoch(epoch, {"loss": 0.5})
    assert [len(batch) for batch in client.batches] == [1, 1, 1]  # slow epochs are written as they end


def test_a_large_backlog_is_split_into_batches_mlflow_accepts_and_kept_when_training_fails() -> None:
    client = RecordingClient()
    logger = epoch_logger(client, "run", interval=3600)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="out of memory"), logger as log_epoch:
        for epoch in range(300):
            log_epoch(epoch, {f"m{i}": float(i) for i in range(5)})
        raise RuntimeError("out of memory")
    assert [len(batch) for batch in client.batches] == [1000, 500]

"""The gate compares champion and challenger only on test rows neither trained on; served rows appended to the
retraining data are the ones it does not already hold."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from neuroflow.core.errors import ChampionNotComparableError
from neuroflow.models.schema import infer_schema
from neuroflow.pipelines.bookkeeping import promotion
from neuroflow.pipelines.retraining import new_rows
from neuroflow.pipelines.steps import data, evaluation
from neuroflow.pipelines.steps.data import (
    Dataset,
    labelled_row_digests,
    row_digests,
    split_data,
    training_row_digests,
)
from tests.utils.factories import classification_frame
from tests.utils.store import Store


def test_a_row_digests_the_same_however_it_was_read() -> None:
    read = pd.DataFrame({"a": [1, 2, None], "b": ["x", "y", None]})
    served = pd.DataFrame({"a": [1.0, 2.0, np.nan], "b": ["x", "y", None]})  # JSON numbers, nulls
    assert list(row_digests(read, ["a", "b"])) == list(row_digests(served, ["a", "b"]))
    assert row_digests(read, ["a", "b"])[0] != row_digests(pd.DataFrame({"a": [1], "b": ["z"]}), ["a", "b"])[0]


def test_served_rows_already_in_the_data_are_not_appended_again() -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "label": ["a", "b", "a"]})
    served = pd.DataFrame({"x": [2.0, 9.0, 9.0, 3.0], "label": ["b", "a", "a", "b"]})
    fresh, repeats = new_rows(frame, served)
    assert fresh.to_dict("records") == [{"x": 9.0, "label": "a"}, {"x": 3.0, "label": "b"}]  # (3, b) is new
    assert repeats == 2  # a copy of (2, b), and the second (9, a)


@pytest.fixture
def split() -> tuple:
    frame = classification_frame(rows=400)
    schema = infer_schema(frame, "target", "binary")
    return schema, split_data(Dataset("t", "test", frame, "target", "binary"), 0.25, 0.2, seed=0)


def test_the_gate_leaves_out_test_rows_the_champion_trained_on(split: tuple, monkeypatch: pytest.MonkeyPatch) -> None:
    schema, rows = split
    test = rows.test_features.assign(target=rows.test_target.to_numpy())
    columns = [*sorted(column.name for column in schema.features), "target"]
    seen_half = row_digests(test.iloc[: len(test) // 2], columns)  # another split put these in its training rows
    monkeypatch.setattr(evaluation, "trained_rows", lambda *args: seen_half)
    compared, said = promotion.rows_to_compare(None, "m", "3", schema, rows)  # type: ignore[arg-type]
    assert len(compared.test_target) == len(test) - len(test) // 2
    kept, left = len(compared.test_target), len(test) // 2
    assert said == f"compared on {kept} of {len(test)} test rows; {left} were rows v3 or this version trained on"
    assert not (set(compared.test_target.index) & set(rows.test_target.index[: len(test) // 2]))

    monkeypatch.setattr(evaluation, "trained_rows", lambda *args: None)  # a champion from before the record
    compared, said = promotion.rows_to_compare(None, "m", "3", schema, rows)  # type: ignore[arg-type]
    assert compared is rows and "v3 kept no record of its training rows" in said

    everything = np.concatenate([row_digests(test, columns), training_row_digests(schema, rows)])
    monkeypatch.setattr(evaluation, "trained_rows", lambda *args: everything)
    with pytest.raises(ChampionNotComparableError, match=r"only 0 of \d+ test rows are new to both v3"):
        promotion.rows_to_compare(None, "m", "3", schema, rows)  # type: ignore[arg-type]


def test_a_versions_training_rows_are_read_back_as_data(store: Store, split: tuple, tmp_path: Path) -> None:
    schema, rows = split
    client = store.client()
    run = client.create_run(store.experiment("rows"))
    digests = tmp_path / data.TRAINING_ROWS_ARTIFACT
    np.savez_compressed(digests, rows=training_row_digests(schema, rows))
    client.log_artifact(run.info.run_id, str(digests))
    client.create_registered_model("m")
    version = client.create_model_version("m", f"runs:/{run.info.run_id}/model", run_id=run.info.run_id).version
    read = evaluation.trained_rows(client, "m", str(version))
    assert read is not None and np.array_equal(read, training_row_digests(schema, rows))
    assert np.isin(labelled_row_digests(schema, rows.train_features, rows.train_target), read).all()
    assert not np.isin(labelled_row_digests(schema, rows.test_features, rows.test_target), read).any()
    bare = client.create_run(store.experiment("bare"))
    old = client.create_model_version("m", f"runs:/{bare.info.run_id}/model", run_id=bare.info.run_id).version
    assert evaluation.trained_rows(client, "m", str(old)) is None


class Tripwire:
    """Unpickling this touches a file: what a hostile `training_rows.npz` would do if it were unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (Path.touch, (self.marker,))


def test_training_rows_from_the_store_are_never_unpickled(store: Store, tmp_path: Path) -> None:
    client = store.client()
    run = client.create_run(store.experiment("hostile"))
    marker = tmp_path / "unpickled"
    hostile = tmp_path / data.TRAINING_ROWS_ARTIFACT
    np.savez(hostile, rows=np.array([Tripwire(marker)], dtype=object), allow_pickle=True)
    client.log_artifact(run.info.run_id, str(hostile))
    client.create_registered_model("h")
    version = client.create_model_version("h", f"runs:/{run.info.run_id}/model", run_id=run.info.run_id).version
    with pytest.raises(ValueError, match="allow_pickle"):
        evaluation.trained_rows(client, "h", str(version))
    assert not marker.exists()

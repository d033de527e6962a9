import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from neuroflow.core.errors import UntrustedModelError
from neuroflow.core.spec import NetworkSpec
from neuroflow.models.inference import (
    LEGACY_PREPROCESSING_FILE,
    NETWORK_FILE,
    PREPROCESSING_FILE,
    SCHEMA_FILE,
    SERVING_FILES,
    WEIGHTS_FILE,
    Prediction,
    Predictor,
    check_digests,
    file_digests,
)
from tests.utils.factories import (
    TINY_NETWORK,
    classification_frame,
    messy_frame,
    mixed_frame,
    regression_frame,
    train_tiny,
)


def test_prediction_frame_round_trip() -> None:
    prediction = Prediction(np.array(["a", "b"]), np.array([[0.9, 0.1], [0.2, 0.8]]))
    frame = prediction.to_frame(("a", "b"))
    assert list(frame.columns) == ["prediction", "probability_a", "probability_b"]
    again = Prediction.from_frame(frame, ("a", "b"))
    assert list(again.labels) == ["a", "b"]
    assert np.array_equal(again.probabilities, prediction.probabilities)
    values = Prediction(np.array([1.5, 2.5])).to_frame(None)
    assert list(Prediction.from_frame(values, None).labels) == [1.5, 2.5]


def test_saved_predictor_predicts_the_same_from_raw_rows(tmp_path: Path) -> None:
    frame = mixed_frame(rows=200)
    tiny = train_tiny(frame, "label", "binary")
    split, predictor = tiny.split, tiny.predictor
    predictor.save(tmp_path / "model")
    loaded = Predictor.from_directory(tmp_path / "model", with_network=True)
    before, after = predictor.predict(split.test_features), loaded.predict(split.test_features)
    assert np.array_equal(before.labels, after.labels)
    assert np.max(np.abs(before.probabilities - after.probabilities)) == 0
    assert set(after.labels) <= {"no", "yes"}
    matrix = loaded.encode(split.test_features)
    assert np.max(np.abs(loaded.keras_outputs(matrix) - loaded.raw_outputs(matrix))) <= 1e-5


def test_a_saved_model_is_data_only(tmp_path: Path) -> None:
    """What serving reads is JSON and pickle-free NumPy; no pickle is written at all."""
    predictor, _ = _trained(mixed_frame(rows=200), "label", "binary")
    files = predictor.save(tmp_path / "model")
    assert {Path(path).name for path in files.values()} == {*SERVING_FILES, NETWORK_FILE}
    data = json.loads(Path(files["preprocessing"]).read_text())
    assert data["format"] == 1 and data["encoder"]["width"] == predictor.encoder.width
    with np.load(files["weights"], allow_pickle=False) as arrays:
        assert all(array.dtype != object for array in arrays.values())
    assert not list((tmp_path / "model").glob("*.joblib")) and not list((tmp_path / "model").glob("*.pkl"))


def _pickle_that_runs(marker: Path) -> bytes:
    """A pickle that, when loaded, creates `marker`: what a tampered artifact store could hold."""

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    return pickle.dumps(Payload())


def test_a_pickle_beside_the_model_is_never_loaded(tmp_path: Path) -> None:
    predictor, split = _trained(mixed_frame(rows=200), "label", "binary")
    predictor.save(tmp_path / "model")
    marker = tmp_path / "ran"
    (tmp_path / "model" / LEGACY_PREPROCESSING_FILE).write_bytes(_pickle_that_runs(marker))
    loaded = Predictor.from_directory(tmp_path / "model")
    assert list(loaded.predict(split.test_features).labels) == list(predictor.predict(split.test_features).labels)
    assert not marker.exists(), "a pickle from the model's folder was executed"


def test_an_old_pickled_model_loads_only_when_the_store_is_trusted(tmp_path: Path) -> None:
    predictor, _ = _trained(mixed_frame(rows=200), "label", "binary")
    predictor.save(tmp_path / "model")
    (tmp_path / "model" / PREPROCESSING_FILE).unlink()
    marker = tmp_path / "ran"
    (tmp_path / "model" / LEGACY_PREPROCESSING_FILE).write_bytes(_pickle_that_runs(marker))
    with pytest.raises(UntrustedModelError, match="TRUST_ARTIFACT_STORE"):
        Predictor.from_directory(tmp_path / "model")
    assert not marker.exists()


def test_digests_catch_a_changed_file(tmp_path: Path) -> None:
    predictor, _ = _trained(mixed_frame(rows=200), "label", "binary")
    predictor.save(tmp_path / "model")
    digests = file_digests(tmp_path / "model")
    assert set(digests) == set(SERVING_FILES)
    check_digests(tmp_path / "model", digests)
    schema = tmp_path / "model" / SCHEMA_FILE
    schema.write_text(schema.read_text().replace('"nullable": false', '"nullable": true', 1))
    with pytest.raises(UntrustedModelError, match=r"changed since registration: schema\.json"):
        check_digests(tmp_path / "model", digests)
    with pytest.raises(UntrustedModelError, match="no digest recorded"):
        check_digests(tmp_path / "model", {WEIGHTS_FILE: digests[WEIGHTS_FILE]})


def test_a_damaged_preprocessing_file_is_refused_on_load(tmp_path: Path) -> None:
    predictor, _ = _trained(mixed_frame(rows=200), "label", "binary")
    predictor.save(tmp_path / "model")
    path = tmp_path / "model" / PREPROCESSING_FILE
    data = json.loads(path.read_text())
    data["encoder"]["positions"][0] = {"a": 10_000}
    path.write_text(json.dumps(data))
    with pytest.raises(UntrustedModelError, match="outside the network's input"):
        Predictor.from_directory(tmp_path / "model")


def test_regression_values_come_back_in_target_units() -> None:
    tiny = train_tiny(regression_frame(rows=200), "target", "regression")
    split, predictor = tiny.split, tiny.predictor
    prediction = predictor.predict(split.test_features)
    assert prediction.probabilities is None
    raw = predictor.raw_outputs(predictor.preprocessing.transform(split.test_features))[:, 0]
    expected = raw * predictor.preprocessing.target_scale + predictor.preprocessing.target_mean
    assert np.allclose(prediction.labels, expected)


def _trained(frame, target, task, network=TINY_NETWORK):
    tiny = train_tiny(frame, target, task, network)
    return tiny.predictor, tiny.split


def test_numpy_encoding_equals_the_fitted_sklearn_transform() -> None:
    predictor, split = _trained(mixed_frame(rows=300), "label", "binary")
    rows = split.test_features.copy()
    rows.iloc[0, rows.columns.get_loc("city")] = "atlantis"  # unseen, and city has no rare values: all zeros
    expected = predictor.preprocessing.transform(rows)
    assert rows.isna().any().any(), "the test rows should include missing values"
    assert np.max(np.abs(predictor.encode(rows) - expected)) <= 1e-6


def test_rare_and_unseen_categories_share_one_trained_unknown_column() -> None:
    frame = mixed_frame(rows=300)
    frame.loc[:2, "city"] = "marseille"  # 3 rows: rarer than MIN_CATEGORY_COUNT
    frame.loc[3:6, "city"] = "brest"  # 4 rows
    predictor, split = _trained(frame, "label", "binary")
    names = list(predictor.preprocessing.features.get_feature_names_out())
    city = [name for name in names if "city" in name]
    assert city == [
        "categorical__city___missing__",
        "categorical__city_lyon",
        "categorical__city_nice",
        "categorical__city_paris",
        "categorical__city_infrequent_sklearn",
    ]
    rows = split.test_features.head(4).copy()
    rows["city"] = ["marseille", "brest", "tokyo", "paris"]  # rare, rare, unseen, frequent
    expected = predictor.preprocessing.transform(rows)
    ours = predictor.encode(rows)
    assert np.max(np.abs(ours - expected)) <= 1e-6
    bucket = names.index("categorical__city_infrequent_sklearn")
    assert list(ours[:, bucket]) == [1.0, 1.0, 1.0, 0.0]
    records = rows.astype(object).where(rows.notna(), None).to_dict("records")
    assert np.max(np.abs(predictor.encoder.encode_records(records) - expected)) <= 1e-6


@pytest.mark.parametrize(
    ("frame", "target", "task", "network"),
    [
        (mixed_frame(rows=300), "label", "binary", TINY_NETWORK),
        (
            classification_frame(classes=3),
            "target",
            "multiclass",
            NetworkSpec(hidden_units=(8, 4), activation="tanh", dropout=0.2, epochs=2),
        ),
        (
            regression_frame(),
            "target",
            "regression",
            NetworkSpec(hidden_units=(6,), activation="sigmoid", epochs=2),
        ),
    ],
    ids=["binary-relu", "multiclass-tanh-dropout", "regression-sigmoid"],
)
def test_numpy_forward_pass_matches_keras(frame, target, task, network) -> None:
    predictor, split = _trained(frame, target, task, network)
    matrix = predictor.preprocessing.transform(split.test_features)
    assert np.max(np.abs(predictor.raw_outputs(matrix) - predictor.keras_outputs(matrix))) <= 1e-5


def test_records_and_frames_predict_the_same() -> None:
    predictor, split = _trained(mixed_frame(rows=300), "label", "binary")
    frame = split.test_features
    records = [
        {key: (None if isinstance(value, float) and np.isnan(value) else value) for key, value in row.items()}
        for row in frame.to_dict(orient="records")
    ]
    from_frame, from_records = predictor.predict(frame), predictor.predict_records(records)
    assert list(from_frame.labels) == list(from_records.labels)
    assert np.max(np.abs(from_frame.probabilities - from_records.probabilities)) <= 1e-7


def test_a_file_of_rows_is_encoded_as_each_row_alone() -> None:
    """Past VECTOR_ROWS rows, categories are one-hot encoded with NumPy (batch scoring); one at a time, row by row
    (requests). Missing, known and never-seen categories land in the same input columns either way."""
    from neuroflow.models.forward import VECTOR_ROWS

    frame = mixed_frame(rows=400, seed=3).drop(columns="label")
    frame.loc[frame.index[:7], "city"] = "tokyo"  # unseen: the unknown bucket
    predictor, _ = _trained(mixed_frame(rows=300), "label", "binary")
    assert len(frame) > VECTOR_ROWS
    whole = predictor.encode(frame)
    one_by_one = np.vstack([predictor.encode(frame.iloc[[row]]) for row in range(len(frame))])
    assert np.array_equal(whole, one_by_one)


def test_loading_for_serving_does_not_import_tensorflow(tmp_path: Path) -> None:
    predictor, split = _trained(mixed_frame(rows=200), "label", "binary")
    predictor.save(tmp_path / "model")
    split.test_features.to_pickle(tmp_path / "rows.pkl")
    script = (
        "import sys, pandas as pd\n"
        "from neuroflow.models.inference import Predictor\n"
        f"p = Predictor.from_directory({str(tmp_path / 'model')!r})\n"
        f"print(p.predict(pd.read_pickle({str(tmp_path / 'rows.pkl')!r})).labels[:3])\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TensorFlow was imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


def test_a_model_logged_before_the_namespace_still_loads_from_a_trusted_store(tmp_path: Path) -> None:
    """Registries hold versions whose preprocessing was pickled as `models.preprocessing.Preprocessing`; behind the
    trust setting they still load, and the old names do not stay importable afterwards."""
    predictor, split = _trained(mixed_frame(rows=200), "label", "binary")
    predictor.save(tmp_path / "model")
    (tmp_path / "model" / PREPROCESSING_FILE).unlink()
    old_style = pickle.dumps(predictor.preprocessing, protocol=0).replace(b"cneuroflow.models.", b"cmodels.")
    assert b"neuroflow.models" not in old_style
    (tmp_path / "model" / LEGACY_PREPROCESSING_FILE).write_bytes(old_style)
    loaded = Predictor.from_directory(tmp_path / "model", trust_legacy=True)
    assert list(loaded.predict(split.test_features).labels) == list(predictor.predict(split.test_features).labels)
    assert "models" not in sys.modules and "models.preprocessing" not in sys.modules


def test_the_safe_loader_wants_digests_unless_the_store_is_trusted(tmp_path: Path) -> None:
    from neuroflow.core.store import ModelInfo
    from neuroflow.models.loading import load_predictor

    predictor, _ = _trained(mixed_frame(rows=200), "label", "binary")
    predictor.save(tmp_path / "model")
    recorded = ModelInfo("m", "1", None, None, "models:/m/1", file_digests=file_digests(tmp_path / "model"))
    assert load_predictor(tmp_path / "model", recorded).schema == predictor.schema
    unrecorded = ModelInfo("m", "1", None, None, "models:/m/1")
    with pytest.raises(UntrustedModelError, match="no file digests"):
        load_predictor(tmp_path / "model", unrecorded)
    assert load_predictor(tmp_path / "model", unrecorded, trust_store=True).schema == predictor.schema
    assert ModelInfo.from_json(recorded.to_json()) == recorded  # what a Bento's model metadata carries


def test_dates_become_numbers_the_same_way_from_a_frame_a_request_and_sklearn(tmp_path: Path) -> None:
    frame = messy_frame(rows=300)
    frame.columns = [name.strip() for name in frame.columns]
    frame = frame.drop(columns=["pixel", "nothing", "shop"])
    frame["at"] = pd.date_range("2024-03-01 08:15", periods=300, freq="5h", tz="Europe/Paris")
    predictor, split = _trained(frame, "label", "binary")
    rows = split.test_features.head(20).copy()
    rows.iloc[0, rows.columns.get_loc("date")] = None  # missing dates take the training medians
    expected = predictor.preprocessing.transform(rows)
    assert np.max(np.abs(predictor.encode(rows) - expected)) <= 1e-6
    records = [
        {"date": None if pd.isna(date) else date, "temp": temp, "at": moment.isoformat()}
        for date, temp, moment in zip(rows["date"], rows["temp"], rows["at"], strict=True)
    ]
    from_frame = predictor.predict(rows).probabilities
    from_records = predictor.predict_records(records).probabilities
    assert np.max(np.abs(from_frame - from_records)) <= 1e-6
    # the same moment written in another zone is the same input
    moved = [{**record, "at": pd.Timestamp(record["at"]).tz_convert("UTC").isoformat()} for record in records]
    assert np.max(np.abs(predictor.predict_records(moved).probabilities - from_records)) <= 1e-9
    predictor.save(tmp_path / "model")
    loaded = Predictor.from_directory(tmp_path / "model")
    assert np.max(np.abs(loaded.predict_records(records).probabilities - from_records)) <= 1e-9


def test_a_year_never_seen_in_training_is_still_a_number_not_an_unknown_category() -> None:
    frame = messy_frame(rows=400)
    frame.columns = [name.strip() for name in frame.columns]
    predictor, _ = _trained(frame.drop(columns=["pixel", "nothing", "shop"]), "label", "binary")
    later = predictor.encode(pd.DataFrame({"date": ["2031-07-01"], "temp": [20.0]}))
    earlier = predictor.encode(pd.DataFrame({"date": ["2021-07-01"], "temp": [20.0]}))
    year = predictor.encoder.numeric.index("date.year")
    assert later[0, year] > earlier[0, year] + 5  # ten years on, in standardised units: no "unknown" bucket

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from neuroflow.models.inference import Prediction, Predictor
from neuroflow.models.schema import infer_schema
from neuroflow.models.spec import NetworkSpec
from neuroflow.pipelines.data import Dataset, split_data
from neuroflow.pipelines.training import train_model
from tests.utils.factories import TINY_NETWORK, classification_frame, mixed_frame, regression_frame


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
    schema = infer_schema(frame, "label", "binary")
    split = split_data(Dataset("m", "test", frame, "label", "binary"), 0.2, 0.2, seed=0)
    predictor = train_model(schema, split, TINY_NETWORK, seed=0).predictor
    artifacts = predictor.save(tmp_path / "model")
    loaded = Predictor.load(artifacts["network"], artifacts["preprocessing"])
    before, after = predictor.predict(split.test_features), loaded.predict(split.test_features)
    assert np.array_equal(before.labels, after.labels)
    assert np.max(np.abs(before.probabilities - after.probabilities)) == 0
    assert set(after.labels) <= {"no", "yes"}


def test_regression_values_come_back_in_target_units() -> None:
    frame = regression_frame(rows=200)
    schema = infer_schema(frame, "target", "regression")
    split = split_data(Dataset("r", "test", frame, "target", "regression"), 0.2, 0.2, seed=0)
    predictor = train_model(schema, split, TINY_NETWORK, seed=0).predictor
    prediction = predictor.predict(split.test_features)
    assert prediction.probabilities is None
    raw = predictor.raw_outputs(predictor.preprocessing.transform(split.test_features))[:, 0]
    expected = raw * predictor.preprocessing.target_scale + predictor.preprocessing.target_mean
    assert np.allclose(prediction.labels, expected)


def _trained(frame, target, task, network=TINY_NETWORK):
    schema = infer_schema(frame, target, task)
    split = split_data(Dataset("d", "test", frame, target, task), 0.2, 0.2, seed=0)
    return train_model(schema, split, network, seed=0).predictor, split


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


def test_a_model_logged_before_the_namespace_still_loads(tmp_path: Path) -> None:
    """Registries hold versions whose preprocessing was pickled as `models.preprocessing.Preprocessing`; the service
    must still serve them, and the old names must not stay importable afterwards."""
    import pickle

    predictor, split = _trained(mixed_frame(rows=200), "label", "binary")
    files = predictor.save(tmp_path / "model")
    old_style = pickle.dumps(predictor.preprocessing, protocol=0).replace(b"cneuroflow.models.", b"cmodels.")
    assert b"neuroflow.models" not in old_style
    Path(files["preprocessing"]).write_bytes(old_style)
    loaded = Predictor.from_directory(tmp_path / "model")
    assert list(loaded.predict(split.test_features).labels) == list(predictor.predict(split.test_features).labels)
    assert "models" not in sys.modules and "models.preprocessing" not in sys.modules

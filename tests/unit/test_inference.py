from pathlib import Path

import numpy as np

from models.inference import Prediction, Predictor
from models.schema import infer_schema
from pipelines.data import Dataset, split_data
from pipelines.training import train_model
from tests.utils.factories import TINY_NETWORK, mixed_frame, regression_frame


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

"""The tabular preset: each Keras layer against its NumPy twin, the ensemble's loss, the saved weights, calibration
and the decision threshold."""

import json
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest

from neuroflow.core.errors import UntrustedModelError
from neuroflow.core.spec import preset_spec
from neuroflow.models import calibration
from neuroflow.models.forward import (
    DenseLayer,
    EnsembleDense,
    FeatureEncoder,
    ForwardPass,
    InputEmbedding,
    OutputHead,
    smooth_clip,
)
from neuroflow.models.inference import Predictor
from neuroflow.models.layers import CalibratedHead, MemberDense, TabularInput
from neuroflow.models.network import MemberLoss
from neuroflow.models.schema import infer_schema
from neuroflow.pipelines.steps.data import Dataset, split_data
from neuroflow.pipelines.steps.training import train_model
from tests.utils.factories import classification_frame, mixed_frame, regression_frame

TINY_TABULAR = preset_spec("tabular", hidden_units=(8,), members=3, epochs=3, patience=2)


def _randomised(layer: keras.layers.Layer, seed: int = 0) -> keras.layers.Layer:
    """Every weight drawn at random (a freshly built layer holds ones and zeros in places)."""
    rng = np.random.default_rng(seed)
    layer.set_weights([rng.normal(0, 0.7, weight.shape).astype("float32") for weight in layer.get_weights()])
    return layer


def _matrix(rows: int, numeric: int, blocks: list[tuple[int, int]], seed: int = 1) -> np.ndarray:
    """Scaled numbers (outliers too) then one-hot blocks, some rows all zeros (an unseen category without a bucket)."""
    rng = np.random.default_rng(seed)
    width = blocks[-1][1] if blocks else numeric
    matrix = np.zeros((rows, width), dtype="float32")
    matrix[:, :numeric] = rng.normal(0, 3, (rows, numeric))
    for start, stop in blocks:
        picked = rng.integers(start, stop + 1, rows)  # stop: no column set
        hit = picked < stop
        matrix[np.flatnonzero(hit), picked[hit]] = 1.0
    return matrix


@pytest.mark.parametrize(
    ("embedding", "clip", "scale", "embedded"),
    [(8, True, True, True), (0, False, False, False), (4, True, False, True), (0, True, True, True)],
    ids=["everything", "nothing", "periodic-no-scale", "categories-only"],
)
def test_tabular_input_matches_its_numpy_twin(embedding: int, clip: bool, scale: bool, embedded: bool) -> None:
    blocks = [(3, 5), (5, 17)]  # a 2-value text column one-hot, a 12-value one embedded
    layer = TabularInput(
        3,
        clip=clip,
        numeric_embedding=embedding,
        frequencies=5,
        blocks=[(5, 17)] if embedded else [],
        category_embedding=4,
        feature_scale=scale,
        seed=3,
    )
    matrix = _matrix(64, 3, blocks)
    keras_out = np.asarray(_randomised(layer, 2)(matrix))
    twin = layer.numpy_twin()
    assert isinstance(twin, InputEmbedding)
    numpy_out = twin(matrix)
    assert numpy_out.shape == keras_out.shape == (64, layer.output_width)
    assert np.max(np.abs(numpy_out - keras_out)) <= 1e-5


def test_smooth_clip_is_the_identity_near_zero_and_bounded() -> None:
    values = np.array([0.0, 0.01, -0.01, 100.0, -1e6])
    clipped = smooth_clip(values)
    assert np.allclose(clipped[:3], values[:3], atol=1e-5)
    assert np.all(np.abs(clipped) < 3.0)


@pytest.mark.parametrize("activation", ["selu", "silu", "mish", "relu", "tanh", "linear"])
def test_member_dense_matches_its_numpy_twin_from_rows_and_from_members(activation: str) -> None:
    first = _randomised(MemberDense(6, members=3, activation=activation, seed=1), 4)
    second = _randomised(MemberDense(2, members=3, activation=activation, seed=2), 5)
    matrix = np.random.default_rng(0).normal(0, 1, (32, 7)).astype("float32")
    keras_out = np.asarray(second(first(matrix)))  # (rows, members, units)
    twins = ForwardPass((first.numpy_twin(), second.numpy_twin()))
    numpy_out = twins(matrix)  # (members, rows, units)
    assert keras_out.shape == (32, 3, 2) and numpy_out.shape == (3, 32, 2)
    assert np.max(np.abs(numpy_out.transpose(1, 0, 2) - keras_out)) <= 1e-5


@pytest.mark.parametrize(("activation", "units"), [("sigmoid", 1), ("softmax", 4), ("linear", 1)])
def test_the_head_averages_members_at_a_temperature_like_its_twin(activation: str, units: int) -> None:
    logits = np.random.default_rng(0).normal(0, 3, (20, 5, units)).astype("float32")
    head = CalibratedHead(activation, temperature=1.7)
    keras_out = np.asarray(head(logits))
    numpy_out = head.numpy_twin()(logits.transpose(1, 0, 2))
    assert keras_out.shape == numpy_out.shape == (20, units)
    assert np.max(np.abs(numpy_out - keras_out)) <= 1e-6
    assert head.numpy_twin().temperature == pytest.approx(1.7)


def test_each_member_is_scored_against_its_own_rows_target() -> None:
    """Keras squeezes a plain loss function's (rows, members, 1) logits; the loss must still pair row with row."""
    targets = np.array([[1.0], [0.0], [1.0]], dtype="float32")
    logits = np.array([[[4.0], [2.0]], [[-4.0], [-2.0]], [[4.0], [2.0]]], dtype="float32")
    per_row = np.asarray(MemberLoss("binary")(targets, logits))
    expected = np.mean([np.log1p(np.exp(-4.0)), np.log1p(np.exp(-2.0))])
    assert float(per_row) == pytest.approx(expected, rel=1e-5)
    swapped = np.asarray(MemberLoss("binary")(1 - targets, logits))
    assert float(swapped) > 2.0  # every member wrong on every row


def _trained(frame: pd.DataFrame, target: str, task: str, spec=TINY_TABULAR):  # type: ignore[no-untyped-def]
    schema = infer_schema(frame, target, task)
    split = split_data(Dataset("t", "t", frame, target, task), 0.2, 0.2, 0)
    return train_model(schema, split, spec, seed=0), split


@pytest.mark.parametrize(
    ("frame", "target", "task"),
    [
        (mixed_frame(rows=300), "label", "binary"),
        (classification_frame(classes=3), "target", "multiclass"),
        (regression_frame(), "target", "regression"),
    ],
    ids=["binary-with-blanks", "multiclass", "regression"],
)
def test_a_trained_tabular_network_answers_in_numpy_as_in_keras(frame: pd.DataFrame, target: str, task: str) -> None:
    result, split = _trained(frame, target, task)
    predictor = result.predictor
    rows = split.test_features.copy()
    if "city" in rows:
        rows.loc[rows.index[:5], "city"] = "tokyo"  # never seen in training
        rows.loc[rows.index[5:8], "age"] = np.nan
    matrix = predictor.encode(rows)
    assert np.max(np.abs(predictor.raw_outputs(matrix) - predictor.keras_outputs(matrix))) <= 1e-5
    members = [layer for layer in predictor.forward.layers if isinstance(layer, EnsembleDense)]
    assert members and all(layer.kernel.shape[0] == 3 for layer in members)  # one pass over stacked weights


def test_the_tabular_model_saves_as_data_and_loads_with_its_keras_network(tmp_path: Path) -> None:
    result, split = _trained(mixed_frame(rows=300), "label", "binary")
    predictor = result.predictor
    predictor.save(tmp_path)
    served = Predictor.from_directory(tmp_path)
    with_keras = Predictor.from_directory(tmp_path, with_network=True)
    matrix = predictor.encode(split.test_features)
    assert np.array_equal(served.raw_outputs(matrix), predictor.raw_outputs(matrix))
    assert np.max(np.abs(with_keras.keras_outputs(matrix) - served.raw_outputs(matrix))) <= 1e-5
    assert served.forward.temperature == pytest.approx(result.calibration["temperature"])


def test_weights_of_an_unknown_layer_kind_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "weights.npz"
    np.savez(path, format=np.array(2), kinds=np.array(["pickle_me"]), **{"0.config": np.array("{}")})
    with pytest.raises(ValueError, match="layer kind"):
        ForwardPass.load(path)


def test_dense_only_weights_of_the_first_format_still_load(tmp_path: Path) -> None:
    kernel, bias = np.ones((3, 1), "float32"), np.zeros(1, "float32")
    np.savez(tmp_path / "old.npz", kernel_0=kernel, bias_0=bias, activations=np.array(["sigmoid"]))
    loaded = ForwardPass.load(tmp_path / "old.npz")
    assert len(loaded.layers) == 1 and isinstance(loaded.layers[0], DenseLayer)
    assert loaded.layers[0].activation == "sigmoid"
    assert loaded(np.zeros((1, 3)))[0, 0] == pytest.approx(0.5)


def test_a_damaged_temperature_is_refused(tmp_path: Path) -> None:
    result, _ = _trained(mixed_frame(rows=200), "label", "binary")
    weights = tmp_path / "weights.npz"
    broken = ForwardPass((*result.predictor.forward.layers[:-1], OutputHead("sigmoid", -1.0)))
    broken.save(weights)
    with pytest.raises(ValueError, match="temperature"):
        ForwardPass.load(weights)
    result.predictor.save(tmp_path / "model")
    broken.save(tmp_path / "model" / "weights.npz")
    with pytest.raises(UntrustedModelError):
        Predictor.from_directory(tmp_path / "model")


def test_the_temperature_fitted_is_the_one_that_made_the_labels() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 4, (4000, 3))
    chances = calibration.probabilities(logits, "softmax", 2.5)
    labels = np.array([rng.choice(3, p=row) for row in chances])
    assert calibration.fit_temperature(logits, labels, "softmax") == pytest.approx(2.5, rel=0.1)
    calibrated = calibration.expected_calibration_error(chances, labels)
    overconfident = calibration.expected_calibration_error(calibration.probabilities(logits, "softmax"), labels)
    assert calibrated < 0.03 < overconfident


def test_calibration_lowers_an_overconfident_networks_validation_log_loss() -> None:
    result, _ = _trained(classification_frame(rows=400, classes=3), "target", "multiclass")
    measures = result.calibration
    assert measures["validation_log_loss"] <= measures["validation_log_loss_uncalibrated"] + 1e-9
    assert result.predictor.forward.temperature == pytest.approx(measures["temperature"])


def test_the_f1_threshold_is_chosen_on_validation_and_decides_the_label(tmp_path: Path) -> None:
    frame = mixed_frame(rows=400)
    result, split = _trained(
        frame, "label", "binary", preset_spec("tabular", hidden_units=(8,), epochs=3, threshold="f1")
    )
    predictor = result.predictor
    assert predictor.threshold == pytest.approx(result.calibration["threshold"])
    prediction = predictor.predict(split.test_features)
    positive = predictor.schema.classes[1]  # type: ignore[index]
    assert np.array_equal(prediction.labels == positive, prediction.probabilities[:, 1] >= predictor.threshold)
    predictor.save(tmp_path)
    assert Predictor.from_directory(tmp_path).threshold == predictor.threshold


def test_a_threshold_moves_the_label_where_probability_half_would_not() -> None:
    schema = infer_schema(mixed_frame(rows=60), "label", "binary")
    encoder = FeatureEncoder(("age",), np.zeros(1), np.zeros(1), np.ones(1), (), (), 1, ())
    forward = ForwardPass((DenseLayer(np.ones((1, 1), "float32"), np.zeros(1, "float32"), "sigmoid"),))
    rows = pd.DataFrame({"age": [0.5], "income": [1.0], "city": ["paris"], "member": [True]})  # p = 0.62
    assert Predictor(schema, encoder, forward).predict(rows).labels[0] == schema.classes[1]  # type: ignore[index]
    assert Predictor(schema, encoder, forward, threshold=0.7).predict(rows).labels[0] == schema.classes[0]  # type: ignore[index]


def test_the_tabular_network_trains_with_class_weights_and_category_embeddings() -> None:
    frame = mixed_frame(rows=300)
    frame["shop"] = [f"shop-{i % 12}" for i in range(len(frame))]  # 12 values: embedded (one_hot_max 8)
    spec = preset_spec("tabular", hidden_units=(8,), epochs=2, class_weight="balanced", one_hot_max=8)
    result, split = _trained(frame, "label", "binary", spec)
    embedding = result.predictor.forward.layers[0]
    assert isinstance(embedding, InputEmbedding) and len(embedding.embeddings) == 1
    assert embedding.embeddings[0].shape[1] == 8
    matrix = result.predictor.encode(split.test_features)
    assert np.max(np.abs(result.predictor.raw_outputs(matrix) - result.predictor.keras_outputs(matrix))) <= 1e-5


def test_serving_a_tabular_model_needs_neither_keras_nor_sklearn(tmp_path: Path) -> None:
    import subprocess
    import sys

    result, split = _trained(mixed_frame(rows=200), "label", "binary")
    result.predictor.save(tmp_path / "model")
    rows = split.test_features.head(5)
    rows.to_json(tmp_path / "rows.json", orient="records")
    expected = result.predictor.predict(rows).probabilities
    script = (
        "import json, sys\n"
        "from neuroflow.models.inference import Predictor\n"
        f"p = Predictor.from_directory({str(tmp_path / 'model')!r})\n"
        f"records = json.load(open({str(tmp_path / 'rows.json')!r}))\n"
        "print(json.dumps(p.predict_records(records).probabilities.tolist()))\n"
        "heavy = [name for name in ('tensorflow', 'keras', 'sklearn') if name in sys.modules]\n"
        "assert not heavy, f'imported {heavy}'\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert np.max(np.abs(np.array(json.loads(done.stdout.strip().splitlines()[-1])) - expected)) <= 1e-6

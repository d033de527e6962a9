from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import numpy as np
import pandas as pd

from neuroflow.core.spec import NetworkSpec
from neuroflow.models.schema import infer_schema
from neuroflow.pipelines.steps.data import Dataset, split_data
from neuroflow.pipelines.steps.training import class_weights, epoch_batches, train_model
from tests.utils.factories import TINY_NETWORK, classification_frame


def _split(classes: int = 2):
    frame = classification_frame(rows=200, classes=classes)
    task = "binary" if classes == 2 else "multiclass"
    dataset = Dataset("t", "test", frame, "target", task)  # type: ignore[arg-type]
    return infer_schema(frame, "target", task), split_data(dataset, 0.2, 0.2, seed=0)  # type: ignore[arg-type]


def test_training_reports_history_and_calls_epoch_hooks() -> None:
    schema, split = _split()
    seen: list[int] = []
    result = train_model(schema, split, TINY_NETWORK, seed=1, epoch_hooks=[lambda epoch, metrics: seen.append(epoch)])
    assert result.epochs_run == 2 == len(result.history["loss"])
    assert seen == [0, 1]
    assert {"loss", "val_loss", "accuracy", "val_accuracy", "auc", "val_auc"} <= set(result.history)
    prediction = result.predictor.predict(split.test_features)
    assert prediction.probabilities is not None
    assert np.allclose(prediction.probabilities.sum(axis=1), 1.0)


def test_same_seed_gives_the_same_model() -> None:
    schema, split = _split(classes=3)
    first = train_model(schema, split, TINY_NETWORK, seed=3)
    second = train_model(schema, split, TINY_NETWORK, seed=3)
    assert first.history == second.history
    assert np.array_equal(
        first.predictor.predict(split.test_features).probabilities,
        second.predictor.predict(split.test_features).probabilities,
    )


def test_trainings_side_by_side_in_threads_give_what_each_gives_alone() -> None:
    """Parallel tuning trials share one process: one trial's random draws must not shift another's."""
    schema, split = _split()
    spec = replace(TINY_NETWORK, epochs=3, dropout=0.3, batch_size=16)
    alone = train_model(schema, split, spec, seed=5).history
    with ThreadPoolExecutor(2) as pool:
        side_by_side = list(pool.map(lambda seed: train_model(schema, split, spec, seed=seed).history, [5, 5]))
    assert side_by_side == [alone, alone]


def test_early_stopping_restores_the_best_epoch() -> None:
    schema, split = _split()
    # uncalibrated: a calibrated network answers through a temperature, so its loss is not the training loss
    spec = NetworkSpec(hidden_units=(16,), epochs=300, patience=2, learning_rate=0.05, calibration="none")
    result = train_model(schema, split, spec, seed=0)
    assert result.stopped_early
    assert result.epochs_run == result.best_epoch + spec.patience
    restored = result.predictor.network.evaluate(
        result.predictor.preprocessing.transform(split.validation_features),
        result.predictor.preprocessing.encode_target(split.validation_target).reshape(-1, 1).astype("float32"),
        verbose=0,
        return_dict=True,
    )["loss"]
    assert restored == min(result.history["val_loss"]) or abs(restored - min(result.history["val_loss"])) < 1e-5


def test_balanced_class_weights_make_every_class_weigh_the_same() -> None:
    labels = np.array([0] * 90 + [1] * 10)
    weights = class_weights(labels, 2)
    assert weights == {0: 100 / (2 * 90), 1: 100 / (2 * 10)}
    assert weights[0] * 90 == weights[1] * 10  # each class's total weight is equal
    assert class_weights(np.array([0, 0, 2]), 3)[1] == 1.0  # a class absent from training keeps weight 1


def test_balanced_weights_shift_an_imbalanced_classifier_towards_the_rare_class() -> None:
    frame = classification_frame(rows=400)
    rare = frame[frame["target"] == 1].head(30)
    frame = pd.concat([frame[frame["target"] == 0], rare]).reset_index(drop=True)
    dataset = Dataset("imbalanced", "test", frame, "target", "binary")
    schema, split = infer_schema(frame, "target", "binary"), split_data(dataset, 0.2, 0.2, seed=0)
    spec = replace(TINY_NETWORK, epochs=5)
    plain = train_model(schema, split, spec, seed=1)
    weighted = train_model(schema, split, replace(spec, class_weight="balanced"), seed=1)

    def rare_share(result) -> float:  # type: ignore[no-untyped-def]
        return float(result.predictor.predict(split.train_features).probabilities[:, 1].mean())

    assert rare_share(weighted) > rare_share(plain)


def _orders(batches, steps: int, epochs: int) -> list[list[bytes]]:  # type: ignore[no-untyped-def]
    """The rows each epoch of a batch stream visits, in order (rows told apart by their bytes)."""
    stream = iter(batches)
    return [[row.tobytes() for _ in range(steps) for row in np.asarray(next(stream)[0])] for _ in range(epochs)]


def test_every_epoch_visits_every_row_once_in_a_new_order_reproducible_from_the_seed() -> None:
    features = np.arange(40, dtype="float32").reshape(20, 2)
    targets = np.zeros((20, 1), dtype="float32")
    orders = _orders(epoch_batches(features, targets, 6, seed=7, epochs=3)[0], 4, 3)
    assert all(sorted(order) == sorted(row.tobytes() for row in features) for order in orders)
    assert len({tuple(order) for order in orders}) == 3  # three epochs, three orders
    assert _orders(epoch_batches(features, targets, 6, seed=7, epochs=3)[0], 4, 3) == orders
    assert _orders(epoch_batches(features, targets, 6, seed=8, epochs=3)[0], 4, 3) != orders
    few, steps = epoch_batches(features[:5], targets[:5], 8, seed=7, epochs=2)  # fewer rows than one batch
    assert steps == 1 and [len(order) for order in _orders(few, 1, 2)] == [5, 5]


def test_training_feeds_the_network_a_new_order_every_epoch(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Keras 3 seeded with set_random_seed shuffles arrays the same way every epoch; what train_model hands to fit
    must not (this fails if training goes back to `fit(x, y, shuffle=True)`)."""
    import keras

    schema, split = _split()
    given: dict[str, object] = {}
    real_fit = keras.Model.fit

    def recording_fit(self, x=None, y=None, **kwargs):  # type: ignore[no-untyped-def]
        given.update(x=x, steps=kwargs.get("steps_per_epoch"))
        return real_fit(self, x, y, **kwargs)

    monkeypatch.setattr(keras.Model, "fit", recording_fit)
    spec = replace(TINY_NETWORK, epochs=3, batch_size=16)
    train_model(schema, split, spec, seed=1)
    assert not isinstance(given["x"], np.ndarray), "arrays given to fit are shuffled the same way every epoch"
    orders = _orders(given["x"], int(given["steps"]), 3)  # type: ignore[call-overload]
    assert len({tuple(order) for order in orders}) == 3
    assert len(set(orders[0])) == len(split.train_target)


def test_balanced_weights_travel_with_their_rows_through_the_shuffle() -> None:
    features = np.arange(10, dtype="float32").reshape(10, 1)
    targets = np.zeros((10, 1), dtype="float32")
    weights = np.arange(10, dtype="float64") * 10
    batches, _ = epoch_batches(features, targets, 4, seed=0, epochs=1, sample_weights=weights)
    seen = 0
    for x, _, w in batches:
        assert np.array_equal(np.asarray(x)[:, 0] * 10, np.asarray(w))
        seen += len(np.asarray(x))
    assert seen == 10  # every row came through, with its weight (no batches at all would pass the loop)

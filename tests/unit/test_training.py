from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import numpy as np
import pandas as pd

from neuroflow.models.schema import infer_schema
from neuroflow.models.spec import NetworkSpec
from neuroflow.pipelines.data import Dataset, split_data
from neuroflow.pipelines.training import class_weights, train_model
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
    spec = NetworkSpec(hidden_units=(16,), epochs=300, patience=2, learning_rate=0.05)
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

"""Fitting the preprocessing and training the network, with early stopping and visible progress."""

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np

from ...core.spec import NetworkSpec, batch_size_for
from ...models import calibration
from ...models.forward import FeatureEncoder, ForwardPass
from ...models.inference import Predictor
from ...models.network import build_network, build_tabular_network, seed_everything, with_calibration
from ...models.preprocessing import Preprocessing, fit_preprocessing
from ...models.schema import DataSchema
from .data import Split

log = logging.getLogger(__name__)

EpochHook = Callable[[int, dict[str, float]], None]


@dataclass(frozen=True)
class TrainingResult:
    """The trained predictor and how training went."""

    predictor: Predictor
    history: dict[str, list[float]]
    epochs_run: int
    best_epoch: int
    stopped_early: bool
    seconds: float
    calibration: dict[str, float] = field(default_factory=dict)  # temperature, validation log loss and ECE before/after


class _EpochProgress(keras.callbacks.Callback):
    """One log line per epoch (carrying `epoch`, `epochs` and `metrics` for a live display), and a hook (e.g. MLflow)
    called with the epoch's metrics."""

    def __init__(self, epochs: int, hooks: Sequence[EpochHook]) -> None:
        super().__init__()
        self.epochs = epochs
        self.hooks = hooks

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        metrics = {name: float(value) for name, value in (logs or {}).items() if name != "learning_rate"}
        shown = "  ".join(f"{name} {value:.4f}" for name, value in metrics.items())
        extra = {"epoch": epoch + 1, "epochs": self.epochs, "metrics": metrics}
        log.info("epoch %d/%d  %s", epoch + 1, self.epochs, shown, extra=extra)
        for hook in self.hooks:
            hook(epoch, metrics)


def network_targets(preprocessing: Preprocessing, encoded: np.ndarray) -> np.ndarray:
    """What the network is fitted against: one-hot rows for multi-class, a column otherwise."""
    schema = preprocessing.schema
    if schema.task == "multiclass":
        return keras.utils.to_categorical(encoded, num_classes=len(schema.classes or ()))
    return encoded.reshape(-1, 1).astype("float32")


def class_weights(encoded: np.ndarray, n_classes: int) -> dict[int, float]:
    """Balanced class weights: n_rows / (n_classes * rows of the class), so every class weighs the same in the loss."""
    counts = np.bincount(encoded, minlength=n_classes).astype("float64")
    present = counts > 0
    weights = np.ones(n_classes)
    weights[present] = len(encoded) / (present.sum() * counts[present])
    return {index: float(weight) for index, weight in enumerate(weights)}


def epoch_batches(
    features: np.ndarray,
    targets: np.ndarray,
    batch_size: int,
    seed: int,
    epochs: int,
    sample_weights: np.ndarray | None = None,
) -> tuple[Any, int]:
    """The training rows as batches, in a new order every epoch: a stream of `epochs` epochs and the steps in one.

    Keras 3 on TensorFlow, seeded with `keras.utils.set_random_seed`, shuffles arrays in the same order every epoch.
    Here epoch e's order is a stateless shuffle seeded by (seed, e): reproducible from the seed, and independent of
    any other training in the process (tuning threads), since no global random state is read.
    """
    import tensorflow as tf

    rows = len(features)
    columns = [tf.constant(features), tf.constant(targets)]
    if sample_weights is not None:
        columns.append(tf.constant(sample_weights.astype("float32")))
    base = tf.constant(seed, tf.int64)
    full_batches = rows // batch_size

    def one_epoch(epoch: Any) -> Any:
        order = tf.random.experimental.stateless_shuffle(tf.range(rows, dtype=tf.int64), seed=tf.stack([base, epoch]))
        # whole batches as rows of a matrix (as Keras slices its own), then the remainder
        batches = tf.data.Dataset.from_tensor_slices(tf.reshape(order[: full_batches * batch_size], [-1, batch_size]))
        if rows % batch_size:
            batches = batches.concatenate(tf.data.Dataset.from_tensors(order[full_batches * batch_size :]))
        return batches

    batches = (
        tf.data.Dataset.range(epochs)
        .flat_map(one_epoch)
        .map(
            lambda rows_of_batch: tuple(tf.gather(column, rows_of_batch) for column in columns),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
        .prefetch(tf.data.AUTOTUNE)
    )
    return batches, math.ceil(rows / batch_size)


def train_model(
    schema: DataSchema, split: Split, spec: NetworkSpec, seed: int, epoch_hooks: Sequence[EpochHook] = ()
) -> TrainingResult:
    """Fit preprocessing on the training rows, train the network with early stopping on validation loss (the best
    epoch's weights kept), then calibrate its probabilities and choose the binary threshold on the validation rows."""
    seed_everything(seed)
    preprocessing = fit_preprocessing(schema, split.train_features, split.train_target, spec.scaling)
    train_x = preprocessing.transform(split.train_features)
    validation_x = preprocessing.transform(split.validation_features)
    train_labels = preprocessing.encode_target(split.train_target)
    validation_labels = preprocessing.encode_target(split.validation_target)
    train_y = network_targets(preprocessing, train_labels)
    validation_y = network_targets(preprocessing, validation_labels)
    n_classes = len(schema.classes) if schema.classes else None
    batch_size = batch_size_for(spec, len(train_x))
    log.info(
        "training %s %s network %s%s on %d rows (%d inputs), up to %d epochs",
        schema.task,
        spec.preset,
        list(spec.hidden_units),
        f" x {spec.members} members" if spec.members > 1 and spec.preset == "tabular" else "",
        len(train_x),
        preprocessing.n_inputs,
        spec.epochs,
    )
    row_weights = None
    if spec.class_weight == "balanced" and schema.task != "regression":
        weights = class_weights(train_labels, len(schema.classes or ()))
        log.info("class weights: %s", {label: round(weights[i], 3) for i, label in enumerate(schema.classes or ())})
        row_weights = np.asarray([weights[label] for label in range(len(weights))])[train_labels]
    batches, steps = epoch_batches(train_x, train_y, batch_size, seed, spec.epochs, row_weights)
    if spec.preset == "tabular":
        encoder = FeatureEncoder.from_transform(preprocessing.features)
        tabular = build_tabular_network(
            preprocessing.n_inputs,
            schema.task,
            spec,
            len(encoder.numeric),
            encoder.category_blocks(),
            n_classes,
            seed,
            steps,
        )
        network, fitted_model = tabular.network, tabular.training
    else:
        network = fitted_model = build_network(preprocessing.n_inputs, schema.task, spec, n_classes, seed)
    stopper = keras.callbacks.EarlyStopping(monitor="val_loss", patience=spec.patience, restore_best_weights=True)
    started = time.perf_counter()
    fitted = fitted_model.fit(
        batches,
        steps_per_epoch=steps,
        validation_data=(validation_x, validation_y),
        validation_batch_size=max(batch_size, 256),  # given batches, Keras would score validation 32 rows at a time
        epochs=spec.epochs,
        shuffle=False,  # the batches are shuffled per epoch already; Keras would only warn
        verbose=0,
        callbacks=[stopper, _EpochProgress(spec.epochs, epoch_hooks)],
    )
    seconds = time.perf_counter() - started
    history = {
        name: [float(value) for value in values] for name, values in fitted.history.items() if name != "learning_rate"
    }
    epochs_run = len(history["loss"])
    best_epoch = int(np.argmin(history["val_loss"])) + 1
    stopped_early = epochs_run < spec.epochs
    log.info(
        "trained %d epochs in %.1f s (best epoch %d%s)",
        epochs_run,
        seconds,
        best_epoch,
        ", stopped early" if stopped_early else "",
        extra={"training_done": True},
    )
    forward = ForwardPass.from_keras(network)
    measures: dict[str, float] = {}
    threshold = None
    if schema.task != "regression":
        temperature, measures = calibrate(forward, validation_x, validation_labels, spec.calibration == "temperature")
        if spec.calibration == "temperature":
            network = with_calibration(network, temperature)
            forward = forward.calibrated(temperature)  # the NumPy twin of the calibrated Keras network
        if schema.task == "binary" and spec.threshold == "f1":
            threshold = calibration.best_threshold(forward(validation_x)[:, 0].astype("float64"), validation_labels)
            measures["threshold"] = threshold
    predictor = Predictor.fitted(network, preprocessing, forward, threshold)
    return TrainingResult(predictor, history, epochs_run, best_epoch, stopped_early, seconds, measures)


def calibrate(
    forward: ForwardPass, validation_x: np.ndarray, labels: np.ndarray, fit: bool = True
) -> tuple[float, dict[str, float]]:
    """The temperature that minimises the validation log loss (1 when not `fit`), with the validation log loss and
    expected calibration error before and after."""
    plain = forward.calibrated(1.0)
    logits = ForwardPass(plain.layers[:-1])(validation_x)
    activation = plain.layers[-1].activation  # type: ignore[union-attr]
    temperature = calibration.fit_temperature(logits, labels, activation) if fit else 1.0
    before = calibration.probabilities(logits, activation)
    after = calibration.probabilities(logits, activation, temperature)
    measures = {
        "temperature": temperature,
        "validation_log_loss_uncalibrated": calibration.log_loss(before, labels),
        "validation_log_loss": calibration.log_loss(after, labels),
        "validation_ece_uncalibrated": calibration.expected_calibration_error(before, labels),
        "validation_ece": calibration.expected_calibration_error(after, labels),
    }
    log.info(
        "calibrated on %d validation rows: temperature %.3f, log loss %.4f -> %.4f, ECE %.4f -> %.4f",
        len(labels),
        temperature,
        measures["validation_log_loss_uncalibrated"],
        measures["validation_log_loss"],
        measures["validation_ece_uncalibrated"],
        measures["validation_ece"],
    )
    return temperature, measures

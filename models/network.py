"""The network: dense layers, an output and loss that fit the task, and the optimizer that trains it."""

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import keras

from ..core.spec import NetworkSpec, Task


@dataclass(frozen=True)
class OutputHead:
    """What the last layer and the loss are for a task."""

    units: int
    activation: str
    loss: str
    metrics: tuple[str, ...]


def output_head(task: Task, n_classes: int | None = None) -> OutputHead:
    """Sigmoid + binary cross-entropy, softmax + categorical cross-entropy, or linear + MSE."""
    if task == "binary":
        return OutputHead(1, "sigmoid", "binary_crossentropy", ("accuracy", "auc"))
    if task == "multiclass":
        if not n_classes or n_classes < 3:
            raise ValueError(f"a multiclass network needs at least 3 classes, got {n_classes}")
        return OutputHead(n_classes, "softmax", "categorical_crossentropy", ("accuracy",))
    if task == "regression":
        return OutputHead(1, "linear", "mse", ("root_mean_squared_error",))
    raise ValueError(f"unknown task {task!r}")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow and make TensorFlow's kernels deterministic."""
    keras.utils.set_random_seed(seed)
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()


def make_optimizer(
    name: str, learning_rate: float, weight_decay: float = 0.0, schedule: str = "constant", steps: int = 1
) -> keras.optimizers.Optimizer:
    """The optimizer, with a cosine decay of the learning rate over `steps` when asked; AdamW decays weights."""
    rate: Any = learning_rate
    if schedule == "cosine":
        rate = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=max(1, steps))
    if name == "adamw":
        return keras.optimizers.AdamW(learning_rate=rate, weight_decay=weight_decay)
    optimizers = {
        "adam": keras.optimizers.Adam,
        "rmsprop": keras.optimizers.RMSprop,
        "sgd": keras.optimizers.SGD,
    }
    return optimizers[name](learning_rate=rate)


def build_network(
    n_inputs: int, task: Task, spec: NetworkSpec, n_classes: int | None = None, seed: int = 0
) -> keras.Model:
    """A compiled feed-forward network: Dense(+L2) → Dropout per hidden layer, then the task's head.

    Keras seeds every initializer and dropout layer left unseeded from Python's global `random`, which threads share:
    a tuning trial's weights depended on what built a network beside it. Here each gets a seed from a generator of its
    own, drawn in the same order Keras draws them, so a network is the one it was and the same beside others.
    """
    head = output_head(task, n_classes)
    rng = random.Random(seed)
    regularizer = keras.regularizers.L2(spec.l2) if spec.l2 > 0 else None
    inputs = keras.Input(shape=(n_inputs,), name="features")
    layer = inputs
    for index, units in enumerate(spec.hidden_units, start=1):
        layer = keras.layers.Dense(
            units,
            activation=spec.activation,
            kernel_initializer=keras.initializers.GlorotUniform(seed=rng.randint(1, 10**9)),
            kernel_regularizer=regularizer,
            name=f"hidden_{index}",
        )(layer)
        if spec.dropout > 0:
            layer = keras.layers.Dropout(spec.dropout, seed=rng.randint(1, 10**9), name=f"dropout_{index}")(layer)
    outputs = keras.layers.Dense(
        head.units,
        activation=head.activation,
        kernel_initializer=keras.initializers.GlorotUniform(seed=rng.randint(1, 10**9)),
        name="output",
    )(layer)
    network = keras.Model(inputs, outputs, name="neuroflow")
    network.compile(
        optimizer=make_optimizer(spec.optimizer, spec.learning_rate),
        loss=head.loss,
        metrics=list(head.metrics),
    )
    return network


@dataclass(frozen=True)
class TabularNetwork:
    """The tabular preset's two views of one set of weights: `network` answers (members averaged, through the
    calibrated head), `training` gives each member's logits, so each member is fitted on its own loss."""

    network: keras.Model
    training: keras.Model


def build_tabular_network(
    n_inputs: int,
    task: Task,
    spec: NetworkSpec,
    numeric: int,
    blocks: Sequence[tuple[int, int]],
    n_classes: int | None = None,
    seed: int = 0,
    steps_per_epoch: int = 1,
) -> TabularNetwork:
    """The tabular recipe: embedded inputs → `members` stacks of Dense(activation) → Dropout → logits, each member
    trained on its own loss (label-smoothed for classes), AdamW with a cosine schedule."""
    from .layers import CalibratedHead, MemberDense, TabularInput

    head = output_head(task, n_classes)
    rng = random.Random(seed)
    embedded = [block for block in blocks if block[1] - block[0] > spec.one_hot_max] if spec.category_embedding else []
    inputs = keras.Input(shape=(n_inputs,), name="features")
    layer = TabularInput(
        numeric,
        clip=spec.scaling == "robust",
        numeric_embedding=spec.numeric_embedding,
        frequencies=spec.frequencies,
        frequency_scale=spec.frequency_scale,
        blocks=embedded,
        category_embedding=spec.category_embedding,
        feature_scale=spec.feature_scale,
        seed=rng.randint(1, 10**9),
        name="tabular_input",
    )(inputs)
    for index, units in enumerate(spec.hidden_units, start=1):
        layer = MemberDense(
            units, spec.members, spec.activation, spec.l2, seed=rng.randint(1, 10**9), name=f"hidden_{index}"
        )(layer)
        if spec.dropout > 0:
            layer = keras.layers.Dropout(spec.dropout, seed=rng.randint(1, 10**9), name=f"dropout_{index}")(layer)
    logits = MemberDense(head.units, spec.members, "linear", seed=rng.randint(1, 10**9), name="output")(layer)
    answers = CalibratedHead(head.activation, name="head")(logits)
    network = keras.Model(inputs, answers, name="neuroflow_tabular")
    training = keras.Model(inputs, logits, name="neuroflow_tabular_members")
    training.compile(
        optimizer=make_optimizer(
            spec.optimizer, spec.learning_rate, spec.weight_decay, spec.schedule, spec.epochs * steps_per_epoch
        ),
        loss=MemberLoss(task, spec.label_smoothing),
    )
    return TabularNetwork(network, training)


class MemberLoss(keras.losses.Loss):
    """Each member's loss on its own logits ((rows, members, units)), averaged over members: one value a row.

    A `Loss` subclass rather than a plain function: Keras squeezes a plain function's (rows, members, 1) logits to
    (rows, members), which would pair every member with the wrong targets."""

    def __init__(self, task: Task, label_smoothing: float = 0.0) -> None:
        super().__init__(name=f"{task}_member_loss")
        self.task = task
        self.label_smoothing = label_smoothing

    def call(self, targets: Any, logits: Any) -> Any:
        from keras import ops

        targets = ops.reshape(ops.cast(targets, logits.dtype), (-1, 1, logits.shape[-1]))
        if self.task == "regression":
            return ops.mean(ops.square(logits - targets), axis=(1, 2))
        smoothing = self.label_smoothing
        if self.task == "binary":
            smoothed = targets * (1 - smoothing) + 0.5 * smoothing
            per = ops.maximum(logits, 0) - logits * smoothed + ops.log1p(ops.exp(-ops.abs(logits)))
            return ops.mean(per, axis=(1, 2))
        smoothed = targets * (1 - smoothing) + smoothing / logits.shape[-1]
        return ops.mean(-ops.sum(smoothed * ops.log_softmax(logits, axis=-1), axis=-1), axis=1)


def with_calibration(network: keras.Model, temperature: float) -> keras.Model:
    """The network answering through a head calibrated at `temperature`. A classic network's last dense layer gives
    its activation to a head of its own, so the saved Keras model answers as the NumPy pass does."""
    from .layers import CalibratedHead

    try:
        head = network.get_layer("head")
    except ValueError:
        head = None
    if head is not None:
        head.temperature.assign(temperature)
        return network
    output = network.get_layer("output")
    activation = output.get_config()["activation"]
    logits = keras.layers.Dense(output.units, name="output_logits")(output.input)
    calibrated = keras.Model(network.inputs, CalibratedHead(activation, temperature, name="head")(logits))
    calibrated.get_layer("output_logits").set_weights(output.get_weights())
    return calibrated

"""The network: dense layers, an output and loss that fit the task, and the optimizer that trains it."""

import random
from dataclasses import dataclass

import keras

from neuroflow.models.spec import NetworkSpec, Task


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


def make_optimizer(name: str, learning_rate: float) -> keras.optimizers.Optimizer:
    optimizers = {
        "adam": keras.optimizers.Adam,
        "rmsprop": keras.optimizers.RMSprop,
        "sgd": keras.optimizers.SGD,
    }
    return optimizers[name](learning_rate=learning_rate)


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

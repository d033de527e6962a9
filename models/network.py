"""The network: dense layers, an output and loss that fit the task, and the optimizer that trains it."""

from dataclasses import dataclass

import keras

from neuroflow.settings import NetworkSettings, Task


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


def build_network(n_inputs: int, task: Task, spec: NetworkSettings, n_classes: int | None = None) -> keras.Model:
    """A compiled feed-forward network: Dense(+L2) → Dropout per hidden layer, then the task's head."""
    head = output_head(task, n_classes)
    regularizer = keras.regularizers.L2(spec.l2) if spec.l2 > 0 else None
    inputs = keras.Input(shape=(n_inputs,), name="features")
    layer = inputs
    for index, units in enumerate(spec.hidden_units, start=1):
        layer = keras.layers.Dense(
            units, activation=spec.activation, kernel_regularizer=regularizer, name=f"hidden_{index}"
        )(layer)
        if spec.dropout > 0:
            layer = keras.layers.Dropout(spec.dropout, name=f"dropout_{index}")(layer)
    outputs = keras.layers.Dense(head.units, activation=head.activation, name="output")(layer)
    network = keras.Model(inputs, outputs, name="neuroflow")
    network.compile(
        optimizer=make_optimizer(spec.optimizer, spec.learning_rate),
        loss=head.loss,
        metrics=list(head.metrics),
    )
    return network

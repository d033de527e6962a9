"""What a model is asked to be, as plain types: the task and the network's shape and training recipe.

The application's settings translate into these; nothing in `neuroflow.models` reads the settings themselves, so a
logged model carries no configuration code. Light on purpose: the CLI imports it before anything heavy.
"""

from dataclasses import dataclass
from typing import Literal

Task = Literal["binary", "multiclass", "regression"]
TASKS: tuple[Task, ...] = ("binary", "multiclass", "regression")
Activation = Literal["relu", "tanh", "sigmoid"]
OptimizerName = Literal["adam", "rmsprop", "sgd"]
ClassWeight = Literal["none", "balanced"]


@dataclass(frozen=True)
class NetworkSpec:
    """The dense network and how it is trained: layer sizes, activation, regularisation, optimizer, early stopping."""

    hidden_units: tuple[int, ...] = (64, 32)
    activation: Activation = "relu"
    dropout: float = 0.0
    l2: float = 0.0
    optimizer: OptimizerName = "adam"
    learning_rate: float = 1e-3
    batch_size: int = 32
    epochs: int = 50
    patience: int = 10
    class_weight: ClassWeight = "none"

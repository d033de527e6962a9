"""What a model is asked to be, as plain types: the task and the network's shape and training recipe.

The application's settings translate into these; nothing in `neuroflow.models` reads the settings themselves, so a
logged model carries no configuration code. Light on purpose: the CLI imports it before anything heavy.
"""

from dataclasses import dataclass, fields, replace
from typing import Any, Literal

Task = Literal["binary", "multiclass", "regression"]
TASKS: tuple[Task, ...] = ("binary", "multiclass", "regression")
Preset = Literal["tabular", "classic"]
PRESETS: tuple[Preset, ...] = ("tabular", "classic")
Activation = Literal["relu", "tanh", "sigmoid", "selu", "silu", "mish"]
OptimizerName = Literal["adam", "adamw", "rmsprop", "sgd"]
ClassWeight = Literal["none", "balanced"]
Schedule = Literal["constant", "cosine"]
Scaling = Literal["standard", "robust"]
Calibration = Literal["temperature", "none"]
Threshold = Literal["0.5", "f1"]


@dataclass(frozen=True)
class NetworkSpec:
    """The network and how it is trained: layer sizes, activation, regularisation, optimizer, early stopping.

    The defaults are the seed's `classic` recipe; `preset_spec("tabular")` is the modern tabular recipe, whose
    ingredients (periodic number embeddings, category embeddings, an ensemble of members…) are the fields below
    `class_weight`, each off in `classic`."""

    hidden_units: tuple[int, ...] = (64, 32)
    activation: Activation = "relu"
    dropout: float = 0.0
    l2: float = 0.0
    optimizer: OptimizerName = "adam"
    learning_rate: float = 1e-3
    batch_size: int = 32  # 0: chosen from the number of training rows (about 16 steps an epoch, 32 to 256 rows)
    epochs: int = 50
    patience: int = 10
    class_weight: ClassWeight = "none"
    preset: Preset = "classic"
    scaling: Scaling = "standard"  # robust: median and quantile range, then a smooth clip to about ±3
    numeric_embedding: int = 0  # periodic embedding size per number (0: the number goes in as it is)
    frequencies: int = 8  # periodic frequencies per number
    frequency_scale: float = 0.1  # initial spread of the frequencies
    category_embedding: int = 0  # learned embedding size for text columns of more than `one_hot_max` values (0: off)
    one_hot_max: int = 8
    feature_scale: bool = False  # a learnable scale per input feature
    members: int = 1  # networks trained side by side as one ensemble, averaged
    weight_decay: float = 0.0  # decoupled weight decay (AdamW)
    label_smoothing: float = 0.0
    schedule: Schedule = "constant"  # cosine: the learning rate decays to 0 over `epochs`
    calibration: Calibration = "temperature"  # class probabilities calibrated on the validation rows
    threshold: Threshold = "0.5"  # binary: the positive class from 0.5, or from the cut-off best for validation F1

    def to_dict(self) -> dict[str, Any]:
        return {field.name: getattr(self, field.name) for field in fields(self)}


PRESET_DEFAULTS: dict[Preset, dict[str, Any]] = {
    "classic": {},
    "tabular": {
        "hidden_units": (128, 128),
        "activation": "selu",
        "dropout": 0.15,
        "optimizer": "adamw",
        "learning_rate": 2e-3,
        "batch_size": 0,
        "epochs": 40,
        "patience": 10,
        "scaling": "robust",
        "numeric_embedding": 8,
        "category_embedding": 8,
        "feature_scale": True,
        "members": 4,
        "weight_decay": 1e-2,
        "schedule": "cosine",
    },
}


def preset_spec(preset: Preset = "tabular", **overrides: Any) -> NetworkSpec:
    """The spec of a preset, with any field given here in place of the preset's own."""
    return replace(NetworkSpec(), preset=preset, **(PRESET_DEFAULTS[preset] | overrides))


def batch_size_for(spec: NetworkSpec, rows: int) -> int:
    """The batch size to train with: the spec's, or (0) one giving about 16 steps an epoch, from 32 to 256 rows."""
    if spec.batch_size > 0:
        return spec.batch_size
    return int(min(256, max(32, rows // 16)))

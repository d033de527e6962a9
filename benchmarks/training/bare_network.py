"""The network the bare scripts train: the default preset's (tabular), built by neuroflow's own builder so the
scripts and `neuroflow train` fit the same layers, or (`BARE_PRESET=classic`) the seed's 64-32 ReLU network."""

import math
import os
from typing import Any

import keras
import numpy as np


def build(n_inputs: int, rows: int, epochs: int, batch_size: int) -> tuple[Any, Any, int]:
    """(model to fit, model that answers, batch size) for binary targets of shape (rows, 1)."""
    if os.environ.get("BARE_PRESET", "tabular") == "classic":
        model = keras.Sequential(
            [
                keras.Input(shape=(n_inputs,)),
                keras.layers.Dense(64, activation="relu"),
                keras.layers.Dense(32, activation="relu"),
                keras.layers.Dense(1, activation="sigmoid"),
            ]
        )
        model.compile(optimizer="adam", loss="binary_crossentropy")
        return model, model, batch_size or 32
    from neuroflow.core.spec import batch_size_for, preset_spec
    from neuroflow.models.network import build_tabular_network

    spec = preset_spec("tabular", epochs=epochs, batch_size=batch_size)
    batch = batch_size_for(spec, rows)
    built = build_tabular_network(
        n_inputs, "binary", spec, n_inputs, [], seed=42, steps_per_epoch=math.ceil(rows / batch)
    )
    return built.training, built.network, batch


def robust_scale(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """The default preset's scaling: median and quartile range (the network clips smoothly); classic: standardise."""
    if os.environ.get("BARE_PRESET", "tabular") == "classic":
        centre, scale = train.mean(axis=0), train.std(axis=0)
    else:
        low, centre, high = np.percentile(train, [25, 50, 75], axis=0)
        scale = high - low
    scale = np.where(scale > 0, scale, 1.0)
    return [((values - centre) / scale).astype("float32") for values in (train, *others)]

"""The one inference function: raw rows in, labels and probabilities (or values) out.

The MLflow model, the prediction service, the benchmarks and the parity tests all call `Predictor`, so they cannot
disagree. Prediction runs in NumPy (`models.forward`); the Keras network is kept only to train and to check parity.
"""

import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd

from neuroflow.models.forward import FeatureEncoder, ForwardPass
from neuroflow.models.preprocessing import Preprocessing
from neuroflow.models.schema import DataSchema, coerce_features

NETWORK_FILE = "network.keras"
WEIGHTS_FILE = "weights.npz"
PREPROCESSING_FILE = "preprocessing.joblib"
SCHEMA_FILE = "schema.json"
# Models logged before neuroflow had one namespace pickled their preprocessing as models.schema, models.preprocessing.
LEGACY_MODULES = ("schema", "preprocessing", "forward", "inference")
PREDICTION_COLUMN = "prediction"
PROBABILITY_PREFIX = "probability_"


@contextmanager
def legacy_module_names() -> Iterator[None]:
    """While unpickling, let the old top-level names (`models.preprocessing`, …) of models logged before the
    `neuroflow.models` namespace find today's modules; nothing stays on `sys.modules` afterwards."""
    import neuroflow.models
    from neuroflow.models import forward, preprocessing, schema

    current = {"schema": schema, "preprocessing": preprocessing, "forward": forward, "inference": sys.modules[__name__]}
    aliases = {"models": neuroflow.models} | {f"models.{name}": current[name] for name in LEGACY_MODULES}
    added = [name for name in aliases if name not in sys.modules]
    sys.modules.update({name: aliases[name] for name in added})
    try:
        yield
    finally:
        for name in added:
            sys.modules.pop(name, None)


@dataclass(frozen=True)
class Prediction:
    """Predicted labels (classification) or values (regression), and class probabilities when classifying."""

    labels: np.ndarray
    probabilities: np.ndarray | None = None

    def to_frame(self, classes: tuple[str, ...] | None) -> pd.DataFrame:
        """The tabular form returned by the MLflow model: `prediction` plus one `probability_<class>` per class."""
        frame = pd.DataFrame({PREDICTION_COLUMN: self.labels})
        if self.probabilities is not None and classes:
            for index, label in enumerate(classes):
                frame[f"{PROBABILITY_PREFIX}{label}"] = self.probabilities[:, index]
        return frame

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, classes: tuple[str, ...] | None) -> "Prediction":
        """Read back what `to_frame` wrote (used to score a registered model)."""
        if not classes:
            return cls(frame[PREDICTION_COLUMN].to_numpy(dtype="float64"))
        columns = [f"{PROBABILITY_PREFIX}{label}" for label in classes]
        return cls(frame[PREDICTION_COLUMN].astype(str).to_numpy(), frame[columns].to_numpy(dtype="float64"))

    def to_records(self, classes: tuple[str, ...] | None) -> list[dict[str, Any]]:
        """One JSON-ready dict per row: `{"prediction": label, "probabilities": {class: p}}` or `{"prediction": x}`."""
        if self.probabilities is None or not classes:
            return [{PREDICTION_COLUMN: float(value)} for value in self.labels]
        return [
            {PREDICTION_COLUMN: str(label), "probabilities": dict(zip(classes, row.tolist(), strict=True))}
            for label, row in zip(self.labels, self.probabilities, strict=True)
        ]


class Predictor:
    """A trained network with the preprocessing and schema it was trained with."""

    def __init__(self, network: Any, preprocessing: Preprocessing, forward: ForwardPass | None = None) -> None:
        self.network = network  # the Keras model, or None when loaded for serving only
        self.preprocessing = preprocessing
        self.forward = forward if forward is not None else ForwardPass.from_keras(network)
        self.encoder = FeatureEncoder.from_transform(preprocessing.features)
        schema = preprocessing.schema
        self.classes = np.asarray(schema.classes or (), dtype=object)

    @property
    def schema(self) -> DataSchema:
        return self.preprocessing.schema

    def raw_outputs(self, matrix: np.ndarray) -> np.ndarray:
        """The network's forward pass on a preprocessed matrix."""
        return np.asarray(self.forward(matrix), dtype="float64")

    def keras_outputs(self, matrix: np.ndarray) -> np.ndarray:
        """The same through Keras (reference for parity; never on the serving path)."""
        if self.network is None:
            raise ValueError("this predictor was loaded without its Keras network")
        return np.asarray(self.network.predict_on_batch(matrix), dtype="float64")

    def encode(self, frame: pd.DataFrame) -> np.ndarray:
        """Raw feature columns to the network's input, in NumPy (equal to `preprocessing.transform`)."""
        coerced = coerce_features(frame, self.schema)
        numbers = coerced[list(self.encoder.numeric)].to_numpy(dtype="float64")
        labels = [
            [None if pd.isna(value) else value for value in coerced[name].tolist()] for name in self.encoder.categorical
        ]
        return self.encoder.encode(numbers, labels)

    def predict(self, frame: pd.DataFrame) -> Prediction:
        """Predict from a frame of raw feature values, exactly as the model was trained."""
        return self.decode(self.raw_outputs(self.encode(frame)))

    def predict_records(self, records: Sequence[Mapping[str, Any]]) -> Prediction:
        """Predict from validated records (the service's fast path: no pandas, no sklearn, no Keras)."""
        return self.decode(self.raw_outputs(self.encoder.encode_records(records)))

    def decode(self, outputs: np.ndarray) -> Prediction:
        """Turn network outputs into labels and probabilities, or regression values in the target's units."""
        task = self.schema.task
        if task == "regression":
            return Prediction(self.preprocessing.decode_regression(outputs[:, 0]))
        if task == "binary":
            positive = outputs[:, 0]
            probabilities = np.column_stack([1.0 - positive, positive])
        else:
            probabilities = outputs
        return Prediction(self.classes[np.argmax(probabilities, axis=1)].astype(str), probabilities)

    def save(self, directory: Path) -> dict[str, str]:
        """Write the network, its NumPy weights, the preprocessing and the schema; return them as MLflow artifacts."""
        directory.mkdir(parents=True, exist_ok=True)
        paths = {
            "network": directory / NETWORK_FILE,
            "weights": directory / WEIGHTS_FILE,
            "preprocessing": directory / PREPROCESSING_FILE,
            "schema": directory / SCHEMA_FILE,
        }
        if self.network is not None:
            self.network.save(paths["network"])
        else:
            del paths["network"]
        self.forward.save(paths["weights"])
        joblib.dump(self.preprocessing, paths["preprocessing"])
        self.schema.save(paths["schema"])
        return {name: str(path) for name, path in paths.items()}

    @classmethod
    def load(
        cls, network_path: str | Path | None, preprocessing_path: str | Path, weights_path: str | Path | None = None
    ) -> "Predictor":
        """Load what `save` wrote. With the NumPy weights and no network path, TensorFlow is never imported."""
        with legacy_module_names():
            preprocessing: Preprocessing = joblib.load(preprocessing_path)
        network = None
        if network_path is not None:
            import keras

            network = keras.models.load_model(network_path, compile=False)
        forward = ForwardPass.load(weights_path) if weights_path is not None else None
        if forward is None and network is None:
            raise ValueError("need the network or its NumPy weights to load a predictor")
        return cls(network, preprocessing, forward)

    @classmethod
    def from_directory(cls, directory: str | Path, with_network: bool = False) -> "Predictor":
        """Load from a model's artifact folder; models logged before the NumPy weights existed load through Keras."""
        directory = Path(directory)
        weights = directory / WEIGHTS_FILE
        network = directory / NETWORK_FILE
        use_network = with_network or not weights.is_file()
        return cls.load(
            network if use_network else None, directory / PREPROCESSING_FILE, weights if weights.is_file() else None
        )

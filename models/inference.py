"""The one inference function: raw rows in, labels and probabilities (or values) out.

The MLflow model, the tests and (later) the service all call `Predictor.predict`, so they cannot disagree.
"""

from dataclasses import dataclass
from pathlib import Path

import joblib
import keras
import numpy as np
import pandas as pd

from models.preprocessing import Preprocessing
from models.schema import DataSchema

NETWORK_FILE = "network.keras"
PREPROCESSING_FILE = "preprocessing.joblib"
SCHEMA_FILE = "schema.json"
PREDICTION_COLUMN = "prediction"
PROBABILITY_PREFIX = "probability_"


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


class Predictor:
    """A trained network with the preprocessing and schema it was trained with."""

    def __init__(self, network: keras.Model, preprocessing: Preprocessing) -> None:
        self.network = network
        self.preprocessing = preprocessing

    @property
    def schema(self) -> DataSchema:
        return self.preprocessing.schema

    def raw_outputs(self, matrix: np.ndarray) -> np.ndarray:
        """The network's forward pass on a preprocessed matrix (no Keras `predict`: it costs ~50 ms a call)."""
        return np.asarray(self.network.predict_on_batch(matrix), dtype="float64")

    def predict(self, frame: pd.DataFrame) -> Prediction:
        """Predict from raw feature values, exactly as the model was trained."""
        outputs = self.raw_outputs(self.preprocessing.transform(frame))
        return self.decode(outputs)

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
        classes = np.asarray(self.schema.classes, dtype=object)
        return Prediction(classes[np.argmax(probabilities, axis=1)].astype(str), probabilities)

    def save(self, directory: Path) -> dict[str, str]:
        """Write the network, preprocessing and schema; return them as MLflow artifacts (name → path)."""
        directory.mkdir(parents=True, exist_ok=True)
        paths = {
            "network": directory / NETWORK_FILE,
            "preprocessing": directory / PREPROCESSING_FILE,
            "schema": directory / SCHEMA_FILE,
        }
        self.network.save(paths["network"])
        joblib.dump(self.preprocessing, paths["preprocessing"])
        self.schema.save(paths["schema"])
        return {name: str(path) for name, path in paths.items()}

    @classmethod
    def load(cls, network_path: str | Path, preprocessing_path: str | Path) -> "Predictor":
        """Load what `save` wrote."""
        network = keras.models.load_model(network_path, compile=False)
        preprocessing: Preprocessing = joblib.load(preprocessing_path)
        return cls(network, preprocessing)

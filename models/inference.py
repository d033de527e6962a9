"""The one inference function: raw rows in, labels and probabilities (or values) out.

The MLflow model, the prediction service, the benchmarks and the parity tests all call `Predictor`, so they cannot
disagree. Prediction runs in NumPy (`models.forward`); the Keras network is kept only to train and to check parity.
"""

import hashlib
import json
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..core.errors import UntrustedModelError
from .forward import FeatureEncoder, ForwardPass
from .schema import DataSchema, category_label, coerce_features, expand_record_dates

if TYPE_CHECKING:  # sklearn costs about a second to import; serving never needs it
    from .preprocessing import Preprocessing

NETWORK_FILE = "network.keras"
WEIGHTS_FILE = "weights.npz"
PREPROCESSING_FILE = "preprocessing.json"
SCHEMA_FILE = "schema.json"
# What serving reads, all of it data: NumPy arrays (no pickles allowed) and JSON. Their SHA-256 go on the version.
SERVING_FILES = (WEIGHTS_FILE, PREPROCESSING_FILE, SCHEMA_FILE)
PREPROCESSING_FORMAT = 1
# Models logged before the data-only format pickled their preprocessing; loading one runs code from the store.
LEGACY_PREPROCESSING_FILE = "preprocessing.joblib"
# Models logged before neuroflow had one namespace pickled their preprocessing as models.schema, models.preprocessing.
LEGACY_MODULES = ("schema", "preprocessing", "forward", "inference")
PREDICTION_COLUMN = "prediction"
PROBABILITY_PREFIX = "probability_"


@contextmanager
def legacy_module_names() -> Iterator[None]:
    """While unpickling, let the old top-level names (`models.preprocessing`, …) of models logged before the
    `neuroflow.models` namespace find today's modules; nothing stays on `sys.modules` afterwards."""
    from .. import models
    from . import forward, preprocessing, schema

    current = {"schema": schema, "preprocessing": preprocessing, "forward": forward, "inference": sys.modules[__name__]}
    aliases = {"models": models} | {f"models.{name}": current[name] for name in LEGACY_MODULES}
    added = [name for name in aliases if name not in sys.modules]
    sys.modules.update({name: aliases[name] for name in added})
    try:
        yield
    finally:
        for name in added:
            sys.modules.pop(name, None)


@dataclass(frozen=True)
class Prediction:
    """Predicted labels (classification) or values (regression), and class probabilities when classifying.

    `labels` are the class labels as strings (the keys metrics and probabilities use); `values` are the same labels
    in the type of the training target (ints, booleans, text), which is what users are answered with."""

    labels: np.ndarray
    probabilities: np.ndarray | None = None
    values: np.ndarray | None = None

    @property
    def answers(self) -> np.ndarray:
        """What a user is answered with: the labels in the target's own type, or the regression values."""
        return self.values if self.values is not None else self.labels

    def to_frame(self, classes: tuple[str, ...] | None) -> pd.DataFrame:
        """The tabular form returned by the MLflow model: `prediction` plus one `probability_<class>` per class."""
        answers = pd.Series(self.answers)
        frame = pd.DataFrame({PREDICTION_COLUMN: answers.infer_objects() if answers.dtype == object else answers})
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
        labels = frame[PREDICTION_COLUMN].map(category_label).to_numpy(dtype=object)
        return cls(labels, frame[columns].to_numpy(dtype="float64"), frame[PREDICTION_COLUMN].to_numpy(dtype=object))

    def to_records(self, classes: tuple[str, ...] | None) -> list[dict[str, Any]]:
        """One JSON-ready dict per row: `{"prediction": label, "probabilities": {class: p}}` or `{"prediction": x}`."""
        if self.probabilities is None or not classes:
            return [{PREDICTION_COLUMN: float(value)} for value in self.labels]
        return [
            {PREDICTION_COLUMN: answer, "probabilities": dict(zip(classes, row.tolist(), strict=True))}
            for answer, row in zip(self.answers.tolist(), self.probabilities, strict=True)
        ]


class Predictor:
    """A trained network with the preprocessing and schema it was trained with.

    After training it also holds the fitted sklearn preprocessing and the Keras network; loaded for serving it holds
    only data (the encoder's arrays, the schema, the NumPy weights)."""

    def __init__(
        self,
        schema: DataSchema,
        encoder: FeatureEncoder,
        forward: ForwardPass,
        target: tuple[float, float] = (0.0, 1.0),
        network: Any = None,
        preprocessing: "Preprocessing | None" = None,
        threshold: float | None = None,
    ) -> None:
        if forward.input_width is not None and forward.input_width != encoder.width:
            raise ValueError(f"the weights expect {forward.input_width} inputs, the encoder makes {encoder.width}")
        if threshold is not None and not 0 < threshold < 1:
            raise ValueError(f"the decision threshold must lie between 0 and 1, got {threshold}")
        self.schema = schema
        self.encoder = encoder
        self.forward = forward
        self.target_mean, self.target_scale = target
        self.network = network  # the Keras model, or None when loaded for serving only
        self.preprocessing = preprocessing  # the fitted sklearn transform, after training only
        self.threshold = threshold  # binary: the positive class from this probability on (None: the larger one)
        self.classes = np.asarray(schema.classes or (), dtype=object)
        self.class_values = np.asarray(schema.class_values or (), dtype=object)

    @classmethod
    def fitted(
        cls,
        network: Any,
        preprocessing: "Preprocessing",
        forward: ForwardPass | None = None,
        threshold: float | None = None,
    ) -> "Predictor":
        """The predictor training ends with: the Keras network and the fitted preprocessing, read into plain data."""
        return cls(
            preprocessing.schema,
            FeatureEncoder.from_transform(preprocessing.features),
            forward if forward is not None else ForwardPass.from_keras(network),
            (preprocessing.target_mean, preprocessing.target_scale),
            network,
            preprocessing,
            threshold,
        )

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
            coerced[name].astype(object).where(coerced[name].notna(), None).to_numpy()
            for name in self.encoder.categorical
        ]
        return self.encoder.encode(numbers, labels)

    def predict(self, frame: pd.DataFrame) -> Prediction:
        """Predict from a frame of raw feature values, exactly as the model was trained."""
        return self.decode(self.raw_outputs(self.encode(frame)))

    def predict_records(self, records: Sequence[Mapping[str, Any]]) -> Prediction:
        """Predict from validated records (the service's fast path: no pandas, no sklearn, no Keras)."""
        return self.decode(self.raw_outputs(self.encode_records(records)))

    def encode_records(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Validated records to the network's input, each date first turned into its calendar numbers."""
        if self.schema.dates:
            records = expand_record_dates(records, self.schema.dates)
        return self.encoder.encode_records(records)

    def decode(self, outputs: np.ndarray) -> Prediction:
        """Turn network outputs into labels and probabilities, or regression values in the target's units."""
        task = self.schema.task
        if task == "regression":
            return Prediction(outputs[:, 0] * self.target_scale + self.target_mean)
        if task == "binary":
            positive = outputs[:, 0]
            probabilities = np.column_stack([1.0 - positive, positive])
        else:
            probabilities = outputs
        if task == "binary" and self.threshold is not None:
            chosen = (probabilities[:, 1] >= self.threshold).astype(np.int64)
        else:
            chosen = np.argmax(probabilities, axis=1)
        return Prediction(self.classes[chosen].astype(str), probabilities, self.class_values[chosen])

    def preprocessing_data(self) -> dict[str, Any]:
        """What `preprocessing.json` holds: the encoder's arrays and the target's scaling, as plain JSON."""
        return {
            "format": PREPROCESSING_FORMAT,
            "encoder": self.encoder.to_dict(),
            "target_mean": self.target_mean,
            "target_scale": self.target_scale,
            "threshold": self.threshold,
        }

    def save(self, directory: Path) -> dict[str, str]:
        """Write the network, its NumPy weights, the preprocessing (JSON) and the schema; return them as MLflow
        artifacts. The Keras file is for Keras users; neuroflow serves from the other three."""
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
        paths["preprocessing"].write_text(json.dumps(self.preprocessing_data(), allow_nan=False))
        self.schema.save(paths["schema"])
        return {name: str(path) for name, path in paths.items()}

    @classmethod
    def load(
        cls,
        weights_path: str | Path,
        preprocessing_path: str | Path,
        schema_path: str | Path,
        network_path: str | Path | None = None,
    ) -> "Predictor":
        """Load what `save` wrote, as data only: nothing is unpickled or imported. TensorFlow is imported only for
        `network_path`, and Keras then loads it in safe mode (no Python lambdas from the file)."""
        try:
            data = json.loads(Path(preprocessing_path).read_text())
            if data.get("format") != PREPROCESSING_FORMAT:
                raise ValueError(f"unknown preprocessing format {data.get('format')!r}")
            encoder = FeatureEncoder.from_dict(data["encoder"])
            target = (float(data["target_mean"]), float(data["target_scale"]))
            threshold = None if data.get("threshold") is None else float(data["threshold"])
            schema = DataSchema.from_dict(json.loads(Path(schema_path).read_text()))
            predictor = cls(schema, encoder, ForwardPass.load(weights_path), target, threshold=threshold)
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise UntrustedModelError(f"the model's files do not load as a neuroflow model: {error}") from None
        if network_path is not None:
            import keras

            from . import layers  # noqa: F401 (registers the tabular preset's layers with Keras)

            predictor.network = keras.models.load_model(network_path, compile=False, safe_mode=True)
        return predictor

    @classmethod
    def load_legacy(
        cls, preprocessing_path: str | Path, weights_path: str | Path | None, network_path: str | Path | None
    ) -> "Predictor":
        """A model logged before the data-only format: its preprocessing is a pickle, and unpickling runs whatever
        the file says. Only for a store the caller has said it trusts."""
        import joblib

        with legacy_module_names():
            preprocessing: Preprocessing = joblib.load(preprocessing_path)
        network = None
        if network_path is not None:
            import keras

            network = keras.models.load_model(network_path, compile=False, safe_mode=True)
        forward = ForwardPass.load(weights_path) if weights_path is not None else None
        if forward is None and network is None:
            raise ValueError("need the network or its NumPy weights to load a predictor")
        return cls.fitted(network, preprocessing, forward)

    @classmethod
    def from_directory(
        cls, directory: str | Path, with_network: bool = False, trust_legacy: bool = False
    ) -> "Predictor":
        """Load from a model's artifact folder. A model in the old pickled format loads only with `trust_legacy`;
        without it, UntrustedModelError says what to do."""
        directory = Path(directory)
        network = directory / NETWORK_FILE if with_network else None
        if (directory / PREPROCESSING_FILE).is_file():
            return cls.load(directory / WEIGHTS_FILE, directory / PREPROCESSING_FILE, directory / SCHEMA_FILE, network)
        if not (directory / LEGACY_PREPROCESSING_FILE).is_file():
            raise UntrustedModelError(f"{directory} holds no neuroflow model ({PREPROCESSING_FILE} is missing)")
        if not trust_legacy:
            raise UntrustedModelError(
                "this model was logged before neuroflow stored models as data: its preprocessing is a pickle, and "
                "loading it would run code from the artifact store. Retrain it (`neuroflow train`), or, if you trust "
                "the store, set NEUROFLOW_TRACKING__TRUST_ARTIFACT_STORE=true to load it the old way"
            )
        weights = directory / WEIGHTS_FILE
        use_network = with_network or not weights.is_file()
        return cls.load_legacy(
            directory / LEGACY_PREPROCESSING_FILE,
            weights if weights.is_file() else None,
            directory / NETWORK_FILE if use_network else None,
        )


def file_digests(directory: str | Path, names: Sequence[str] = SERVING_FILES) -> dict[str, str]:
    """SHA-256 of each of a model's files that exists in `directory`."""
    digests = {}
    for name in names:
        path = Path(directory) / name
        if path.is_file():
            digests[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digests


def check_digests(directory: str | Path, expected: Mapping[str, str]) -> None:
    """Refuse (UntrustedModelError) a model folder whose files are not the ones recorded when it was registered."""
    actual = file_digests(directory, tuple(expected))
    wrong = sorted(name for name, digest in expected.items() if actual.get(name) != digest)
    missing = [name for name in SERVING_FILES if name not in expected]
    if wrong or missing:
        problem = (
            f"changed since registration: {', '.join(wrong)}"
            if wrong
            else f"no digest recorded for {', '.join(missing)}"
        )
        raise UntrustedModelError(f"the model's files do not match the SHA-256 recorded on the version ({problem})")

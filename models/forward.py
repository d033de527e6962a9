"""The trained model as plain NumPy: the fitted preprocessing and the network's forward pass, with no Keras or sklearn
call on the prediction path.

Keras' `model.predict` costs about 50 ms a call and sklearn's `ColumnTransformer.transform` about 0.7 ms on one row;
the same arithmetic in NumPy takes tens of microseconds. Parity with both is held by tests (≤ 1e-5).
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from neuroflow.models.schema import MISSING_CATEGORY, category_label

VECTOR_ROWS = 64  # from this many rows on, categories are one-hot encoded with NumPy rather than row by row

if TYPE_CHECKING:  # sklearn costs about a second to import; serving never needs it
    from sklearn.compose import ColumnTransformer


def _sigmoid(values: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * values))  # exact, and no overflow for large negative inputs


def _softmax(values: np.ndarray) -> np.ndarray:
    shifted = np.exp(values - values.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "relu": lambda values: np.maximum(values, 0.0),
    "tanh": np.tanh,
    "sigmoid": _sigmoid,
    "softmax": _softmax,
    "linear": lambda values: values,
}


@dataclass(frozen=True)
class DenseLayer:
    """One dense layer: outputs = activation(inputs @ kernel + bias)."""

    kernel: np.ndarray
    bias: np.ndarray
    activation: str


@dataclass(frozen=True)
class ForwardPass:
    """A trained stack of dense layers (dropout is the identity at inference), evaluated in float32 like Keras."""

    layers: tuple[DenseLayer, ...]

    def __call__(self, matrix: np.ndarray) -> np.ndarray:
        values = np.asarray(matrix, dtype=np.float32)
        for layer in self.layers:
            values = ACTIVATIONS[layer.activation](values @ layer.kernel + layer.bias)
        return values

    @classmethod
    def from_keras(cls, network: Any) -> "ForwardPass":
        """Read the weights of a Keras network built by `models.network.build_network`."""
        layers = []
        for layer in network.layers:
            kind = type(layer).__name__
            if kind in ("InputLayer", "Dropout"):
                continue
            if kind != "Dense":
                raise ValueError(f"cannot run layer {layer.name!r} ({kind}) outside Keras")
            activation = layer.get_config()["activation"]
            if activation not in ACTIVATIONS:
                raise ValueError(f"layer {layer.name!r} uses activation {activation!r}, which is not supported")
            kernel, bias = (np.asarray(weight, dtype=np.float32) for weight in layer.get_weights())
            layers.append(DenseLayer(kernel, bias, activation))
        return cls(tuple(layers))

    def save(self, path: Path) -> Path:
        arrays: dict[str, np.ndarray] = {}
        for index, layer in enumerate(self.layers):
            arrays[f"kernel_{index}"] = layer.kernel
            arrays[f"bias_{index}"] = layer.bias
        arrays["activations"] = np.array([layer.activation for layer in self.layers])
        with open(path, "wb") as handle:
            np.savez(handle, **arrays)  # type: ignore[arg-type]
        return path

    @classmethod
    def load(cls, path: str | Path) -> "ForwardPass":
        with np.load(path, allow_pickle=False) as arrays:
            activations = [str(name) for name in arrays["activations"]]
            unknown = sorted(set(activations) - set(ACTIVATIONS))
            if unknown:
                raise ValueError(f"the weights name activation(s) neuroflow does not run: {', '.join(unknown)}")
            return cls(
                tuple(
                    DenseLayer(arrays[f"kernel_{index}"], arrays[f"bias_{index}"], activation)
                    for index, activation in enumerate(activations)
                )
            )


@dataclass(frozen=True)
class FeatureEncoder:
    """The fitted ColumnTransformer's arithmetic: median-impute and standardise numbers, one-hot encode categories.

    A category never seen in training goes to the column's "unknown" bucket (where categories rarer than
    `min_frequency` went in training), or to all zeros when the column has no such bucket, as sklearn's OneHotEncoder
    does with `handle_unknown="infrequent_if_exist"` (and with "ignore", for models trained before the bucket).
    """

    numeric: tuple[str, ...]
    medians: np.ndarray
    means: np.ndarray
    scales: np.ndarray
    categorical: tuple[str, ...]
    positions: tuple[Mapping[str, int], ...]  # per categorical column: label → output column
    width: int
    unknown: tuple[int | None, ...] = ()  # per categorical column: the output column of unseen labels, if any

    @classmethod
    def from_transform(cls, transform: "ColumnTransformer") -> "FeatureEncoder":
        numeric: list[str] = []
        medians = means = scales = np.zeros(0)
        categorical: list[str] = []
        positions: list[dict[str, int]] = []
        unknown: list[int | None] = []
        offset = 0
        for name, fitted, columns in transform.transformers_:
            if name == "numeric":
                imputer, scaler = fitted.named_steps["impute"], fitted.named_steps["scale"]
                kept = ~np.isnan(imputer.statistics_)  # sklearn drops a column that was empty in training
                numeric = [column for column, keep in zip(columns, kept, strict=True) if keep]
                medians = imputer.statistics_[kept].astype("float64")
                means = np.asarray(scaler.mean_, dtype="float64")
                scales = np.asarray(scaler.scale_, dtype="float64")
                offset += len(numeric)
            elif name == "categorical":
                categorical = list(columns)
                encoder = fitted.named_steps["one_hot"]
                rare_per_column = getattr(encoder, "infrequent_categories_", None) or [None] * len(columns)
                for categories, rare in zip(encoder.categories_, rare_per_column, strict=True):
                    rare_labels = {str(label) for label in rare} if rare is not None else set()
                    frequent = [str(label) for label in categories if str(label) not in rare_labels]
                    mapping = {label: offset + index for index, label in enumerate(frequent)}
                    bucket = offset + len(frequent) if rare_labels else None
                    mapping |= dict.fromkeys(rare_labels, bucket) if bucket is not None else {}
                    positions.append(mapping)
                    unknown.append(bucket if encoder.handle_unknown == "infrequent_if_exist" else None)
                    offset += len(frequent) + (1 if rare_labels else 0)
            elif name != "remainder":
                raise ValueError(f"unexpected transformer {name!r} in the fitted preprocessing")
        return cls(tuple(numeric), medians, means, scales, tuple(categorical), tuple(positions), offset, tuple(unknown))

    def to_dict(self) -> dict[str, Any]:
        """The encoder as plain JSON data (no pickle): it is what the model's `preprocessing.json` holds."""
        return {
            "numeric": list(self.numeric),
            "medians": self.medians.tolist(),
            "means": self.means.tolist(),
            "scales": self.scales.tolist(),
            "categorical": list(self.categorical),
            "positions": [dict(mapping) for mapping in self.positions],
            "width": self.width,
            "unknown": list(self.unknown),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "FeatureEncoder":
        """Read what `to_dict` wrote, checking shapes and types so a damaged file fails here, not mid-request."""
        numeric = tuple(str(name) for name in data["numeric"])
        arrays = [np.asarray(data[key], dtype="float64") for key in ("medians", "means", "scales")]
        if any(array.shape != (len(numeric),) for array in arrays):
            raise ValueError("the numeric statistics do not match the numeric columns")
        width = int(data["width"])
        positions = tuple(
            {str(label): int(column) for label, column in mapping.items()} for mapping in data["positions"]
        )
        unknown = tuple(None if column is None else int(column) for column in data["unknown"])
        categorical = tuple(str(name) for name in data["categorical"])
        if len(positions) != len(categorical) or len(unknown) not in (0, len(categorical)):
            raise ValueError("the category lists do not match the categorical columns")
        used = [column for mapping in positions for column in mapping.values()] + [u for u in unknown if u is not None]
        if any(not len(numeric) <= column < width for column in used):
            raise ValueError("a category points outside the network's input")
        return cls(numeric, arrays[0], arrays[1], arrays[2], categorical, positions, width, unknown)

    def encode(self, numbers: np.ndarray, labels: Sequence[Sequence[Any]]) -> np.ndarray:
        """Numbers: (rows, numeric columns) with NaN for missing. Labels: one sequence per categorical column."""
        rows = numbers.shape[0] if self.numeric else (len(labels[0]) if labels else 0)
        matrix = np.zeros((rows, self.width), dtype=np.float32)
        if self.numeric:
            filled = np.where(np.isnan(numbers), self.medians, numbers)
            matrix[:, : len(self.numeric)] = (filled - self.means) / self.scales
        unknown = self.unknown or (None,) * len(self.positions)
        for column_labels, positions, bucket in zip(labels, self.positions, unknown, strict=True):
            if rows < VECTOR_ROWS:  # a request's few records: a loop is cheaper than NumPy's set-up
                for row, label in enumerate(column_labels):
                    position = positions.get(MISSING_CATEGORY if label is None else label, bucket)
                    if position is not None:
                        matrix[row, position] = 1.0
                continue
            column = np.asarray(column_labels, dtype=object)
            column = np.where(column == None, MISSING_CATEGORY, column).astype(str)  # noqa: E711 (elementwise)
            uniques, inverse = np.unique(column, return_inverse=True)
            found = [positions.get(label, bucket) for label in uniques.tolist()]
            lookup = np.array([-1 if position is None else position for position in found], dtype=np.int64)
            chosen = lookup[inverse]
            hit = np.flatnonzero(chosen >= 0)
            matrix[hit, chosen[hit]] = 1.0
        return matrix

    def encode_records(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Validated request records (numbers, labels, booleans or None) to the network's input."""
        numbers = np.array([[record[name] for name in self.numeric] for record in records], dtype="float64")
        numbers = numbers.reshape(len(records), len(self.numeric))
        labels = [
            [None if record[name] is None else category_label(record[name]) for record in records]
            for name in self.categorical
        ]
        return self.encode(numbers, labels)

"""The trained model as plain NumPy: the fitted preprocessing and the network's forward pass, with no Keras or sklearn
call on the prediction path.

Keras' `model.predict` costs about 50 ms a call and sklearn's `ColumnTransformer.transform` about 0.7 ms on one row;
the same arithmetic in NumPy takes tens of microseconds. Parity with both is held by tests (≤ 1e-5).
"""

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .schema import MISSING_CATEGORY, category_label

VECTOR_ROWS = 64  # from this many rows on, categories are one-hot encoded with NumPy rather than row by row

if TYPE_CHECKING:  # sklearn costs about a second to import; serving never needs it
    from sklearn.compose import ColumnTransformer


def _sigmoid(values: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * values))  # exact, and no overflow for large negative inputs


def _softmax(values: np.ndarray) -> np.ndarray:
    shifted = np.exp(values - values.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def _selu(values: np.ndarray) -> np.ndarray:
    negative = SELU_ALPHA * np.expm1(np.minimum(values, 0.0))
    return SELU_SCALE * np.where(values > 0, values, negative)


def _softplus(values: np.ndarray) -> np.ndarray:
    return np.log1p(np.exp(-np.abs(values))) + np.maximum(values, 0.0)


SELU_ALPHA = 1.6732632423543772
SELU_SCALE = 1.0507009873554805
CLIP_AT = 3.0  # the smooth clip keeps a robustly scaled number within about ±3

ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "relu": lambda values: np.maximum(values, 0.0),
    "tanh": np.tanh,
    "sigmoid": _sigmoid,
    "softmax": _softmax,
    "linear": lambda values: values,
    "selu": _selu,
    "silu": lambda values: values * _sigmoid(values),
    "mish": lambda values: values * np.tanh(_softplus(values)),
}


def smooth_clip(values: np.ndarray) -> np.ndarray:
    """x / sqrt(1 + (x/3)²): the identity near 0, bounded by ±3 for outliers (RealMLP's smooth clipping)."""
    return values / np.sqrt(1.0 + np.square(values / CLIP_AT))


@dataclass(frozen=True)
class DenseLayer:
    """One dense layer: outputs = activation(inputs @ kernel + bias)."""

    kernel: np.ndarray
    bias: np.ndarray
    activation: str

    kind = "dense"

    @property
    def input_width(self) -> int:
        return int(self.kernel.shape[0])

    def __call__(self, values: np.ndarray) -> np.ndarray:
        return ACTIVATIONS[self.activation](values @ self.kernel + self.bias)

    def arrays(self) -> dict[str, np.ndarray]:
        return {"kernel": self.kernel, "bias": self.bias}

    def config(self) -> dict[str, Any]:
        return {"activation": self.activation}

    @classmethod
    def restore(cls, arrays: Mapping[str, np.ndarray], config: Mapping[str, Any]) -> "DenseLayer":
        return cls(arrays["kernel"], arrays["bias"], _known_activation(config["activation"]))


@dataclass(frozen=True)
class InputEmbedding:
    """The tabular preset's input: numbers smoothly clipped and each expanded by a periodic embedding
    (cos/sin of learned frequencies, then a small dense layer per number), one-hot blocks of many-valued text columns
    projected to learned embeddings, and a learned scale per resulting feature.

    The input matrix holds the numbers in its first `numeric` columns, then the categories' one-hot blocks. The
    output is the numbers, their embeddings (number by number), then the category columns in order, each embedded
    block in place of its one-hot columns."""

    input_width: int
    numeric: int
    clip: bool
    frequencies: np.ndarray | None = None  # (numbers, k)
    periodic_kernel: np.ndarray | None = None  # (numbers, 2k, d)
    periodic_bias: np.ndarray | None = None  # (numbers, d)
    blocks: tuple[tuple[int, int], ...] = ()  # (start, stop) of each embedded one-hot block
    embeddings: tuple[np.ndarray, ...] = ()  # per block: (stop - start, size)
    scale: np.ndarray | None = None  # (output width,)

    kind = "input_embedding"

    def __call__(self, values: np.ndarray) -> np.ndarray:
        numbers = values[:, : self.numeric]
        if self.clip:
            numbers = smooth_clip(numbers)
        parts = [numbers]
        if self.frequencies is not None and self.periodic_kernel is not None and self.periodic_bias is not None:
            angles = np.float32(2 * np.pi) * numbers[:, :, None] * self.frequencies[None, :, :]
            periodic = np.concatenate([np.cos(angles), np.sin(angles)], axis=-1)  # (rows, numbers, 2k)
            # per number: (rows, 2k) @ (2k, d), batched over numbers (matmul is ~10x einsum's speed here)
            embedded = np.matmul(periodic.transpose(1, 0, 2), self.periodic_kernel).transpose(1, 0, 2)
            embedded = embedded + self.periodic_bias
            parts.append(np.maximum(embedded, 0.0).reshape(len(values), -1))
        start = self.numeric
        for (block_start, block_stop), table in zip(self.blocks, self.embeddings, strict=True):
            parts.append(values[:, start:block_start])
            parts.append(values[:, block_start:block_stop] @ table)
            start = block_stop
        parts.append(values[:, start:])
        joined = np.concatenate(parts, axis=1)
        return joined * self.scale if self.scale is not None else joined

    def arrays(self) -> dict[str, np.ndarray]:
        arrays = {f"embedding_{index}": table for index, table in enumerate(self.embeddings)}
        optional = {
            "frequencies": self.frequencies,
            "periodic_kernel": self.periodic_kernel,
            "periodic_bias": self.periodic_bias,
            "scale": self.scale,
        }
        return arrays | {name: array for name, array in optional.items() if array is not None}

    def config(self) -> dict[str, Any]:
        return {
            "input_width": self.input_width,
            "numeric": self.numeric,
            "clip": self.clip,
            "blocks": [list(block) for block in self.blocks],
        }

    @classmethod
    def restore(cls, arrays: Mapping[str, np.ndarray], config: Mapping[str, Any]) -> "InputEmbedding":
        blocks = tuple((int(start), int(stop)) for start, stop in config["blocks"])
        embeddings = tuple(arrays[f"embedding_{index}"] for index in range(len(blocks)))
        if any(table.shape[0] != stop - start for (start, stop), table in zip(blocks, embeddings, strict=True)):
            raise ValueError("an embedding table does not match its one-hot block")
        return cls(
            int(config["input_width"]),
            int(config["numeric"]),
            bool(config["clip"]),
            arrays.get("frequencies"),
            arrays.get("periodic_kernel"),
            arrays.get("periodic_bias"),
            blocks,
            embeddings,
            arrays.get("scale"),
        )


@dataclass(frozen=True)
class EnsembleDense(DenseLayer):
    """One dense layer of each of k ensemble members at once: (rows, in) or (k, rows, in) in, (k, rows, out) out;
    the kernel is (k, in, out) and the bias (k, out)."""

    kind = "ensemble_dense"

    @property
    def input_width(self) -> int:
        return int(self.kernel.shape[1])

    def __call__(self, values: np.ndarray) -> np.ndarray:
        return ACTIVATIONS[self.activation](np.matmul(values, self.kernel) + self.bias[:, None, :])


@dataclass(frozen=True)
class OutputHead:
    """Logits to answers: divided by the calibration temperature, through the task's activation, averaged over the
    ensemble's members when there are several ((k, rows, units) in, (rows, units) out)."""

    activation: str
    temperature: float = 1.0

    kind = "head"

    def __call__(self, values: np.ndarray) -> np.ndarray:
        answers = ACTIVATIONS[self.activation](values / np.float32(self.temperature))
        return answers.mean(axis=0) if answers.ndim == 3 else answers

    def arrays(self) -> dict[str, np.ndarray]:
        return {}

    def config(self) -> dict[str, Any]:
        return {"activation": self.activation, "temperature": self.temperature}

    @classmethod
    def restore(cls, arrays: Mapping[str, np.ndarray], config: Mapping[str, Any]) -> "OutputHead":
        temperature = float(config["temperature"])
        if not 0 < temperature < float("inf"):
            raise ValueError(f"the calibration temperature must be a positive number, got {temperature}")
        return cls(_known_activation(config["activation"]), temperature)


Layer = DenseLayer | InputEmbedding | EnsembleDense | OutputHead
LAYER_KINDS: dict[str, Any] = {kind.kind: kind for kind in (DenseLayer, InputEmbedding, EnsembleDense, OutputHead)}
WEIGHTS_FORMAT = 2  # format 1 (no `kinds` array): dense layers only


def _known_activation(name: Any) -> str:
    if str(name) not in ACTIVATIONS:
        raise ValueError(f"the weights name activation {name!r}, which neuroflow does not run")
    return str(name)


@dataclass(frozen=True)
class ForwardPass:
    """A trained stack of layers (dropout is the identity at inference), evaluated in float32 like Keras."""

    layers: tuple[Layer, ...]

    def __call__(self, matrix: np.ndarray) -> np.ndarray:
        values = np.asarray(matrix, dtype=np.float32)
        for layer in self.layers:
            values = layer(values)
        return values

    @property
    def input_width(self) -> int | None:
        """How many input columns the first layer reads (None for an empty pass)."""
        first = next((layer for layer in self.layers if not isinstance(layer, OutputHead)), None)
        return None if first is None else first.input_width

    @property
    def temperature(self) -> float:
        heads = [layer for layer in self.layers if isinstance(layer, OutputHead)]
        return heads[-1].temperature if heads else 1.0

    def calibrated(self, temperature: float) -> "ForwardPass":
        """The same pass with its output divided by `temperature` before the task's activation (a classic network's
        last dense layer gives its activation to a head)."""
        layers = list(self.layers)
        if layers and isinstance(layers[-1], OutputHead):
            layers[-1] = OutputHead(layers[-1].activation, float(temperature))
        elif layers and type(layers[-1]) is DenseLayer:
            last = layers[-1]
            layers[-1] = DenseLayer(last.kernel, last.bias, "linear")
            layers.append(OutputHead(last.activation, float(temperature)))
        else:
            raise ValueError("this forward pass has no output layer to calibrate")
        return ForwardPass(tuple(layers))

    @classmethod
    def from_keras(cls, network: Any) -> "ForwardPass":
        """Read the weights of a Keras network built by `models.network.build_network`."""
        layers: list[Layer] = []
        for layer in network.layers:
            kind = type(layer).__name__
            if kind in ("InputLayer", "Dropout"):
                continue
            if hasattr(layer, "numpy_twin"):  # neuroflow's own Keras layers know their NumPy form
                layers.append(layer.numpy_twin())
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
        arrays: dict[str, np.ndarray] = {
            "format": np.array(WEIGHTS_FORMAT),
            "kinds": np.array([layer.kind for layer in self.layers]),
        }
        for index, layer in enumerate(self.layers):
            arrays |= {f"{index}.{name}": np.asarray(array) for name, array in layer.arrays().items()}
            arrays[f"{index}.config"] = np.array(json.dumps(layer.config()))
        with open(path, "wb") as handle:
            np.savez(handle, **arrays)  # type: ignore[arg-type]
        return path

    @classmethod
    def load(cls, path: str | Path) -> "ForwardPass":
        with np.load(path, allow_pickle=False) as arrays:
            if "kinds" not in arrays:  # format 1: dense layers only
                activations = [_known_activation(name) for name in arrays["activations"]]
                return cls(
                    tuple(
                        DenseLayer(arrays[f"kernel_{index}"], arrays[f"bias_{index}"], activation)
                        for index, activation in enumerate(activations)
                    )
                )
            if int(arrays["format"]) != WEIGHTS_FORMAT:
                raise ValueError(f"unknown weights format {int(arrays['format'])}")
            layers = []
            for index, kind in enumerate(str(name) for name in arrays["kinds"]):
                if kind not in LAYER_KINDS:
                    raise ValueError(f"the weights name a layer kind neuroflow does not run: {kind!r}")
                prefix = f"{index}."
                own = {
                    key.removeprefix(prefix): arrays[key]
                    for key in arrays.files
                    if key.startswith(prefix) and key != f"{index}.config"
                }
                layers.append(LAYER_KINDS[kind].restore(own, json.loads(str(arrays[f"{index}.config"]))))
            return cls(tuple(layers))


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
                # StandardScaler centres on the mean, RobustScaler (the tabular preset) on the median
                centre = scaler.mean_ if hasattr(scaler, "mean_") else scaler.center_
                means = np.asarray(centre, dtype="float64")
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

    def category_blocks(self) -> list[tuple[int, int]]:
        """Each text column's one-hot columns as (start, stop), in order."""
        unknown = self.unknown or (None,) * len(self.positions)
        blocks = []
        for mapping, bucket in zip(self.positions, unknown, strict=True):
            columns = set(mapping.values()) | ({bucket} if bucket is not None else set())
            if columns:
                blocks.append((min(columns), max(columns) + 1))
        return blocks

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

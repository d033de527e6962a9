"""The tabular preset's Keras layers, each with its NumPy twin in `models.forward` (held to it within 1e-5).

Registered with Keras' serialization under the package `neuroflow`, so `network.keras` loads in safe mode once this
module is imported; nothing here runs on the serving path.
"""

import math
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

from .forward import CLIP_AT, EnsembleDense, InputEmbedding, OutputHead


def _numpy(weight: Any) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(weight), dtype=np.float32)


@keras.saving.register_keras_serializable(package="neuroflow")
class TabularInput(keras.layers.Layer):
    """Numbers smoothly clipped and expanded by periodic embeddings; many-valued categories' one-hot blocks
    projected to embeddings; a learned scale per feature. See `forward.InputEmbedding` for the layout."""

    def __init__(
        self,
        numeric: int,
        clip: bool = True,
        numeric_embedding: int = 8,
        frequencies: int = 8,
        frequency_scale: float = 0.1,
        blocks: Sequence[Sequence[int]] = (),
        category_embedding: int = 8,
        feature_scale: bool = True,
        seed: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.numeric = int(numeric)
        self.clip = bool(clip)
        self.numeric_embedding = int(numeric_embedding)
        self.n_frequencies = int(frequencies)
        self.frequency_scale = float(frequency_scale)
        self.blocks = [tuple(int(part) for part in block) for block in blocks]
        self.category_embedding = int(category_embedding)
        self.use_scale = bool(feature_scale)
        self.seed = int(seed)

    def build(self, input_shape: Any) -> None:
        self.input_width = int(input_shape[-1])
        seeds = np.random.default_rng(self.seed).integers(1, 10**9, size=3 + len(self.blocks)).tolist()
        numbers, k, size = self.numeric, self.n_frequencies, self.numeric_embedding
        self.periodic = size > 0 and numbers > 0
        if self.periodic:
            limit = 1 / math.sqrt(2 * k)
            self.frequencies = self.add_weight(
                (numbers, k),
                keras.initializers.RandomNormal(stddev=self.frequency_scale, seed=seeds[0]),
                name="frequencies",
            )
            self.periodic_kernel = self.add_weight(
                (numbers, 2 * k, size),
                keras.initializers.RandomUniform(-limit, limit, seed=seeds[1]),
                name="periodic_kernel",
            )
            self.periodic_bias = self.add_weight(
                (numbers, size), keras.initializers.RandomUniform(-limit, limit, seed=seeds[2]), name="periodic_bias"
            )
        self.tables = [
            self.add_weight(
                (stop - start, self.category_embedding),
                keras.initializers.RandomNormal(stddev=0.5, seed=seeds[3 + index]),
                name=f"embedding_{index}",
            )
            for index, (start, stop) in enumerate(self.blocks)
        ]
        self.output_width = self._output_width()
        if self.use_scale:
            self.scale = self.add_weight((self.output_width,), "ones", name="scale")

    def _output_width(self) -> int:
        width = self.input_width + (self.numeric * self.numeric_embedding if self.periodic else 0)
        return width + sum(self.category_embedding - (stop - start) for start, stop in self.blocks)

    def call(self, values: Any) -> Any:
        numbers = values[:, : self.numeric]
        if self.clip:
            numbers = numbers / ops.sqrt(1.0 + ops.square(numbers / CLIP_AT))
        parts = [numbers]
        if self.periodic:
            angles = (2 * math.pi) * ops.expand_dims(numbers, -1) * ops.expand_dims(self.frequencies, 0)
            periodic = ops.concatenate([ops.cos(angles), ops.sin(angles)], axis=-1)
            embedded = ops.einsum("rnf,nfd->rnd", periodic, self.periodic_kernel) + self.periodic_bias
            parts.append(ops.reshape(ops.relu(embedded), (-1, self.numeric * self.numeric_embedding)))
        start = self.numeric
        for (block_start, block_stop), table in zip(self.blocks, self.tables, strict=True):
            parts.append(values[:, start:block_start])
            parts.append(ops.matmul(values[:, block_start:block_stop], table))
            start = block_stop
        parts.append(values[:, start:])
        joined = ops.concatenate(parts, axis=1)
        return joined * self.scale if self.use_scale else joined

    def compute_output_shape(self, input_shape: Any) -> tuple[Any, int]:
        return (input_shape[0], self.output_width)

    def get_config(self) -> dict[str, Any]:
        return super().get_config() | {
            "numeric": self.numeric,
            "clip": self.clip,
            "numeric_embedding": self.numeric_embedding,
            "frequencies": self.n_frequencies,
            "frequency_scale": self.frequency_scale,
            "blocks": [list(block) for block in self.blocks],
            "category_embedding": self.category_embedding,
            "feature_scale": self.use_scale,
            "seed": self.seed,
        }

    def numpy_twin(self) -> InputEmbedding:
        return InputEmbedding(
            self.input_width,
            self.numeric,
            self.clip,
            _numpy(self.frequencies) if self.periodic else None,
            _numpy(self.periodic_kernel) if self.periodic else None,
            _numpy(self.periodic_bias) if self.periodic else None,
            tuple((start, stop) for start, stop in self.blocks),
            tuple(_numpy(table) for table in self.tables),
            _numpy(self.scale) if self.use_scale else None,
        )


@keras.saving.register_keras_serializable(package="neuroflow")
class MemberDense(keras.layers.Layer):
    """A dense layer for each of `members` networks at once: (rows, in) or (rows, members, in) in,
    (rows, members, units) out. Each member's kernel starts from its own Glorot-uniform draw."""

    def __init__(
        self, units: int, members: int = 1, activation: str = "linear", l2: float = 0.0, seed: int = 0, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.units = int(units)
        self.members = int(members)
        self.activation_name = str(activation)
        self.activation = keras.activations.get(self.activation_name)
        self.l2 = float(l2)
        self.seed = int(seed)

    def build(self, input_shape: Any) -> None:
        width = int(input_shape[-1])
        limit = math.sqrt(6 / (width + self.units))
        self.kernel = self.add_weight(
            (self.members, width, self.units),
            keras.initializers.RandomUniform(-limit, limit, seed=self.seed),
            name="kernel",
            regularizer=keras.regularizers.L2(self.l2) if self.l2 > 0 else None,
        )
        self.bias = self.add_weight((self.members, self.units), "zeros", name="bias")

    def call(self, values: Any) -> Any:
        pattern = "ri,mio->rmo" if len(values.shape) == 2 else "rmi,mio->rmo"
        return self.activation(ops.einsum(pattern, values, self.kernel) + self.bias)

    def compute_output_shape(self, input_shape: Any) -> tuple[Any, int, int]:
        return (input_shape[0], self.members, self.units)

    def get_config(self) -> dict[str, Any]:
        return super().get_config() | {
            "units": self.units,
            "members": self.members,
            "activation": self.activation_name,
            "l2": self.l2,
            "seed": self.seed,
        }

    def numpy_twin(self) -> EnsembleDense:
        return EnsembleDense(_numpy(self.kernel), _numpy(self.bias), self.activation_name)


@keras.saving.register_keras_serializable(package="neuroflow")
class CalibratedHead(keras.layers.Layer):
    """Logits divided by the calibration temperature, through the task's activation, averaged over members."""

    def __init__(self, activation: str, temperature: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.task_activation = activation
        self.initial_temperature = float(temperature)

    def build(self, input_shape: Any) -> None:
        self.temperature = self.add_weight(
            (), keras.initializers.Constant(self.initial_temperature), name="temperature", trainable=False
        )
        self.members_axis = len(input_shape) == 3

    def call(self, logits: Any) -> Any:
        scaled = logits / self.temperature
        if self.task_activation == "sigmoid":
            answers = ops.sigmoid(scaled)
        elif self.task_activation == "softmax":
            answers = ops.softmax(scaled, axis=-1)
        else:
            answers = scaled
        return ops.mean(answers, axis=1) if self.members_axis else answers

    def compute_output_shape(self, input_shape: Any) -> tuple[Any, ...]:
        return (input_shape[0], input_shape[-1])

    def get_config(self) -> dict[str, Any]:
        return super().get_config() | {
            "activation": self.task_activation,
            "temperature": float(_numpy(self.temperature)) if self.built else self.initial_temperature,
        }

    def numpy_twin(self) -> OutputHead:
        return OutputHead(self.task_activation, float(_numpy(self.temperature)))

"""The training pipeline: plain step modules (data, validation, training, evaluation, tracking, registry),
the Prefect flow that wires them (`flows`), and the `neuroflow` CLI (`cli`)."""

import neuroflow  # noqa: F401  (sets the quiet runtime defaults before TensorFlow is imported)

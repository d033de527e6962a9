"""neuroflow.pipelines, the training pipeline: plain step modules (tables, data, validation, training, evaluation,
tracking, registry, promotion, tuning) and the Prefect flows that wire them (`flows`)."""

from .. import core  # noqa: F401  (sets the quiet runtime defaults before TensorFlow is imported)

"""What a trained model is: its schema, its preprocessing, its network and the one way it predicts."""

from .. import core  # noqa: F401  (sets the quiet runtime defaults before TensorFlow is imported)

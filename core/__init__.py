"""neuroflow.core, the shared ground under every other room: settings, errors, the recipe's vocabulary (spec), the
MLflow store and registry, the prediction log, and the runtime defaults set here on import."""

from .runtime import quiet_third_party

__version__ = "0.1.0"

# Telemetry and C++ log switches only work if they are set before TensorFlow, MLflow & co. are imported.
quiet_third_party()

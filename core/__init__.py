"""neuroflow: from a tabular data set to a served, versioned neural network.

This package holds what every part of the project shares: settings, errors and the runtime defaults.
"""

from .runtime import quiet_third_party

__version__ = "0.1.0"

# Telemetry and C++ log switches only work if they are set before TensorFlow, MLflow & co. are imported.
quiet_third_party()

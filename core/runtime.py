"""Process-wide defaults: no telemetry, quiet TensorFlow. Users can override any of them in the environment."""

import logging
import os

_QUIET_DEFAULTS = {
    "TF_CPP_MIN_LOG_LEVEL": "3",  # 2 still lets absl print harmless graph warnings
    "TF_ENABLE_ONEDNN_OPTS": "0",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "BENTOML_DO_NOT_TRACK": "true",
    "GX_ANALYTICS_ENABLED": "False",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "MPLBACKEND": "Agg",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    # Prefect's temporary server gets 20 s by default; a busy 2-core machine can need more on a cold start.
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
    # Our own step loggers go through Prefect's handlers: to the console and to the flow run in the UI.
    "PREFECT_LOGGING_EXTRA_LOGGERS": "neuroflow",
}
# Library loggers that repeat themselves on every run (TensorFlow's retracing hints).
_QUIET_LOGGERS = ("tensorflow", "absl")
# The project's own loggers report progress at INFO (epochs, validation, promotion).
PROJECT_LOGGERS = ("neuroflow",)


def quiet_third_party() -> None:
    """Turn off telemetry and chatty native logs unless the user asked for them."""
    for name, value in _QUIET_DEFAULTS.items():
        os.environ.setdefault(name, value)
    for logger in _QUIET_LOGGERS:
        logging.getLogger(logger).setLevel(logging.ERROR)
    for logger in PROJECT_LOGGERS:
        if logging.getLogger(logger).level == logging.NOTSET:
            logging.getLogger(logger).setLevel(logging.INFO)

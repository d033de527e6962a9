"""neuroflow.pipelines: the Prefect flows (`flows`) and the rooms of what they wire: `steps` (plain functions that
compute), `bookkeeping` (what is recorded in MLflow and Prefect, the registry and its gate) and `report` (the report
card of a version)."""

from .. import core  # noqa: F401  (sets the quiet runtime defaults before TensorFlow is imported)

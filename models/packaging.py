"""The model as MLflow stores it: a pyfunc "model from code" around `Predictor`, with its signature, its pinned
runtime and the code it imports. What the model needs to run travels with it; the application's settings do not."""

import tempfile
import warnings
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, DataType, Schema, TensorSpec

from ..core.codebase import stage_modules
from .inference import PREDICTION_COLUMN, PROBABILITY_PREFIX, Predictor, file_digests
from .schema import ColumnSchema, DataSchema, value_type

MODEL_CODE = Path(__file__).with_name("mlflow_model.py")
# The module MLflow runs as the model's code; what of neuroflow it carries is found from its imports.
MODEL_MODULE = f"{__package__}.mlflow_model"
SIGNATURE_TYPES = {"numeric": "double", "categorical": "string", "boolean": "boolean", "datetime": "string"}
# What the logged model needs at load time; pinned to what trained it, so MLflow need not infer it.
RUNTIME_PACKAGES = ("mlflow", "tensorflow-cpu", "keras", "scikit-learn", "pandas", "numpy")


def whole_number_dtype(dtype: str) -> bool:
    """Whether a pandas dtype holds whole numbers only (int64 and its kin)."""
    return value_type(dtype) is int


def column_spec(column: ColumnSchema) -> ColSpec:
    """One column of the learned schema as MLflow types it. A number column that the training file held as whole
    numbers (int64) is `long`: MLflow refuses int64 where a signature says double, so `double` would refuse the
    training file itself. Columns that held fractions or missing values (float64) stay `double`."""
    if column.kind == "numeric":
        kind = "long" if whole_number_dtype(column.dtype) and not column.nullable else "double"
    elif column.kind == "categorical" and column.integer:
        # integer codes arrive as whole numbers; with missing values pandas holds them as floats
        kind = "double" if column.nullable else "long"
    else:
        kind = SIGNATURE_TYPES[column.kind]
    return ColSpec(kind, column.name, required=not column.nullable)


MLFLOW_TYPES: dict[type, str] = {int: "long", bool: "boolean", float: "double", str: "string"}


def prediction_type(schema: DataSchema) -> str:
    """The MLflow type of the `prediction` column: the training target's own type."""
    return MLFLOW_TYPES[schema.target_type]


def model_signature(schema: DataSchema) -> ModelSignature:
    """The MLflow signature, generated from the same schema as the data validation."""
    inputs: list[ColSpec | TensorSpec] = [column_spec(column) for column in schema.features]
    outputs: list[ColSpec | TensorSpec] = [ColSpec(prediction_type(schema), PREDICTION_COLUMN)]
    outputs += [ColSpec("double", f"{PROBABILITY_PREFIX}{label}") for label in schema.classes or ()]
    return ModelSignature(inputs=Schema(inputs), outputs=Schema(outputs))


def as_signature_types(frame: pd.DataFrame, inputs: Any) -> pd.DataFrame:
    """`frame` with its whole-number (int64) columns as float64 where the MLflow schema `inputs` says double (a
    column with missing values in training, none in these rows). MLflow refuses that cast itself unless every value
    is 0 or 1."""
    doubles = [
        spec.name
        for spec in (inputs.inputs if inputs is not None else ())
        if spec.type == DataType.double and spec.name in frame and pd.api.types.is_integer_dtype(frame[spec.name])
    ]
    return frame.astype(dict.fromkeys(doubles, "float64"))


def runtime_requirements() -> list[str]:
    """The packages the model imports, at the versions that trained it."""
    return [f"{package}=={metadata.version(package)}" for package in RUNTIME_PACKAGES]


@dataclass(frozen=True)
class LoggedModel:
    """A model logged to a run: its `models:/` URI and the SHA-256 of the files serving reads."""

    uri: str
    file_digests: dict[str, str]


def log_model(predictor: Predictor, example: pd.DataFrame, workdir: Path) -> LoggedModel:
    """Log the model (network + preprocessing + schema behind our pyfunc) to the active MLflow run."""
    artifacts = predictor.save(workdir / "model_files")
    digests = file_digests(workdir / "model_files")
    signature = model_signature(predictor.schema)
    with tempfile.TemporaryDirectory(prefix="neuroflow-code-") as code, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a hint about integer columns; our signature says double
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(MODEL_CODE),
            artifacts=artifacts,
            code_paths=[str(stage_modules(Path(code), MODEL_MODULE))],
            signature=signature,
            input_example=as_signature_types(example, signature.inputs),
            pip_requirements=runtime_requirements(),
        )
    return LoggedModel(info.model_uri, digests)

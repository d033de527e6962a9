"""The schema learned from training data: one document behind the GE suite, the MLflow signature and the API."""

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from neuroflow.errors import SchemaMismatchError
from neuroflow.models.spec import Task

Kind = Literal["numeric", "categorical", "boolean"]
SCHEMA_VERSION = 1
# The label a missing category is encoded as, in training (sklearn) and serving (NumPy) alike.
MISSING_CATEGORY = "__missing__"
# An object column whose non-missing values parse as numbers at least this often is numeric with bad entries.
NUMERIC_SHARE = 0.9


@dataclass(frozen=True)
class ColumnSchema:
    """One column: its kind, whether it may be missing, and the values seen in training."""

    name: str
    kind: Kind
    nullable: bool
    dtype: str = ""
    minimum: float | None = None
    maximum: float | None = None
    integer: bool = False
    categories: tuple[str, ...] | None = None


@dataclass(frozen=True)
class DataSchema:
    """The features and the target of a data set, with the task and the class labels.

    `ignored` names the columns the training data had but the model does not learn from (constant or ID-like):
    records may still carry them, and they are set aside."""

    features: tuple[ColumnSchema, ...]
    target: ColumnSchema
    task: Task
    classes: tuple[str, ...] | None = None
    version: int = field(default=SCHEMA_VERSION)
    ignored: tuple[str, ...] = ()
    model_name: str | None = None  # the registered model trained on it: a run with this reference joins that model

    @property
    def feature_names(self) -> list[str]:
        return [column.name for column in self.features]

    @property
    def class_values(self) -> tuple[Any, ...] | None:
        """The classes as values of the training target's own type: a 0/1 column gives 0 and 1, a boolean one
        False and True, text stays text. `classes` holds the same labels as strings (the keys everywhere else)."""
        if self.classes is None:
            return None
        return tuple(target_value(label, self.target.dtype) for label in self.classes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def save(self, path: Path) -> Path:
        path.write_text(self.to_json())
        return path

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "DataSchema":
        def column(raw: dict[str, Any]) -> ColumnSchema:
            categories = raw.get("categories")
            return ColumnSchema(**{**raw, "categories": tuple(categories) if categories is not None else None})

        classes = data.get("classes")
        return cls(
            features=tuple(column(raw) for raw in data["features"]),
            target=column(data["target"]),
            task=data["task"],
            classes=tuple(classes) if classes is not None else None,
            version=data.get("version", SCHEMA_VERSION),
            ignored=tuple(data.get("ignored", ())),
            model_name=data.get("model_name"),
        )

    @classmethod
    def load(cls, path: Path) -> "DataSchema":
        """Read a schema file, with a clear error when it is missing or not a neuroflow schema."""
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except FileNotFoundError:
            raise SchemaMismatchError(f"schema file {path} does not exist") from None
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            raise SchemaMismatchError(
                f"{path} is not a neuroflow schema ({error}); write one with `neuroflow schema`"
            ) from None


INTEGER_DTYPES = ("int", "uint", "Int", "UInt")
BOOLEAN_DTYPES = ("bool", "boolean")


def target_value(label: str, dtype: str) -> Any:
    """One class label (a string) as a value of the dtype the training target had."""
    if dtype.startswith(INTEGER_DTYPES):
        return int(label)
    if dtype in BOOLEAN_DTYPES:
        return label == "True"
    if dtype.startswith("float"):
        return float(label)
    return label


def _is_mostly_numeric(values: pd.Series) -> bool:
    present = values.dropna()
    if present.empty:
        return False
    parsed = pd.to_numeric(present.astype(str).str.strip(), errors="coerce")
    return bool(parsed.notna().mean() >= NUMERIC_SHARE)


def column_kind(values: pd.Series) -> Kind:
    """Numeric for numbers (and for text columns that are nearly all numbers), boolean, else categorical."""
    if pd.api.types.is_bool_dtype(values):
        return "boolean"
    if pd.api.types.is_numeric_dtype(values):
        return "numeric"
    present = values.dropna()
    if not present.empty and present.map(lambda value: isinstance(value, bool | np.bool_)).all():
        return "boolean"
    return "numeric" if _is_mostly_numeric(values) else "categorical"


def whole_numbers(values: pd.Series) -> bool:
    """Whether every present value is a whole number (3 and 3.0, not 3.5)."""
    return bool(np.all(np.mod(values.dropna().to_numpy(dtype="float64"), 1) == 0))


def category_label(value: Any) -> str:
    """The string a category is known by everywhere (schema, encoder, API): 3.0 and 3 are both '3'."""
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def category_labels(values: pd.Series) -> np.ndarray:
    """`category_label` of every value of a column (None where missing), computed once per distinct value."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    labels = np.array([category_label(value) for value in uniques] + [None], dtype=object)
    return labels[codes]  # the sentinel -1 picks the trailing None


def infer_column(values: pd.Series, categorical: bool = False) -> ColumnSchema:
    """Learn one column's schema from its values; `categorical` makes numbers codes of categories (1, 2, 3)."""
    kind = "categorical" if categorical else column_kind(values)
    nullable = bool(values.isna().any())
    name, dtype = str(values.name), str(values.dtype)
    if kind == "numeric":
        numbers = pd.to_numeric(values, errors="coerce").dropna()
        if numbers.empty:
            return ColumnSchema(name, kind, nullable, dtype, 0.0, 0.0)
        integer = whole_numbers(numbers)
        return ColumnSchema(name, kind, nullable, dtype, float(numbers.min()), float(numbers.max()), integer)
    categories = tuple(sorted({category_label(value) for value in values.dropna()}))
    codes = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    integer = bool(codes and whole_numbers(values))
    return ColumnSchema(name, kind, nullable, dtype, integer=integer, categories=categories)


def infer_schema(
    frame: pd.DataFrame, target: str, task: Task, categorical: tuple[str, ...] | list[str] = ()
) -> DataSchema:
    """Learn the schema of a training frame: every feature column, the target and, for classifiers, the classes.

    Columns named in `categorical` are categories even when they hold numbers (integer codes).
    """
    unknown = [name for name in categorical if name not in frame.columns or name == target]
    if unknown:
        raise SchemaMismatchError(
            f"categorical column(s) {', '.join(map(repr, unknown))} are not feature columns of the data; "
            "check data.categorical / --categorical"
        )
    features = tuple(infer_column(frame[name], name in categorical) for name in frame.columns if name != target)
    target_column = infer_column(frame[target])
    if task == "regression":
        return DataSchema(features, target_column, task)
    target_column = ColumnSchema(
        target,
        "categorical",
        False,
        str(frame[target].dtype),
        categories=tuple(sorted({category_label(v) for v in frame[target].dropna()})),
    )
    return DataSchema(features, target_column, task, classes=target_column.categories)


def coerce_features(frame: pd.DataFrame, schema: DataSchema) -> pd.DataFrame:
    """Select the schema's feature columns, in order, as floats (numeric) or strings (categorical/boolean).

    Raises SchemaMismatchError naming the columns that are missing or hold text where numbers belong.
    """
    missing = [name for name in schema.feature_names if name not in frame.columns]
    if missing:
        raise SchemaMismatchError(f"missing feature column(s): {', '.join(missing)}")
    columns: dict[str, pd.Series] = {}
    for column in schema.features:
        values = frame[column.name]
        if column.kind == "numeric":
            numbers = pd.to_numeric(values, errors="coerce").astype("float64")
            bad = values[numbers.isna() & values.notna()]
            if not bad.empty:
                raise SchemaMismatchError(
                    f"column {column.name!r} must hold numbers but has text such as {bad.iloc[0]!r}"
                )
            columns[column.name] = numbers
        else:
            labels = category_labels(values)
            columns[column.name] = pd.Series(
                np.where(labels == None, np.nan, labels),  # noqa: E711 (elementwise: the missing values)
                index=frame.index,
                dtype=object,
            )
    return pd.DataFrame(columns, index=frame.index)

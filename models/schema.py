"""The schema learned from training data: one document behind the GE suite, the MLflow signature and the API."""

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from ..core.errors import SchemaMismatchError
from ..core.spec import Task

Kind = Literal["numeric", "categorical", "boolean", "datetime"]
SCHEMA_VERSION = 1
# The label a missing category is encoded as, in training (sklearn) and serving (NumPy) alike.
MISSING_CATEGORY = "__missing__"
# An object column whose non-missing values parse as numbers at least this often is numeric with bad entries.
NUMERIC_SHARE = 0.9
# A date or a time as ISO 8601 writes it: 2024-03-01, 2024-03-01T08:30, 2024-03-01 08:30:00.5+01:00, ...Z.
DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?)?$"
ISO_DATE = re.compile(DATE_PATTERN)
# What a date column becomes for the network: plain calendar numbers, and the cyclic ones as points on a circle, so
# that 31 December sits next to 1 January. `TIME_PARTS` are added when the training values carry a time of day.
DATE_PARTS = ("year", "month", "day_of_week", "day_of_year", "day_of_year_sin", "day_of_year_cos")
TIME_PARTS = ("hour", "hour_sin", "hour_cos")


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
    parts: tuple[str, ...] | None = None  # a date column's derived numbers (`DATE_PARTS`, `TIME_PARTS`)

    @property
    def inputs(self) -> list[str]:
        """The columns this feature becomes before encoding: itself, or a date's derived numbers (`date.month`)."""
        if self.kind == "datetime":
            return [f"{self.name}.{part}" for part in self.parts or DATE_PARTS]
        return [self.name]


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
    def numeric_inputs(self) -> list[str]:
        """The numbers the encoder standardises: numeric features and every date's derived numbers."""
        return [name for column in self.features if column.kind in ("numeric", "datetime") for name in column.inputs]

    @property
    def categorical_inputs(self) -> list[str]:
        """The columns the encoder one-hot encodes: categories and booleans."""
        return [column.name for column in self.features if column.kind in ("categorical", "boolean")]

    @property
    def dates(self) -> tuple[ColumnSchema, ...]:
        return tuple(column for column in self.features if column.kind == "datetime")

    @property
    def class_values(self) -> tuple[Any, ...] | None:
        """The classes as values of the training target's own type: a 0/1 column gives 0 and 1, a boolean one
        False and True, text stays text. `classes` holds the same labels as strings (the keys everywhere else)."""
        if self.classes is None:
            return None
        return tuple(target_value(label, self.target.dtype) for label in self.classes)

    @property
    def target_type(self) -> type:
        """The Python type of one prediction: float for a regression, else the training target's own (int, bool,
        float or str). The MLflow signature and the service's answer model are both typed from this."""
        return float if self.task == "regression" else value_type(self.target.dtype)

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
            categories, parts = raw.get("categories"), raw.get("parts")
            return ColumnSchema(
                **{
                    **raw,
                    "categories": tuple(categories) if categories is not None else None,
                    "parts": tuple(parts) if parts is not None else None,
                }
            )

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


def value_type(dtype: str) -> type:
    """The Python type of a column's values from its pandas dtype (int64 and its kin, bool, float64, anything else
    as text): the one map from a dtype to a type."""
    if dtype.startswith(INTEGER_DTYPES):
        return int
    if dtype in BOOLEAN_DTYPES:
        return bool
    if dtype.startswith("float"):
        return float
    return str


def target_value(label: str, dtype: str) -> Any:
    """One class label (a string) as a value of the dtype the training target had."""
    kind = value_type(dtype)
    return label == "True" if kind is bool else kind(label)


def _is_mostly_numeric(values: pd.Series) -> bool:
    present = values.dropna()
    if present.empty:
        return False
    parsed = pd.to_numeric(present.astype(str).str.strip(), errors="coerce")
    return bool(parsed.notna().mean() >= NUMERIC_SHARE)


def _is_mostly_dates(values: pd.Series, sample: int = 10_000) -> bool:
    present = values.dropna().head(sample)
    if present.empty:
        return False
    text = present.astype(str).str.strip()
    return bool(text.str.match(ISO_DATE).mean() >= NUMERIC_SHARE)


def column_kind(values: pd.Series) -> Kind:
    """Numeric for numbers (and for text columns that are nearly all numbers), boolean, datetime for timestamps and
    ISO 8601 text (2024-03-01, 2024-03-01T08:30Z), else categorical."""
    if pd.api.types.is_bool_dtype(values):
        return "boolean"
    if pd.api.types.is_numeric_dtype(values):
        return "numeric"
    if pd.api.types.is_datetime64_any_dtype(values):
        return "datetime"
    present = values.dropna()
    if not present.empty and present.map(lambda value: isinstance(value, bool | np.bool_)).all():
        return "boolean"
    if _is_mostly_numeric(values):
        return "numeric"
    if not present.empty and present.map(lambda value: isinstance(value, datetime | pd.Timestamp)).all():
        return "datetime"
    return "datetime" if _is_mostly_dates(values) else "categorical"


def parse_dates(values: pd.Series) -> pd.Series:
    """Timestamps in UTC (a time without a zone is taken as UTC); NaT where a value is missing or not a date."""
    if pd.api.types.is_datetime64_any_dtype(values):
        parsed = values if getattr(values.dt, "tz", None) is not None else values.dt.tz_localize("UTC")
        return parsed.dt.tz_convert("UTC")
    text = values.astype(object).where(values.notna(), None)
    text = text.map(lambda value: value.strip() if isinstance(value, str) else value)
    matches = text.map(lambda value: value is None or not isinstance(value, str) or bool(ISO_DATE.match(value)))
    text = text.where(matches, None)  # pandas reads more than ISO 8601; the service reads only that
    return pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")


def date_parts(fields: np.ndarray, parts: Sequence[str]) -> dict[str, np.ndarray]:
    """The derived numbers of dates, named by `parts`, from their calendar fields: rows year, month, weekday (Monday
    0), day of year and hour of day (with fractions), one column per date, NaN where missing."""
    year, month, weekday, day_of_year, hour = np.asarray(fields, dtype="float64")
    turn = 2 * np.pi
    every = {
        "year": year,
        "month": month,
        "day_of_week": weekday,
        "day_of_year": day_of_year,
        "day_of_year_sin": np.sin(turn * (day_of_year - 1) / 365.25),
        "day_of_year_cos": np.cos(turn * (day_of_year - 1) / 365.25),
        "hour": hour,
        "hour_sin": np.sin(turn * hour / 24),
        "hour_cos": np.cos(turn * hour / 24),
    }
    return {part: np.asarray(every[part], dtype="float64") for part in parts}


def frame_date_parts(timestamps: pd.Series, parts: Sequence[str]) -> dict[str, np.ndarray]:
    """`date_parts` of parsed (UTC) timestamps."""
    fields = timestamps.dt
    hour = fields.hour + fields.minute / 60 + fields.second / 3600
    columns = (fields.year, fields.month, fields.day_of_week, fields.day_of_year, hour)
    return date_parts(np.vstack([series.to_numpy(dtype="float64", na_value=np.nan) for series in columns]), parts)


def parse_iso(value: str) -> datetime:
    """One ISO 8601 date or time as an aware UTC datetime (no zone means UTC); ValueError when it is not one."""
    if not ISO_DATE.match(value):
        raise ValueError("must be an ISO 8601 date or time, such as 2024-03-01 or 2024-03-01T08:30:00Z")
    moment = datetime.fromisoformat(value)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def record_date_parts(values: Sequence[str | None], parts: Sequence[str]) -> dict[str, np.ndarray]:
    """`date_parts` of a request's ISO strings (None where missing), without pandas."""
    fields = np.full((5, len(values)), np.nan)
    for index, value in enumerate(values):
        if value is None:
            continue
        moment = parse_iso(value)
        fields[:, index] = (
            moment.year,
            moment.month,
            moment.weekday(),
            moment.timetuple().tm_yday,
            moment.hour + moment.minute / 60 + moment.second / 3600,
        )
    return date_parts(fields, parts)


def expand_record_dates(records: Sequence[Mapping[str, Any]], dates: Sequence[ColumnSchema]) -> list[dict[str, Any]]:
    """Validated records with each date's derived numbers added (`date.month`, ...), as the encoder reads them."""
    expanded = [dict(record) for record in records]
    for column in dates:
        derived = record_date_parts([record[column.name] for record in records], column.parts or DATE_PARTS)
        for part, numbers in derived.items():
            for record, number in zip(expanded, numbers.tolist(), strict=True):
                record[f"{column.name}.{part}"] = number
    return expanded


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
    if kind == "datetime":
        moments = parse_dates(values).dropna()
        if moments.empty:
            return ColumnSchema(name, kind, nullable, dtype, parts=DATE_PARTS)
        timed = bool(((moments.dt.hour != 0) | (moments.dt.minute != 0) | (moments.dt.second != 0)).any())
        first, last = (moment.timestamp() for moment in (moments.min(), moments.max()))
        return ColumnSchema(name, kind, nullable, dtype, first, last, parts=DATE_PARTS + (TIME_PARTS if timed else ()))
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
    """Select the schema's feature columns, in order, as floats (numeric) or strings (categorical/boolean); a date
    column becomes its derived numbers (`ColumnSchema.inputs`).

    Raises SchemaMismatchError naming the columns that are missing or hold text where numbers belong.
    """
    missing = [name for name in schema.feature_names if name not in frame.columns]
    if missing:
        raise SchemaMismatchError(f"missing feature column(s): {', '.join(map(repr, missing))}")
    columns: dict[str, pd.Series] = {}
    for column in schema.features:
        values = frame[column.name]
        if column.kind == "datetime":
            moments = parse_dates(values)
            bad = values[moments.isna() & values.notna()]
            if not bad.empty:
                raise SchemaMismatchError(
                    f"column {column.name!r} must hold ISO 8601 dates or times (2024-03-01, 2024-03-01T08:30:00Z) "
                    f"but has {bad.iloc[0]!r}"
                )
            for part, numbers in frame_date_parts(moments, column.parts or DATE_PARTS).items():
                columns[f"{column.name}.{part}"] = pd.Series(numbers, index=frame.index)
        elif column.kind == "numeric":
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

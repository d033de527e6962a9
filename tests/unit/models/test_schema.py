from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from neuroflow.core.errors import SchemaMismatchError
from neuroflow.models.schema import DataSchema, coerce_features, column_kind, infer_schema
from tests.utils.factories import mixed_frame


def test_kinds_nullability_and_ranges() -> None:
    schema = infer_schema(mixed_frame(), "label", "binary")
    age, income, city, member = schema.features
    assert (age.kind, income.kind, city.kind, member.kind) == ("numeric", "numeric", "categorical", "boolean")
    assert (age.dtype, income.dtype, city.dtype, member.dtype) == ("float64", "float64", "object", "object")
    assert all(column.nullable for column in schema.features)
    assert age.integer and not income.integer
    assert 18 <= age.minimum <= age.maximum < 80
    assert city.categories == ("lyon", "nice", "paris")
    assert member.categories == ("False", "True")
    assert schema.classes == ("no", "yes")
    assert not schema.target.nullable


def test_text_column_that_is_nearly_all_numbers_is_numeric() -> None:
    values = pd.Series(["1.5", "2", "3", "4", "5", "6", "7", "8", "9", "10", "n/a"])
    assert column_kind(values) == "numeric"
    assert column_kind(pd.Series(["a", "b", "1"])) == "categorical"


def test_integer_coded_classes_are_labels() -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "target": [0, 1, 2, 1]})
    schema = infer_schema(frame, "target", "multiclass")
    assert schema.classes == ("0", "1", "2")


def test_round_trip_through_json(tmp_path: Path) -> None:
    schema = infer_schema(mixed_frame(), "label", "binary")
    path = schema.save(tmp_path / "schema.json")
    assert DataSchema.load(path) == schema
    regression = infer_schema(pd.DataFrame({"x": [1.0, 2.0], "y": [0.5, 1.5]}), "y", "regression")
    assert DataSchema.from_dict(regression.to_dict()) == regression


def test_bad_schema_files_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(SchemaMismatchError, match="does not exist"):
        DataSchema.load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text('{"columns": []}')
    with pytest.raises(SchemaMismatchError, match="neuroflow schema"):
        DataSchema.load(tmp_path / "bad.json")


def test_coerce_orders_columns_and_types_values() -> None:
    frame = mixed_frame(rows=20)
    schema = infer_schema(frame, "label", "binary")
    shuffled = frame[["member", "label", "city", "income", "age"]]
    coerced = coerce_features(shuffled, schema)
    assert list(coerced.columns) == ["age", "income", "city", "member"]
    assert coerced["age"].dtype == np.float64
    assert set(coerced["member"].dropna()) <= {"True", "False"}


def test_coerce_names_missing_columns_and_text_in_numbers() -> None:
    frame = mixed_frame(rows=20)
    schema = infer_schema(frame, "label", "binary")
    with pytest.raises(SchemaMismatchError, match=r"missing feature column.*city"):
        coerce_features(frame.drop(columns=["city"]), schema)
    broken = frame.astype({"age": object})
    broken.loc[3, "age"] = "old"
    with pytest.raises(SchemaMismatchError, match="'age' must hold numbers but has text such as 'old'"):
        coerce_features(broken, schema)


def test_named_columns_of_numbers_become_integer_coded_categories() -> None:
    frame = pd.DataFrame({"plan": [1, 2, 3, 2] * 5, "amount": [1.5] * 20, "target": [0, 1] * 10})
    schema = infer_schema(frame, "target", "binary", categorical=["plan"])
    kinds = {column.name: (column.kind, column.integer, column.categories) for column in schema.features}
    assert kinds["plan"] == ("categorical", True, ("1", "2", "3"))
    assert kinds["amount"][0] == "numeric"
    with pytest.raises(SchemaMismatchError, match="'plann' are not feature columns"):
        infer_schema(frame, "target", "binary", categorical=["plann"])

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from neuroflow.core.errors import DataLoadError
from neuroflow.core.settings import DataSettings
from neuroflow.models.schema import DataSchema
from neuroflow.pipelines.steps.data import (
    Dataset,
    describe_columns,
    describe_fitted,
    drop_unlearnable_columns,
    infer_task,
    learn_schema,
    load_bundled,
    load_dataset,
    numbers_as_text,
    read_table,
    split_data,
)
from tests.utils.factories import classification_frame, messy_frame, mixed_frame, regression_frame


@pytest.mark.parametrize(
    ("name", "rows", "task"),
    [("breast_cancer", 569, "binary"), ("wine", 178, "multiclass"), ("diabetes", 442, "regression")],
)
def test_bundled_data_sets_load_with_their_task(name: str, rows: int, task: str) -> None:
    dataset = load_dataset(DataSettings(dataset=name))
    assert len(dataset.frame) == rows
    assert dataset.task == task
    assert dataset.target == "target"


def test_unknown_bundled_name_is_a_data_error() -> None:
    with pytest.raises(DataLoadError, match="unknown data set 'iris'"):
        load_bundled("iris")


def test_csv_and_parquet_load(tmp_path: Path) -> None:
    frame = classification_frame(rows=40)
    frame.to_csv(tmp_path / "d.csv", index=False)
    frame.to_parquet(tmp_path / "d.parquet")
    for name in ("d.csv", "d.parquet"):
        dataset = load_dataset(DataSettings(path=tmp_path / name, target="target"))
        assert dataset.frame.shape == frame.shape
        assert dataset.name == "d"


@pytest.mark.parametrize("separator", [",", ";", "\t", "|"])
def test_the_column_separator_of_a_csv_file_is_detected(tmp_path: Path, separator: str) -> None:
    frame = mixed_frame(rows=60)
    frame.to_csv(tmp_path / "d.csv", index=False, sep=separator)
    loaded = read_table(tmp_path / "d.csv")
    assert list(loaded.columns) == list(frame.columns)
    assert loaded["income"].dtype == "float64"


def test_a_given_separator_wins_over_detection(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("a;b,c\n1;2,3\n4;5,6\n")
    assert list(read_table(tmp_path / "d.csv", delimiter=";").columns) == ["a", "b,c"]
    assert list(read_table(tmp_path / "d.csv", delimiter=",").columns) == ["a;b", "c"]


def test_numbers_written_the_european_way_read_as_numbers_when_told(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text('price;size;label\n"1.234,5";2,5;a\n"12,0";3,25;b\n')
    plain = read_table(tmp_path / "d.csv")
    assert not pd.api.types.is_numeric_dtype(plain["size"])  # 2,5 is text unless the decimal mark is known
    told = read_table(tmp_path / "d.csv", decimal=",", thousands=".")
    assert told["price"].tolist() == [1234.5, 12.0]
    assert told["size"].tolist() == [2.5, 3.25]


def test_numbers_written_as_text_are_pointed_out(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert numbers_as_text(pd.Series(["12,345", "1,234,567", None, "980"])) == "12,345"
    assert numbers_as_text(pd.Series(["2,5", "3,75"])) == "2,5"
    assert numbers_as_text(pd.Series(["paris", "12,345"])) is None
    assert numbers_as_text(pd.Series([12345.0, 3.0])) is None
    frame = classification_frame(rows=40)
    frame["income"] = [f"{value:,}" for value in range(10_000, 10_040)]
    frame.to_csv(tmp_path / "d.csv", index=False)
    with caplog.at_level("WARNING", logger="neuroflow.pipelines.steps.data"):
        load_dataset(DataSettings(path=tmp_path / "d.csv", target="target"))
    assert "column 'income' holds numbers written as text (e.g. '10,000')" in caplog.text
    assert "--thousands , for 12,345" in caplog.text and "data.thousands" in caplog.text
    fixed = load_dataset(DataSettings(path=tmp_path / "d.csv", target="target", thousands=","))
    assert fixed.frame["income"].dtype == "int64"


def test_number_marks_must_differ() -> None:
    with pytest.raises(ValueError, match="both ','"):
        DataSettings(decimal=",", thousands=",")
    with pytest.raises(ValueError, match="delimiter ','"):
        DataSettings(delimiter=",", decimal=",")


def test_missing_target_column_names_the_columns(tmp_path: Path) -> None:
    classification_frame(rows=20).to_csv(tmp_path / "d.csv", index=False)
    with pytest.raises(DataLoadError, match=r"target column 'label' is not in .*its columns are: 'f0', 'f1'"):
        load_dataset(DataSettings(path=tmp_path / "d.csv", target="label"))


@pytest.mark.parametrize(
    ("content", "message"),
    [("", "is empty"), ("a,b,target\n", "no data rows")],
)
def test_empty_files_are_refused(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "empty.csv"
    path.write_text(content)
    with pytest.raises(DataLoadError, match=message):
        read_table(path)


def test_missing_folder_and_unsupported_files(tmp_path: Path) -> None:
    with pytest.raises(DataLoadError, match="does not exist"):
        read_table(tmp_path / "nope.csv")
    with pytest.raises(DataLoadError, match="is a folder"):
        read_table(tmp_path)
    (tmp_path / "d.xlsx").write_text("x")
    with pytest.raises(DataLoadError, match="unsupported file type"):
        read_table(tmp_path / "d.xlsx")


def test_task_inference() -> None:
    assert infer_task(pd.Series([0, 1, 1, 0])) == "binary"
    assert infer_task(pd.Series(["a", "b", "c", "a"])) == "multiclass"
    assert infer_task(pd.Series([0, 1, 2, 3, 2])) == "multiclass"
    assert infer_task(pd.Series([0.5, 1.25, 2.0, 3.75])) == "regression"
    assert infer_task(pd.Series(range(100))) == "regression"
    with pytest.raises(DataLoadError, match="at least 2"):
        infer_task(pd.Series([1, 1, 1], name="y"))


def test_rows_without_a_target_are_dropped(tmp_path: Path) -> None:
    frame = classification_frame(rows=30)
    frame["target"] = frame["target"].astype(float)
    frame.loc[[0, 5], "target"] = None
    frame.to_csv(tmp_path / "d.csv", index=False)
    dataset = load_dataset(DataSettings(path=tmp_path / "d.csv", target="target"))
    assert len(dataset.frame) == 28


def test_text_target_cannot_be_regression(tmp_path: Path) -> None:
    pd.DataFrame({"x": [1, 2, 3], "y": ["a", "b", "c"]}).to_csv(tmp_path / "d.csv", index=False)
    with pytest.raises(DataLoadError, match="cannot be a regression target"):
        load_dataset(DataSettings(path=tmp_path / "d.csv", target="y", task="regression"))


def _dataset(frame: pd.DataFrame, task: str) -> Dataset:
    return Dataset("t", "test", frame, "target", task)  # type: ignore[arg-type]


def test_split_sizes_are_seeded_and_stratified() -> None:
    frame = classification_frame(rows=500, classes=2)
    first = split_data(_dataset(frame, "binary"), 0.2, 0.2, seed=1)
    again = split_data(_dataset(frame, "binary"), 0.2, 0.2, seed=1)
    assert first.sizes() == {"train_rows": 320, "validation_rows": 80, "test_rows": 100}
    assert first.test_features.index.equals(again.test_features.index)
    overall = frame["target"].mean()
    for part in (first.train_target, first.validation_target, first.test_target):
        assert abs(part.mean() - overall) < 0.02
    assert set(first.train_features.index).isdisjoint(first.test_features.index)


def test_regression_split_and_too_small_data() -> None:
    split = split_data(_dataset(regression_frame(rows=100), "regression"), 0.2, 0.25, seed=0)
    assert split.sizes() == {"train_rows": 60, "validation_rows": 20, "test_rows": 20}
    tiny = classification_frame(rows=6, classes=2)
    with pytest.raises(DataLoadError, match="cannot split"):
        split_data(_dataset(tiny, "binary"), 0.2, 0.2, seed=0)


def test_schema_comes_from_the_reference_file_when_given(tmp_path: Path) -> None:
    dataset = _dataset(classification_frame(rows=50), "binary")
    learned = learn_schema(dataset, None)
    assert learned.feature_names == ["f0", "f1", "f2", "f3", "f4"]
    reference = _dataset(classification_frame(rows=50, features=3), "binary")
    path = learn_schema(reference, None).save(tmp_path / "reference.json")
    assert learn_schema(dataset, path).feature_names == ["f0", "f1", "f2"]


def test_constant_and_id_like_columns_are_dropped_with_their_reason() -> None:
    frame = classification_frame(rows=120)
    frame["customer_id"] = [f"C{i:05d}" for i in range(120)]
    frame["row_number"] = range(120)
    frame["country"] = "FR"
    frame["empty"] = None
    frame["measured"] = np.linspace(0, 1, 120)  # all distinct too, but a measurement: kept
    dataset = Dataset("d", "test", frame, "target", "binary")
    kept, dropped = drop_unlearnable_columns(dataset)
    assert set(dropped) == {"customer_id", "row_number", "country", "empty"}
    assert dropped["country"] == "constant: every row holds 'FR'"
    assert dropped["customer_id"].startswith("ID-like")
    assert "measured" in kept.frame.columns and "customer_id" not in kept.frame.columns
    schema = learn_schema(kept, None, (), dropped)
    assert schema.ignored == ("customer_id", "row_number", "country", "empty")
    assert DataSchema.from_dict(json.loads(schema.to_json())).ignored == schema.ignored
    report = {row["column"]: row for row in describe_columns(kept, schema, dropped)}
    assert report["row_number"]["action"].startswith("dropped: ID-like")
    assert report["f0"]["action"].startswith("number: missing values filled with the training median")
    assert list(report)[-4:] == ["customer_id", "row_number", "country", "empty"]


def test_small_tables_keep_distinct_columns_and_all_unlearnable_is_an_error() -> None:
    small = pd.DataFrame({"code": ["a", "b", "c", "d"], "target": [0, 1, 0, 1]})
    assert drop_unlearnable_columns(Dataset("s", "test", small, "target", "binary"))[1] == {}
    useless = pd.DataFrame({"k": [1] * 60, "target": [0, 1] * 30})
    with pytest.raises(DataLoadError, match="nothing to learn from"):
        drop_unlearnable_columns(Dataset("u", "test", useless, "target", "binary"))


def test_categories_are_described_with_their_unknown_and_missing_handling() -> None:
    frame = mixed_frame(rows=200)
    dataset = Dataset("m", "test", frame, "label", "binary")
    report = {row["column"]: row for row in describe_columns(dataset, learn_schema(dataset, None), {})}
    assert report["city"]["action"] == (
        "categorical: 3 distinct value(s) in the data; those seen at least 5 times in the training rows get a column "
        "each, rarer and unseen ones share an 'unknown' column; a missing value is a category of its own"
    )
    assert report["city"]["missing"] == 10


def test_padded_headers_are_trimmed_and_the_target_found(tmp_path: Path) -> None:
    messy_frame(rows=120).to_csv(tmp_path / "weather.csv", index=False)
    dataset = load_dataset(DataSettings(path=tmp_path / "weather.csv", target="label"))
    assert list(dataset.frame.columns) == ["date", "temp", "shop", "pixel", "nothing", "label"]
    with pytest.raises(DataLoadError, match=r"its columns are: 'date', 'temp', 'shop'"):
        load_dataset(DataSettings(path=tmp_path / "weather.csv", target="sex"))


def test_two_headers_equal_once_trimmed_are_refused(tmp_path: Path) -> None:
    (tmp_path / "twice.csv").write_text("a,a ,target\n1,2,0\n3,4,1\n")
    with pytest.raises(DataLoadError, match=r"two columns named 'a' .*\('a' and 'a '\)"):
        load_dataset(DataSettings(path=tmp_path / "twice.csv", target="target"))


def test_a_date_in_every_row_is_kept_as_a_date_not_dropped_as_an_id(tmp_path: Path) -> None:
    frame = messy_frame(rows=400)
    frame.columns = [name.strip() for name in frame.columns]
    kept, dropped = drop_unlearnable_columns(Dataset("w", "test", frame, "label", "binary"))
    assert dropped == {"pixel": "constant: every row holds 0", "nothing": "empty: every value is missing"}
    schema = learn_schema(kept, None, (), dropped)
    date = next(column for column in schema.features if column.name == "date")
    assert date.kind == "datetime" and date.parts is not None and "day_of_year_sin" in date.parts
    assert "hour" not in date.parts  # no time of day in the data: no hour numbers
    report = {row["column"]: row for row in describe_columns(kept, schema, dropped)}
    assert report["date"]["action"].startswith("date: turned into 6 numbers (year, month, day_of_week")
    assert report["pixel"]["action"] == "dropped: constant: every row holds 0"


def test_timestamps_with_a_time_of_day_get_hour_numbers() -> None:
    moments = pd.date_range("2024-01-01 06:30", periods=120, freq="7h", tz="America/New_York")
    frame = pd.DataFrame({"at": moments, "x": np.arange(120.0), "target": [0, 1] * 60})
    schema = learn_schema(Dataset("t", "test", frame, "target", "binary"), None)
    at = schema.features[0]
    assert at.kind == "datetime" and at.parts is not None and at.parts[-3:] == ("hour", "hour_sin", "hour_cos")


def test_the_fitted_description_says_which_categories_got_a_column() -> None:
    from neuroflow.models.forward import FeatureEncoder
    from neuroflow.models.preprocessing import fit_preprocessing

    frame = messy_frame(rows=600)
    frame.columns = [name.strip() for name in frame.columns]
    frame["shop"] = np.where(np.arange(600) < 300, "shop-big", frame["shop"])  # one frequent value, 300 rare ones
    dataset = Dataset("w", "test", frame.drop(columns=["pixel", "nothing"]), "label", "binary")
    schema = learn_schema(dataset, None)
    split = split_data(dataset, 0.2, 0.2, 0)
    preprocessing = fit_preprocessing(schema, split.train_features, split.train_target)
    encoder = FeatureEncoder.from_transform(preprocessing.features)
    rows = {row["column"]: row for row in describe_fitted(describe_columns(dataset, schema, {}), schema, encoder)}
    shop = rows["shop"]
    assert shop["kept"] == ["shop-big"]
    total = len(next(c for c in schema.features if c.name == "shop").categories or ())
    assert total > 150 and shop["pooled"] == total - 1
    assert shop["action"].startswith(f"categorical: one-hot; 1 of {total} value(s) get a column of their own")
    assert "share one 'unknown' column" in shop["action"]

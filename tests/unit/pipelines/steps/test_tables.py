"""The cheap checks the CLI runs before anything slow: the header, a did-you-mean, a task the target can be."""

from pathlib import Path

import pandas as pd
import pytest

from neuroflow.core.errors import DataLoadError
from neuroflow.pipelines.steps.tables import check_task, closest_column, missing_column, read_column, read_columns


def test_the_header_and_one_column_are_read_without_the_rest(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("a;b;label\n1;2;x\n3;4;y\n")
    assert read_columns(tmp_path / "d.csv") == ["a", "b", "label"]
    assert list(read_column(tmp_path / "d.csv", "label")) == ["x", "y"]
    pd.DataFrame({"a": [1.0], "label": ["x"]}).to_parquet(tmp_path / "d.parquet")
    assert read_columns(tmp_path / "d.parquet") == ["a", "label"]


@pytest.mark.parametrize(
    ("typed", "meant"),
    [("Species", "species"), (" species", "species"), ("specis", "species"), ("colour", None)],
)
def test_a_mistyped_column_finds_the_one_it_meant(typed: str, meant: str | None) -> None:
    assert closest_column(typed, ["sepal_length", "species"]) == meant


def test_the_missing_column_error_names_the_guess_and_the_columns() -> None:
    error = missing_column("target column", "Species", ["sepal_length", "species"], "iris.csv")
    assert str(error) == (
        "target column 'Species' is not in iris.csv (did you mean 'species'?); its columns are: 'sepal_length', "
        "'species'"
    )


@pytest.mark.parametrize(
    ("values", "task", "message"),
    [
        (["a", "b", "c"], "binary", "--task binary needs a target with exactly 2 classes, but 'y' has 3"),
        ([0.5, 1.7, 2.9, 3.3], "binary", "pass --task regression"),
        (["a", "b", "a"], "multiclass", "pass --task binary"),
        (["a", "b", "c"], "regression", "pass --task multiclass"),
        (["a", "b"], "regression", "pass --task binary"),
        (["a", "a"], "binary", "needs at least 2"),
    ],
)
def test_a_task_the_target_cannot_be_is_refused_with_what_to_pass(values: list, task: str, message: str) -> None:
    with pytest.raises(DataLoadError, match=message.replace("(", r"\(")):
        check_task(pd.Series(values, name="y"), task)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("values", "task"),
    [(["a", "b"], "binary"), ([1, 2, 3], "multiclass"), ([0.1, 2.5, 3.0], "regression"), ([0, 1], "regression")],
)
def test_a_task_the_target_can_be_passes(values: list, task: str) -> None:
    check_task(pd.Series(values, name="y"), task)  # type: ignore[arg-type]

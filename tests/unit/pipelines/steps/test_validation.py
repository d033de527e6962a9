import re
from pathlib import Path

import pandas as pd
import pytest

from neuroflow.core.errors import DataValidationError
from neuroflow.core.settings import ValidationSettings
from neuroflow.models.schema import infer_schema
from neuroflow.pipelines.steps.validation import build_expectations, category_values, ensure_valid, validate_frame
from tests.utils.factories import mixed_frame

SETTINGS = ValidationSettings()


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return mixed_frame(rows=200)


def test_the_data_the_schema_was_learned_from_passes(frame: pd.DataFrame, tmp_path: Path) -> None:
    schema = infer_schema(frame, "label", "binary")
    report = validate_frame(frame, schema, SETTINGS, tmp_path / "report")
    assert report.success and not report.failures
    assert report.evaluated == len(build_expectations(schema, SETTINGS))
    assert report.html_path.suffix == ".html" and report.html_path.is_file()
    assert (tmp_path / "report" / "index.html").is_file()


def test_each_kind_of_break_is_named(frame: pd.DataFrame, tmp_path: Path) -> None:
    schema = infer_schema(frame.dropna(subset=["income"]), "label", "binary")
    bad = frame.drop(columns=["member"]).astype({"age": object})
    bad.loc[bad.index[:5], "age"] = "old"
    bad.loc[bad.index[:40], "city"] = "tokyo"
    bad.loc[bad.index[0], "income"] = None
    bad.loc[bad.index[:30], "income"] = 1e9
    report = validate_frame(bad, schema, SETTINGS, tmp_path / "report")
    assert not report.success
    text = "\n".join(report.failures)
    assert "column 'member': missing" in text
    assert "column 'age': expected numbers, found text in 5 rows, e.g. 'old'" in text
    assert "column 'city': must be one of the categories seen in training" in text and "'tokyo'" in text
    assert "column 'income': must not be missing" in text
    assert "column 'income': must lie in" in text
    assert len(report.failures) == 5
    assert report.html_path.is_file()
    assert "age" in report.html_path.read_text()


def test_too_few_rows_fails(frame: pd.DataFrame, tmp_path: Path) -> None:
    schema = infer_schema(frame, "label", "binary")
    report = validate_frame(frame.head(3), schema, ValidationSettings(min_rows=10), tmp_path)
    assert any("3 rows, at least 10 needed" in line for line in report.failures)


def test_integer_coded_labels_match_their_categories() -> None:
    assert {"1", 1.0, "True"} <= set(category_values(("1", "True")))
    assert category_values(("a",)) == ["a"]


def test_ensure_valid_raises_with_every_failure_and_the_report(frame: pd.DataFrame, tmp_path: Path) -> None:
    schema = infer_schema(frame, "label", "binary")
    ensure_valid(validate_frame(frame, schema, SETTINGS, tmp_path / "ok"))
    report = validate_frame(frame.drop(columns=["city", "age"]), schema, SETTINGS, tmp_path / "bad")
    with pytest.raises(DataValidationError) as caught:
        ensure_valid(report)
    assert caught.value.failures == ["column 'age': missing", "column 'city': missing"]
    assert caught.value.report_path == report.html_path
    assert f"Report: {report.html_path}" in str(caught.value)


def test_the_report_page_is_self_contained_with_failed_expectations_first(frame: pd.DataFrame, tmp_path: Path) -> None:
    schema = infer_schema(frame, "label", "binary")
    bad = frame.copy()
    bad.loc[bad.index[:40], "city"] = "tokyo"
    report = validate_frame(bad, schema, SETTINGS, tmp_path / "report")
    page = report.html_path.read_text()
    assert report.html_path.name == "validation.html"
    assert "<script" not in page.lower() and "http://" not in page and "https://" not in page
    rows = re.findall(r"<tr class='(passed|failed)'>", page)
    assert rows[0] == "failed" and rows.count("failed") == 1 and "failed" not in rows[1:]
    assert "must be one of the categories seen in training" in page and "tokyo" in page
    assert f"{report.evaluated - 1} of {report.evaluated} expectations met" in page


def test_dates_are_held_to_iso_8601(tmp_path: Path) -> None:
    dated = mixed_frame(rows=100).assign(since=[f"2024-01-{day:02d}" for day in range(1, 26)] * 4)
    schema = infer_schema(dated, "label", "binary")
    bad = dated.copy()
    bad.loc[bad.index[:10], "since"] = "01/02/2024"
    report = validate_frame(bad, schema, SETTINGS, tmp_path / "report")
    assert not report.success
    assert any(line.startswith("column 'since': must be an ISO 8601 date or time") for line in report.failures)

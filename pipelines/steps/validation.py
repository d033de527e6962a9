"""Data validation with Great Expectations: a suite generated from the schema, run through a Checkpoint
that writes Data Docs HTML, summarised as a report the flow can fail on."""

import html
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ...core.errors import DataValidationError
from ...core.settings import ValidationSettings
from ...models.schema import DATE_PATTERN, ColumnSchema, DataSchema

log = logging.getLogger(__name__)

NUMERIC_TYPES = [
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float16",
    "float32",
    "float64",
    "Int8",
    "Int16",
    "Int32",
    "Int64",
    "Float32",
    "Float64",
]
SITE_NAME = "neuroflow"
# The report as one page: no scripts, no stylesheet or font from a CDN, so it opens from disk and in MLflow's viewer.
PAGE_NAME = "validation.html"
PAGE_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:70rem;margin:2rem auto;padding:0 1rem;color:#222}"
    "table{border-collapse:collapse;width:100%}th,td{border:1px solid #ccc;padding:.3rem .6rem;text-align:left;"
    "vertical-align:top}th{background:#f3f3f3}.failed td:first-child{color:#b00020;font-weight:bold}"
    ".passed td:first-child{color:#1b7f3b}.verdict{font-size:1.2rem;font-weight:bold}"
)


@dataclass(frozen=True)
class ValidationReport:
    """What Great Expectations found: success, one readable line per failed expectation, and the HTML report."""

    success: bool
    evaluated: int
    failures: tuple[str, ...]
    html_path: Path
    docs_dir: Path

    def summary(self) -> str:
        return f"{self.evaluated - len(self.failures)}/{self.evaluated} expectations met"


def ensure_valid(report: ValidationReport) -> None:
    """Stop here, naming every failed expectation and the HTML report, when the data broke its expectations."""
    if report.success:
        return
    raise DataValidationError(
        f"data validation failed ({report.summary()}); nothing was trained or registered.\n  "
        + "\n  ".join(report.failures)
        + f"\nReport: {report.html_path}",
        list(report.failures),
        report.html_path,
    )


def load_great_expectations() -> None:
    """Import Great Expectations ahead of the first validation (seconds), e.g. while a server starts."""
    import great_expectations  # noqa: F401


def build_expectations(schema: DataSchema, settings: ValidationSettings) -> list[Any]:
    """One expectation list from the schema: columns exist, types, ranges, missing values, categories, classes."""
    import great_expectations as gx

    expectations: list[Any] = [gx.expectations.ExpectTableRowCountToBeBetween(min_value=settings.min_rows)]
    for column in (*schema.features, schema.target):
        expectations.extend(_column_expectations(column, settings, is_target=column is schema.target))
    return expectations


def _column_expectations(column: ColumnSchema, settings: ValidationSettings, is_target: bool) -> list[Any]:
    import great_expectations as gx

    name = column.name
    result: list[Any] = [gx.expectations.ExpectColumnToExist(column=name)]
    if not column.nullable:
        result.append(gx.expectations.ExpectColumnValuesToNotBeNull(column=name))
    if column.kind == "numeric":
        result.append(gx.expectations.ExpectColumnValuesToBeInTypeList(column=name, type_list=NUMERIC_TYPES))
        result.append(
            gx.expectations.ExpectColumnValuesToBeBetween(
                column=name,
                min_value=column.minimum,
                max_value=column.maximum,
                mostly=1.0 if is_target else settings.range_mostly,
            )
        )
    elif column.kind == "datetime" and not column.dtype.startswith("datetime"):  # text: must read as dates
        result.append(
            gx.expectations.ExpectColumnValuesToMatchRegex(
                column=name, regex=DATE_PATTERN, mostly=1.0 if is_target else settings.range_mostly
            )
        )
    elif column.categories is not None:
        values = category_values(column.categories)
        result.append(
            gx.expectations.ExpectColumnValuesToBeInSet(
                column=name, value_set=values, mostly=1.0 if is_target else settings.category_mostly
            )
        )
    return result


def category_values(labels: tuple[str, ...]) -> list[Any]:
    """The values a category label stands for in a frame: '1' is also 1 and 1.0, 'True' is also True."""
    values: list[Any] = list(labels)
    for label in labels:
        if label in ("True", "False"):
            values.append(label == "True")
        try:
            number = float(label)
        except ValueError:
            continue
        values.append(number)
        if number.is_integer():
            values.append(int(number))
    return values


def validate_frame(
    frame: pd.DataFrame, schema: DataSchema, settings: ValidationSettings, report_dir: Path
) -> ValidationReport:
    """Run the schema's suite on a frame; write Data Docs under `report_dir`; never raise on failed expectations."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    report_dir = report_dir.resolve()
    report_dir.mkdir(parents=True, exist_ok=True)
    context = gx.get_context(mode="ephemeral")
    # GX draws a progress bar per validation; the console belongs to the pipeline's own progress lines.
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    context.add_data_docs_site(
        site_name=SITE_NAME,
        site_config={
            "class_name": "SiteBuilder",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(report_dir)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        },
    )
    batch = context.data_sources.add_pandas("neuroflow").add_dataframe_asset("training_data")
    suite = context.suites.add(gx.ExpectationSuite(name="schema", expectations=build_expectations(schema, settings)))
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(
            name="training_data", data=batch.add_batch_definition_whole_dataframe("all"), suite=suite
        )
    )
    checkpoint = context.checkpoints.add(
        gx.Checkpoint(
            name="neuroflow",
            validation_definitions=[definition],
            actions=[gx.checkpoint.UpdateDataDocsAction(name="data_docs", site_names=[SITE_NAME])],
            result_format="SUMMARY",
        )
    )
    result = checkpoint.run(batch_parameters={"dataframe": frame})
    outcomes = [outcome for run in result.run_results.values() for outcome in run.results]
    failures = describe_failures([outcome for outcome in outcomes if not outcome.success], frame)
    page = report_dir / PAGE_NAME
    page.write_text(render_page(outcomes, frame, bool(result.success)))
    report = ValidationReport(
        success=bool(result.success),
        evaluated=len(outcomes),
        failures=failures,
        html_path=page,
        docs_dir=report_dir,
    )
    log.info("data validation: %s (report: %s)", report.summary(), report.html_path)
    return report


def describe_failures(failed: list[Any], frame: pd.DataFrame) -> tuple[str, ...]:
    """One readable line per failed expectation, leaving out the ones a missing or mistyped column explains."""
    present_columns = set(map(str, frame.columns))
    mistyped = {
        outcome.expectation_config.kwargs.get("column")
        for outcome in failed
        if outcome.expectation_config.type == "expect_column_values_to_be_in_type_list"
    }
    lines = []
    for outcome in failed:
        config = outcome.expectation_config
        column = config.kwargs.get("column")
        if column is not None and column not in present_columns:
            primary = config.type == "expect_column_to_exist"
        else:
            primary = column not in mistyped or config.type == "expect_column_values_to_be_in_type_list"
        if primary:
            lines.append(describe_failure(outcome, frame))
    return tuple(lines)


def describe_failure(outcome: Any, frame: pd.DataFrame) -> str:
    """One readable line for a failed expectation, with example values where they help."""
    config = outcome.expectation_config
    column = config.kwargs.get("column")
    details = outcome.result or {}
    where = f"column {column!r}" if column is not None else "table"
    if config.type == "expect_column_to_exist":
        return f"{where}: missing"
    if config.type == "expect_table_row_count_to_be_between":
        return f"{where}: {details.get('observed_value')} rows, at least {config.kwargs.get('min_value')} needed"
    if config.type == "expect_column_values_to_be_in_type_list":
        values = frame[column]
        text = values[pd.to_numeric(values, errors="coerce").isna() & values.notna()]
        examples = ", ".join(repr(value) for value in text.drop_duplicates().head(3))
        return f"{where}: expected numbers, found text in {len(text)} rows, e.g. {examples}"
    examples = ", ".join(repr(value) for value in (details.get("partial_unexpected_list") or [])[:3])
    share = details.get("unexpected_percent")
    count = f"{details.get('unexpected_count')} rows ({share:.1f}%)" if share is not None else "some rows"
    rule = {
        "expect_column_values_to_not_be_null": "must not be missing",
        "expect_column_values_to_be_between": (
            f"must lie in [{config.kwargs.get('min_value'):g}, {config.kwargs.get('max_value'):g}]"
            if config.kwargs.get("min_value") is not None
            else "out of range"
        ),
        "expect_column_values_to_be_in_set": "must be one of the categories seen in training",
        "expect_column_values_to_match_regex": "must be an ISO 8601 date or time (2024-03-01, 2024-03-01T08:30Z)",
    }.get(config.type, config.type)
    return f"{where}: {rule}; {count} do not, e.g. {examples}" if examples else f"{where}: {rule}; {count} do not"


def describe_rule(config: Any) -> str:
    """What an expectation asks, in words."""
    kwargs = config.kwargs
    mostly = kwargs.get("mostly")
    share = f" (at least {mostly:.0%} of rows)" if mostly is not None and mostly < 1 else ""
    if config.type == "expect_table_row_count_to_be_between":
        return f"at least {kwargs.get('min_value')} rows"
    if config.type == "expect_column_to_exist":
        return "the column exists"
    if config.type == "expect_column_values_to_not_be_null":
        return "no value is missing"
    if config.type == "expect_column_values_to_be_in_type_list":
        return "holds numbers"
    if config.type == "expect_column_values_to_be_between":
        return f"values between {kwargs.get('min_value'):g} and {kwargs.get('max_value'):g}{share}"
    if config.type == "expect_column_values_to_be_in_set":
        values = list(kwargs.get("value_set") or [])
        shown = ", ".join(map(str, values[:8])) + (", …" if len(values) > 8 else "")
        return f"one of the {len(values)} values seen in training ({shown}){share}"
    if config.type == "expect_column_values_to_match_regex":
        return f"ISO 8601 dates or times{share}"
    return str(config.type)


def render_page(outcomes: list[Any], frame: pd.DataFrame, success: bool) -> str:
    """Every expectation's outcome as one self-contained HTML page, failed expectations first."""
    ordered = sorted(outcomes, key=lambda outcome: bool(outcome.success))
    met = sum(1 for outcome in outcomes if outcome.success)
    rows = []
    for outcome in ordered:
        config = outcome.expectation_config
        column = config.kwargs.get("column")
        if outcome.success:
            found = "met"
        elif column is not None and column not in frame.columns and config.type != "expect_column_to_exist":
            found = "not checked: the column is missing"
        else:
            found = describe_failure(outcome, frame)
        rows.append(
            f"<tr class='{'passed' if outcome.success else 'failed'}'><td>{'met' if outcome.success else 'FAILED'}</td>"
            f"<td>{html.escape(str(column) if column is not None else '(table)')}</td>"
            f"<td>{html.escape(describe_rule(config))}</td><td>{html.escape(found)}</td></tr>"
        )
    verdict = "passed" if success else "FAILED: nothing was trained or registered"
    return "\n".join(
        [
            "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>neuroflow data validation</title>",
            f"<style>{PAGE_STYLE}</style></head><body>",
            "<h1>Data validation (Great Expectations)</h1>",
            f"<p class='verdict'>{html.escape(verdict)}: {met} of {len(outcomes)} expectations met, "
            f"{len(frame)} rows, {frame.shape[1]} columns.</p>",
            "<p>The expectations come from the schema learned from the training data. Great Expectations' own Data "
            "Docs are in the <code>validations/</code> folder beside this page.</p>",
            "<table><thead><tr><th>Result</th><th>Column</th><th>Expectation</th><th>What was found</th></tr></thead>",
            "<tbody>",
            *rows,
            "</tbody></table></body></html>",
        ]
    )

"""`neuroflow monitor` and `neuroflow feedback`: drift of the served records against the training data, and the true
labels that turn the prediction log into live metrics."""

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from ..core.errors import ConfigError
from .options import SettingsRequest, model_options, with_options
from .output import friendly_errors

app = typer.Typer()
DRIFT_EXIT_CODE = 3

MONITOR_EXAMPLES = """Examples:

  neuroflow monitor                               # the champion's records of the last 24 h (monitoring.window_hours)

  neuroflow monitor --last 500 --json             # the last 500 records; a JSON object on stdout

  neuroflow monitor --since 6h --fail-on-drift    # exit code 3 when drift is found (for CI and schedulers)

  neuroflow monitor --since 2026-12-01T08:00 --model-name churn --version 4

Exit codes: 0 judged (or too few rows, which is said), 1 an error, 3 drift found with --fail-on-drift.
"""

FEEDBACK_EXAMPLES = """Examples:

  neuroflow feedback --data labels.csv --id-column request_id --target churned

  neuroflow feedback --data labels.parquet --id-column id --target price --model-name houses

Each request_id is one the service answered with (every prediction carries its own). Unknown ids are listed, never
stored.
"""


@app.command(epilog=MONITOR_EXAMPLES)
@friendly_errors
@with_options(model_options)
def monitor(
    request: SettingsRequest,
    last: Annotated[int | None, typer.Option(min=1, help="Judge the last N served records.")] = None,
    since: Annotated[
        str | None, typer.Option(help="Judge the records since a time: ISO (2026-12-01T08:00) or a span (30m, 6h, 2d).")
    ] = None,
    version: Annotated[
        str | None, typer.Option(help="The version whose records to judge (default: the one serving most recently).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as one JSON object.")] = False,
    fail_on_drift: Annotated[bool, typer.Option(help="Exit with code 3 when drift is found.")] = False,
) -> None:
    """Compare the served records with the training data of the version that served them (Evidently's drift tests
    per feature, prediction drift, data quality, live metrics where feedback exists) and log an MLflow monitoring run
    with the HTML report."""
    if last is not None and since is not None:
        raise ConfigError("give --last N or --since TIME, not both")
    from ..pipelines.steps.monitoring import parse_since

    try:
        moment = parse_since(since) if since is not None else None
    except ValueError:
        raise ConfigError(f"--since {since!r}: give an ISO time such as 2026-12-01T08:00, or 30m, 6h, 2d") from None
    settings = request.settings()
    from ..pipelines.bookkeeping.runs import store_errors
    from ..pipelines.steps.monitoring import monitor as judge

    with store_errors(settings.tracking):
        result = judge(settings, moment, last, version)
    if as_json:
        typer.echo(json.dumps(result.to_json()))
    else:
        typer.echo(result.paragraph())
        if result.run_url:
            typer.echo(f"report: {result.run_url} (drift_report.html)")
    if fail_on_drift and result.drift_detected:
        raise typer.Exit(DRIFT_EXIT_CODE)


@app.command(epilog=FEEDBACK_EXAMPLES)
@friendly_errors
@with_options(model_options)
def feedback(
    request: SettingsRequest,
    data: Annotated[Path, typer.Option(help="CSV or Parquet file of request ids and their true labels (or values).")],
    id_column: Annotated[str, typer.Option(help="The column holding the request ids.")] = "request_id",
    target: Annotated[str, typer.Option(help="The column holding the true label or value.")] = "label",
) -> None:
    """Store the true labels of served records, joined by request id to the prediction log (live metrics in
    `neuroflow monitor` and on the service's /metrics)."""
    if not data.is_file():
        raise ConfigError(f"--data {data} does not exist")
    if data.suffix.lower() not in (".csv", ".parquet", ".pq"):
        raise ConfigError(f"--data {data}: give a .csv or .parquet file")
    settings = request.settings()

    from ..core.predictionlog import feedback_frame, open_store, store_errors
    from ..core.store import reason
    from ..pipelines.steps.tables import read_table

    frame = read_table(data)
    missing = [f"'{name}'" for name in (id_column, target) if name not in frame.columns]
    if missing:
        columns = ", ".join(f"'{name}'" for name in frame.columns)
        raise ConfigError(f"{data} has no column {' or '.join(missing)}; its columns are {columns}")
    store = open_store(settings.service.prediction_log)
    if store is None:
        raise ConfigError("the prediction log is off (service.prediction_log: off): there is nothing to join to")
    frame = frame.dropna(subset=[id_column, target])
    ids = frame[id_column].astype(str).str.strip().tolist()
    try:
        known = store.known_ids(ids)
    except store_errors() as error:
        raise ConfigError(f"could not read the prediction log ({store.description}): {reason(error)}") from None
    kept = [index for index, request_id in enumerate(ids) if request_id in known]
    unknown = [request_id for request_id in ids if request_id not in known]
    if kept:
        labels = frame[target].iloc[kept].tolist()
        check_labels(settings, [ids[index] for index in kept], labels, data)
        store.write_feedback(feedback_frame([ids[index] for index in kept], labels))
    typer.echo(f"recorded {len(kept):,} label(s) in {store.description}")
    if unknown:
        shown = ", ".join(unknown[:5]) + (" ..." if len(unknown) > 5 else "")
        typer.echo(f"{len(unknown):,} id(s) match no served record and were not stored: {shown}", err=True)
        if not kept:
            raise typer.Exit(1)


def check_labels(settings: Any, ids: list[str], labels: list[Any], data: Path) -> None:
    """Refuse the whole file, as /feedback refuses the whole request, when a label does not fit the champion's
    target (one of its classes, or a finite number), naming the first rows."""
    from ..models.requests import label_problem
    from ..pipelines.bookkeeping import tracking
    from ..pipelines.steps.monitoring import champion_schema

    client = tracking.configure_tracking(settings.tracking)
    schema = champion_schema(client, settings.model_name, settings.promotion.alias)
    problems = [
        f"{request_id}: {problem}"
        for request_id, label in zip(ids, labels, strict=True)
        if (problem := label_problem(schema, label)) is not None
    ]
    if problems:
        more = f" (and {len(problems) - 5:,} more)" if len(problems) > 5 else ""
        raise ConfigError(
            f"{data}: {len(problems):,} label(s) do not fit {settings.model_name}'s target, so nothing was stored: "
            + "; ".join(problems[:5])
            + more
        )

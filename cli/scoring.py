"""`neuroflow predict`: score a CSV or Parquet file with a registered model, as the service would answer each row."""

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..core.errors import ConfigError
from .options import (
    DecimalOption,
    DelimiterOption,
    SettingsRequest,
    ThousandsOption,
    model_options,
    with_options,
)
from .output import friendly_errors

if TYPE_CHECKING:  # pandas and pydantic load only once a command needs them
    from ..pipelines.steps.scoring import ScoringModel

app = typer.Typer()

SCORING = "Scoring"
DASK = "Dask (files larger than one machine)"
PREDICT_EXAMPLES = """\
Examples:

  neuroflow predict --data new.csv -o scored.parquet                  # with the breast_cancer champion

  neuroflow predict --data new.parquet -o scored.csv --version 3 --keep customer_id

  neuroflow predict --data big.csv -o scored.parquet --strict         # fail on the first row the model cannot score

  neuroflow predict --data prices.csv -o scored.csv --delimiter ';' --decimal ,   # read as training read it

  neuroflow predict --data huge.csv -o scored.parquet --dask-address tcp://scheduler:8786   # a partitioned folder

Rows the service would refuse go to a rejects file (default: beside the output, NAME.rejects.csv) with their row
number and the reasons, and are not scored.
"""


def check_scoring_paths(data: Path, output: Path, rejects: Path | None, version: str | None, alias: str | None) -> None:
    """The command-line mistakes, found before any model is loaded."""
    from ..pipelines.steps.scoring import FORMATS, rejects_path

    problems = []
    if not data.is_file():
        problems.append(f"--data {data} does not exist (or is not a file)")
    elif data.suffix.lower() not in FORMATS:
        problems.append(f"--data {data} must be a .csv or .parquet file")
    if output.suffix.lower() not in FORMATS:
        problems.append(f"--output {output} must end in .csv or .parquet")
    if not output.parent.expanduser().resolve().is_dir():
        problems.append(f"the folder of --output {output} does not exist")
    if data.exists() and output.exists() and output.resolve() == data.resolve():
        problems.append("--output is the input file; choose another name")
    if rejects is not None and rejects.suffix.lower() not in FORMATS:
        problems.append(f"--rejects {rejects} must end in .csv or .parquet")
    if (rejects or rejects_path(output)).resolve() == output.resolve():
        problems.append("--rejects and --output are the same file")
    if version is not None and alias is not None:
        problems.append("give --version or --alias, not both")
    if problems:
        raise ConfigError("; ".join(problems) + ". See `neuroflow predict --help`.")


@app.command(epilog=PREDICT_EXAMPLES)
@friendly_errors
@with_options(model_options)
def predict(
    request: SettingsRequest,
    data: Annotated[Path, typer.Option(help="CSV or Parquet file to score.", rich_help_panel=SCORING)],
    output: Annotated[
        Path,
        typer.Option("--output", "-o", help="Where the scored rows go (.csv or .parquet).", rich_help_panel=SCORING),
    ],
    version: Annotated[
        str | None, typer.Option(help="Registered version to score with (default: the champion).")
    ] = None,
    alias: Annotated[str | None, typer.Option(help="Score with the version this alias points at.")] = None,
    rejects: Annotated[
        Path | None,
        typer.Option(
            help="Where refused rows go (default: NAME.rejects.csv beside the output).", rich_help_panel=SCORING
        ),
    ] = None,
    strict: Annotated[
        bool, typer.Option(help="Fail the whole run on the first row the model cannot score.", rich_help_panel=SCORING)
    ] = False,
    keep: Annotated[
        str | None,
        typer.Option(
            help="Input columns to keep in the output, comma-separated (default: all).", rich_help_panel=SCORING
        ),
    ] = None,
    chunk_rows: Annotated[
        int, typer.Option(min=1, help="Rows read, checked and written at a time.", rich_help_panel=SCORING)
    ] = 100_000,
    dask_address: Annotated[
        str | None,
        typer.Option(
            help="Score partitions on this Dask scheduler (tcp://HOST:8786); output: a partitioned Parquet folder.",
            rich_help_panel=DASK,
        ),
    ] = None,
    dask_workers: Annotated[
        int | None,
        typer.Option(min=1, help="Score partitions on a local Dask cluster of N processes.", rich_help_panel=DASK),
    ] = None,
    delimiter: DelimiterOption = None,
    decimal: DecimalOption = None,
    thousands: ThousandsOption = None,
) -> None:
    """Score a file with a registered model: every row checked as the service checks a request, then the prediction,
    one probability per class and the model version added to the input's columns."""
    check_scoring_paths(data, output, rejects, version, alias)
    if (dask_address or dask_workers) and output.suffix.lower() not in (".parquet", ".pq"):
        raise ConfigError(f"with Dask the output is a partitioned Parquet folder: name it NAME.parquet, not {output}")
    if dask_address and dask_workers:
        raise ConfigError("give --dask-address (an existing cluster) or --dask-workers (a local one), not both")
    settings = request.settings(data={"delimiter": delimiter, "decimal": decimal, "thousands": thousands})
    from ..pipelines.steps.scoring import count_rows, load_scoring_model, score_file

    model = load_scoring_model(settings, version, alias)
    kept = tuple(name.strip() for name in keep.split(",") if name.strip()) if keep else None
    if dask_address or dask_workers:
        result = score_with_dask(model, data, output, rejects, strict, kept, chunk_rows, dask_address, dask_workers)
        report(result)
        return
    with progress_bar(count_rows(data), f"scoring with {model.name} v{model.version}") as advance:
        result = score_file(model, data, output, rejects, strict, kept, chunk_rows, advance, settings.data)
    report(result)


def score_with_dask(
    model: "ScoringModel",
    data: Path,
    output: Path,
    rejects: Path | None,
    strict: bool,
    keep: tuple[str, ...] | None,
    chunk_rows: int,
    address: str | None,
    workers: int | None,
) -> Any:
    """Connect to the Dask cluster at `address` (or start a local one of `workers` processes) and score there."""
    from distributed import Client, LocalCluster

    from ..pipelines.steps.scoring import score_on_dask

    cluster = None if address else LocalCluster(n_workers=workers, threads_per_worker=1, dashboard_address=None)
    try:
        with Client(address or cluster) as client:
            typer.echo(
                f"scoring on Dask ({client.scheduler.address}, {len(client.scheduler_info()['workers'])} workers)"
            )
            return score_on_dask(model, data, output, rejects, strict, keep, chunk_rows)
    finally:
        if cluster is not None:
            cluster.close()


def report(result: Any) -> None:
    """What a scoring run did, in two lines."""
    typer.echo(
        f"scored {result.scored:,} of {result.rows:,} rows with {result.model_name} v{result.model_version} "
        f"in {result.seconds:.1f} s ({result.rows_per_second:,.0f} rows/s) → {result.output}"
    )
    if result.rejected:
        typer.echo(f"{result.rejected:,} row(s) refused → {result.rejects}; first: {result.first_problems[0]}")


@contextmanager
def progress_bar(total: int | None, description: str) -> Iterator[Callable[[int], None] | None]:
    """A rich progress bar with rows/s on a terminal; nothing otherwise (logs and CI stay clean)."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, Task, TextColumn, TimeElapsedColumn
    from rich.text import Text

    class RowsPerSecond(TextColumn):
        def render(self, task: Task) -> Text:
            speed = task.finished_speed or task.speed
            return Text("" if speed is None else f"{speed:,.0f} rows/s")

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), RowsPerSecond(""))
    with Progress(*columns, TimeElapsedColumn(), console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(description, total=total)
        yield lambda rows: progress.advance(task, rows)

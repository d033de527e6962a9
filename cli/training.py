"""`neuroflow train`, `tune`, `schedule`, `schema` and `config`: the commands that learn from data."""

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from ..core.errors import ConfigError
from ..core.settings import Settings, adopt_reference_model, load_settings, redact
from .options import (
    SCHEDULE,
    TUNING,
    ConfigOption,
    DataOption,
    DatasetOption,
    SettingsRequest,
    TargetOption,
    VerboseOption,
    option_overrides,
    training_options,
    with_options,
)
from .output import (
    friendly_errors,
    print_training_outcome,
    print_tuning_outcome,
    quiet_libraries,
    say,
    show_training_progress,
)

app = typer.Typer()

TRAIN_EXAMPLES = """\
Examples:

  neuroflow train                                     # breast_cancer, the defaults

  neuroflow train --data customers.csv --target churned --epochs 30

  neuroflow train --dataset wine --hidden-units 32 --dropout 0.2 --config examples/train.yaml

  neuroflow train --force                             # retrain though nothing changed since the champion
"""
TUNE_EXAMPLES = """\
Examples:

  neuroflow tune --trials 8 --parallel 2

  neuroflow tune --config examples/tune.yaml --dask-workers 2

  neuroflow tune --data customers.csv --target churned --strategy grid
"""
SCHEDULE_EXAMPLES = """\
Examples:

  neuroflow schedule --cron "0 3 * * *"                   # 03:00 UTC every day

  neuroflow schedule --cron "30 6 * * 1" --timezone Europe/Paris --data weekly.csv --target y
"""


def prepare(request: SettingsRequest, verbose: bool, **more: dict[str, object]) -> Settings:
    """Settings and every check that needs no library, before anything slow starts."""
    from .preflight import check_training_input  # pandas: not for --help

    settings = adopt_reference_model(request.settings(**more))
    check_training_input(settings)
    quiet_libraries(verbose)
    return settings


@contextmanager
def flows_running(verbose: bool, one_training: bool = True) -> Iterator[None]:
    """Run flows against Prefect's temporary server, started first so it boots while TensorFlow, MLflow and Great
    Expectations import on the other core (none when PREFECT_API_URL names a server), with the console set up for
    training; the server is stopped afterwards."""
    from .temporary_server import prefect_api, start_temporary_server

    server = start_temporary_server()
    if server is not None:
        say("starting Prefect's temporary server meanwhile (set PREFECT_API_URL to use a running one)")
    from ..pipelines import flows  # noqa: F401  (the heavy imports, while the server boots)
    from ..pipelines.steps import validation

    validation.load_great_expectations()
    display = show_training_progress(verbose, one_training)
    try:
        with prefect_api(server):
            yield
    finally:
        if display is not None:
            display.stop()


@app.command(epilog=TRAIN_EXAMPLES)
@friendly_errors
@with_options(training_options)
def train(
    request: SettingsRequest,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Train and register even when the data and settings equal those the champion was trained from.",
        ),
    ] = False,
    verbose: VerboseOption = False,
) -> None:
    """Validate, train, evaluate, log and register a model; it becomes champion only if it passes a smoke test and
    beats the current one. Data and settings unchanged since the champion register nothing (unless --force)."""
    settings = prepare(request, verbose)
    say(f"Training on {settings.data.name} → model {settings.model_name} (loading libraries…)")
    with flows_running(verbose):
        from ..pipelines.flows import training_flow

        outcome = training_flow(settings=settings, force=force)
    print_training_outcome(outcome)


@app.command(epilog=TUNE_EXAMPLES)
@friendly_errors
@with_options(training_options)
def tune(
    request: SettingsRequest,
    trials: Annotated[int | None, typer.Option(help="Trial budget (default: 8).", rich_help_panel=TUNING)] = None,
    strategy: Annotated[
        str | None, typer.Option(help="random or grid (default: random).", rich_help_panel=TUNING)
    ] = None,
    parallel: Annotated[
        int | None, typer.Option(help="Trials at the same time, as threads (default: 2).", rich_help_panel=TUNING)
    ] = None,
    dask_address: Annotated[
        str | None,
        typer.Option(
            help="Run trials on this Dask cluster (tcp://host:8786) through prefect-dask.", rich_help_panel=TUNING
        ),
    ] = None,
    dask_workers: Annotated[
        int | None,
        typer.Option(help="Run trials on a local Dask cluster of N worker processes.", rich_help_panel=TUNING),
    ] = None,
    verbose: VerboseOption = False,
) -> None:
    """Search the network's knobs (config file's `tuning.space`): each trial is a nested MLflow run; the best one is
    registered and offered to the same promotion gate as `train`.

    Trials run in parallel: as threads by default, or on Dask (--dask-workers N, --dask-address). With the default
    SQLite store, parallel writes are retried; a tracking server is the better home for many parallel trials.
    """
    if dask_address and dask_workers:
        raise ConfigError("give either --dask-address (an existing cluster) or --dask-workers (a local one), not both")
    settings = prepare(request, verbose, tuning={"trials": trials, "strategy": strategy, "parallel": parallel})
    where = (
        f"the Dask cluster at {dask_address}"
        if dask_address
        else f"a local Dask cluster of {dask_workers} processes"
        if dask_workers
        else f"{settings.tuning.parallel} threads"
    )
    say(
        f"Tuning {settings.model_name} on {settings.data.name}: {settings.tuning.trials} {settings.tuning.strategy} "
        f"trials on {where} (loading libraries…)"
    )
    with flows_running(verbose, one_training=False):  # trials train side by side: one line per epoch
        from ..pipelines.flows import task_runner, tuning_flow

        runner = task_runner(settings.tuning.parallel, dask_address, dask_workers)
        outcome = tuning_flow.with_options(task_runner=runner)(settings)
    print_tuning_outcome(outcome)


@app.command(epilog=SCHEDULE_EXAMPLES)
@friendly_errors
@with_options(training_options)
def schedule(
    request: SettingsRequest,
    cron: Annotated[
        str,
        typer.Option(
            help='When to train, as a cron expression, e.g. "0 3 * * *" (03:00 daily).', rich_help_panel=SCHEDULE
        ),
    ],
    timezone: Annotated[str, typer.Option(help="Time zone of the cron expression.", rich_help_panel=SCHEDULE)] = "UTC",
    name: Annotated[
        str,
        typer.Option(help="Deployment name, shown in the Prefect UI as training/NAME.", rich_help_panel=SCHEDULE),
    ] = "scheduled",
    verbose: VerboseOption = False,
) -> None:
    """Serve the training flow as a Prefect deployment on a cron schedule, until Ctrl+C (the schedule stays active).

    Needs a Prefect server (PREFECT_API_URL); runs happen in this process with the options given here. For shared
    infrastructure, deploy prefect.yaml to a work pool instead (see README, "Running it as a team").
    """
    settings = prepare(request, verbose)
    from prefect.schedules import Cron, validate_cron_string

    try:
        validate_cron_string(cron)
    except ValueError as error:
        raise ConfigError(f'invalid --cron {cron!r}: {error}; for example "0 3 * * *" is 03:00 every day') from None
    from ..core.store import export_credentials
    from ..pipelines.flows import training_flow
    from .temporary_server import check_prefect_server

    api_url = check_prefect_server()
    # Runs may start in another working directory: files are passed by absolute path.
    data = request.overrides.get("data", {})
    files = {key: Path(data[key]).resolve() for key in ("path", "reference_schema") if data.get(key) is not None}
    # The deployment's parameters are stored on the Prefect server: the URIs go without credentials, which this
    # process (it runs the flows) hands to MLflow through MLflow's own variables.
    tracking = request.overrides.get("tracking", {})
    clean = {key: getattr(settings.tracking, key) for key in ("tracking_uri", "registry_uri") if key in tracking}
    tracking = {key: value for key, value in tracking.items() if key not in ("username", "password")} | clean
    export_credentials(settings.tracking)
    overrides = request.overrides | {"data": data | files} | ({"tracking": tracking} if tracking else {})
    parameters = {
        "overrides": json.loads(json.dumps(overrides, default=str)),
        "config_file": str(request.config.resolve()) if request.config else None,
    }
    typer.echo(f"Scheduling training of {settings.model_name} at {cron!r} ({timezone}) on the Prefect server {api_url}")
    typer.echo(f"  runs are logged to the MLflow store {settings.tracking.tracking_uri}")
    typer.echo(f"  browse them in the MLflow UI at    {settings.tracking.browser_url}")
    typer.echo("  Ctrl+C stops serving runs; the schedule itself stays active for when this command runs again.")
    show_training_progress(verbose, one_training=False)  # runs are logs, however this command was started
    training_flow.serve(
        name=name,
        schedules=[Cron(cron, timezone=timezone)],
        parameters=parameters,
        description=f"Train {settings.model_name} on {settings.data.name} at {cron!r} ({timezone}).",
        tags=["neuroflow", settings.model_name],
        pause_on_shutdown=False,
    )


@app.command(epilog="Example:\n\n  neuroflow schema --data march.csv --target churned --output reference.json")
@friendly_errors
def schema(
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the schema JSON.")] = Path(
        "schema.json"
    ),
    config: ConfigOption = None,
    dataset: DatasetOption = None,
    data: DataOption = None,
    target: TargetOption = None,
) -> None:
    """Learn the schema of a data set and write it, to validate later data against (`train --reference-schema`)."""
    from .preflight import check_training_input

    settings = load_settings(config, option_overrides(dataset=dataset, data=data, target=target))
    check_training_input(settings)
    from ..pipelines.steps.data import drop_unlearnable_columns, learn_schema, load_dataset

    loaded, dropped = drop_unlearnable_columns(load_dataset(settings.data))
    learned = learn_schema(loaded, None, settings.data.categorical, dropped)
    replace(learned, model_name=settings.model_name).save(output)
    typer.echo(f"schema of {loaded.name} ({loaded.frame.shape[1] - 1} features, {loaded.task}) written to {output}")
    for name, reason in dropped.items():
        typer.echo(f"  left out {name!r}: {reason}")


@app.command(epilog="Example:\n\n  NEUROFLOW_NETWORK__EPOCHS=20 neuroflow config --config examples/train.yaml")
@friendly_errors
def config(config: ConfigOption = None) -> None:
    """Show the settings in effect (defaults, config file, environment), as YAML."""
    import yaml

    settings = load_settings(config)
    typer.echo(redact(yaml.safe_dump(settings.model_dump(mode="json"), sort_keys=False).rstrip()))

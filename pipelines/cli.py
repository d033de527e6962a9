"""`neuroflow`: train, promote, roll back and browse models. Heavy libraries load only when a command needs them."""

import atexit
import contextlib
import functools
import inspect
import json
import os
import signal
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from neuroflow.errors import ConfigError, NeuroflowError
from neuroflow.settings import Settings, load_settings

if TYPE_CHECKING:
    from pipelines.temporary_server import TemporaryServer

app = typer.Typer(
    name="neuroflow",
    help=(
        "From a tabular data set to a registered, versioned neural network.\n\n"
        "Settings come from options, NEUROFLOW_* environment variables (nested with __, e.g. "
        "NEUROFLOW_NETWORK__EPOCHS=20), a .env file and --config FILE (YAML or TOML), in that order."
    ),
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)

Command = TypeVar("Command", bound=Callable[..., Any])

ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="YAML or TOML file with settings (see README).")
]
DatasetOption = Annotated[str | None, typer.Option(help="Bundled data set: breast_cancer (default), wine or diabetes.")]
ModelNameOption = Annotated[str | None, typer.Option(help="Registered model name (default: neuroflow-<data set>).")]
TrackingOption = Annotated[str | None, typer.Option(help="MLflow tracking URI (default: sqlite:///mlflow.db).")]


def friendly_errors(command: Command) -> Command:
    """Print the project's errors as one clear message and exit 1, without a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except NeuroflowError as error:
            typer.secho(f"error: {error}", fg=typer.colors.RED, err=True)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def build_overrides(**sections: dict[str, Any]) -> dict[str, Any]:
    """Nested overrides from options that were given; options left out leave env and config file in charge."""
    return {
        name: given
        for name, values in sections.items()
        if (given := {k: v for k, v in values.items() if v is not None})
    }


def settings_for(
    config: Path | None,
    dataset: str | None = None,
    model_name: str | None = None,
    tracking_uri: str | None = None,
) -> Settings:
    return load_settings(
        config,
        build_overrides(data={"dataset": dataset}, tracking={"model_name": model_name, "tracking_uri": tracking_uri}),
    )


@dataclass(frozen=True)
class TrainingRequest:
    """What `train` and `schedule` were told: a config file and the settings given as options."""

    config: Path | None
    overrides: dict[str, Any]


def training_options(
    config: ConfigOption = None,
    dataset: DatasetOption = None,
    data: Annotated[Path | None, typer.Option(help="CSV or Parquet file to train on (needs --target).")] = None,
    target: Annotated[str | None, typer.Option(help="Target column of --data.")] = None,
    task: Annotated[str | None, typer.Option(help="auto, binary, multiclass or regression (default: auto).")] = None,
    categorical: Annotated[
        str | None, typer.Option(help="Columns holding category codes as numbers, e.g. plan,region_code.")
    ] = None,
    reference_schema: Annotated[
        Path | None,
        typer.Option(help="Validate against this schema (from `neuroflow schema`) instead of learning one."),
    ] = None,
    delimiter: Annotated[
        str | None, typer.Option(help="Column separator of a CSV file (default: detected among , ; tab |).")
    ] = None,
    decimal: Annotated[
        str | None, typer.Option(help="Decimal mark of numbers in a CSV file: . or , (default: .).")
    ] = None,
    thousands: Annotated[
        str | None,
        typer.Option(help="Thousands separator of numbers in a CSV file, e.g. , for 12,345 (default: none)."),
    ] = None,
    hidden_units: Annotated[str | None, typer.Option(help="Hidden layer sizes, e.g. 64,32 (default: 64,32).")] = None,
    activation: Annotated[str | None, typer.Option(help="relu, tanh or sigmoid (default: relu).")] = None,
    dropout: Annotated[float | None, typer.Option(help="Dropout rate after each hidden layer (default: 0).")] = None,
    l2: Annotated[float | None, typer.Option(help="L2 weight penalty (default: 0).")] = None,
    optimizer: Annotated[str | None, typer.Option(help="adam, rmsprop or sgd (default: adam).")] = None,
    learning_rate: Annotated[float | None, typer.Option(help="Default: 0.001.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Default: 32.")] = None,
    epochs: Annotated[int | None, typer.Option(help="Maximum epochs (default: 50).")] = None,
    patience: Annotated[int | None, typer.Option(help="Early-stopping patience in epochs (default: 10).")] = None,
    class_weight: Annotated[
        str | None, typer.Option(help="none or balanced: weigh rare classes up (default: none).")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Seed for the split and the network (default: 42).")] = None,
    test_size: Annotated[float | None, typer.Option(help="Share of rows held out for testing (default: 0.2).")] = None,
    validation_size: Annotated[
        float | None, typer.Option(help="Share of the rest for validation (default: 0.2).")
    ] = None,
    min_improvement: Annotated[
        float | None,
        typer.Option(help="How much the primary metric must improve to take the alias (default: 0)."),
    ] = None,
    model_name: ModelNameOption = None,
    experiment: Annotated[str | None, typer.Option(help="MLflow experiment (default: neuroflow).")] = None,
    tracking_uri: TrackingOption = None,
) -> TrainingRequest:
    """The training options `train` and `schedule` share, as a config file plus nested overrides."""
    overrides = build_overrides(
        data={
            "dataset": dataset,
            "path": data,
            "target": target,
            "task": task,
            "categorical": categorical,
            "seed": seed,
            "test_size": test_size,
            "validation_size": validation_size,
            "reference_schema": reference_schema,
            "delimiter": delimiter,
            "decimal": decimal,
            "thousands": thousands,
        },
        network={
            "hidden_units": hidden_units,
            "activation": activation,
            "dropout": dropout,
            "l2": l2,
            "optimizer": optimizer,
            "learning_rate": learning_rate,
            "batch_size": batch_size,
            "epochs": epochs,
            "patience": patience,
            "class_weight": class_weight,
        },
        tracking={"model_name": model_name, "experiment": experiment, "tracking_uri": tracking_uri},
        promotion={"min_improvement": min_improvement},
    )
    return TrainingRequest(config, overrides)


def with_training_options(command: Command) -> Command:
    """Give a command every training option; it receives them as `request: TrainingRequest`."""
    shared = list(inspect.signature(training_options).parameters.values())
    own = [parameter for parameter in inspect.signature(command).parameters.values() if parameter.name != "request"]

    def wrapper(**kwargs: Any) -> Any:
        request = training_options(**{parameter.name: kwargs.pop(parameter.name) for parameter in shared})
        return command(request=request, **kwargs)

    functools.update_wrapper(wrapper, command)
    del wrapper.__wrapped__  # type: ignore[attr-defined]
    wrapper.__signature__ = inspect.Signature([*own, *shared])  # type: ignore[attr-defined]
    wrapper.__annotations__ = {parameter.name: parameter.annotation for parameter in [*own, *shared]}
    return wrapper  # type: ignore[return-value]


@app.command()
@friendly_errors
@with_training_options
def train(request: TrainingRequest) -> None:
    """Validate, train, evaluate, log and register a model; it becomes champion only if it beats the current one."""
    settings = load_settings(request.config, request.overrides)
    preflight(settings)
    typer.echo(f"Training on {settings.data.name} → model {settings.model_name} (loading libraries…)", err=True)
    server = start_prefect_server()
    from pipelines.flows import training_flow

    with prefect_api(server):
        outcome = training_flow(settings)
    print_outcome(outcome)


def start_prefect_server() -> "TemporaryServer | None":
    """Start Prefect's temporary server now, when no PREFECT_API_URL is set, so that it boots while TensorFlow and
    the rest import (both take seconds, on different cores). Returns it, or None when a server is configured."""
    from pipelines.temporary_server import start_temporary_server

    server = start_temporary_server()
    if server is not None:
        typer.echo("starting Prefect's temporary server meanwhile (set PREFECT_API_URL to use a running one)", err=True)
    return server


def prefect_api(server: "TemporaryServer | None") -> contextlib.AbstractContextManager[None]:
    """Wait for the temporary server (loading what the first steps need meanwhile) and run against it."""
    from pipelines import validation
    from pipelines.temporary_server import prefect_api as use_server

    validation.load_great_expectations()
    return use_server(server)


@app.command()
@friendly_errors
@with_training_options
def schedule(
    request: TrainingRequest,
    cron: Annotated[str, typer.Option(help='When to train, as a cron expression, e.g. "0 3 * * *" (03:00 daily).')],
    timezone: Annotated[str, typer.Option(help="Time zone of the cron expression.")] = "UTC",
    name: Annotated[str, typer.Option(help="Deployment name, shown in the Prefect UI as training/NAME.")] = "scheduled",
) -> None:
    """Serve the training flow as a Prefect deployment on a cron schedule, until Ctrl+C (the schedule stays active).

    Needs a Prefect server (PREFECT_API_URL); runs happen in this process with the options given here. For shared
    infrastructure, deploy prefect.yaml to a work pool instead (see README, "Running it as a team").
    """
    settings = load_settings(request.config, request.overrides)
    preflight(settings)
    from prefect.schedules import Cron, validate_cron_string

    try:
        validate_cron_string(cron)
    except ValueError as error:
        raise ConfigError(f'invalid --cron {cron!r}: {error}; for example "0 3 * * *" is 03:00 every day') from None
    api_url = prefect_server()
    from pipelines.flows import training_flow

    # Runs may start in another working directory: files are passed by absolute path.
    data = request.overrides.get("data", {})
    files = {key: Path(data[key]).resolve() for key in ("path", "reference_schema") if data.get(key) is not None}
    parameters = {
        "overrides": json.loads(json.dumps(request.overrides | {"data": data | files}, default=str)),
        "config_file": str(request.config.resolve()) if request.config else None,
    }
    typer.echo(f"Scheduling training of {settings.model_name} at {cron!r} ({timezone}) on the Prefect server {api_url}")
    typer.echo(f"  runs are logged to  {settings.tracking.browser_url}")
    typer.echo("  Ctrl+C stops serving runs; the schedule itself stays active for when this command runs again.")
    training_flow.serve(
        name=name,
        schedules=[Cron(cron, timezone=timezone)],
        parameters=parameters,
        description=f"Train {settings.model_name} on {settings.data.name} at {cron!r} ({timezone}).",
        tags=["neuroflow", settings.model_name],
        pause_on_shutdown=False,
    )


@app.command()
@friendly_errors
@with_training_options
def tune(
    request: TrainingRequest,
    trials: Annotated[int | None, typer.Option(help="Trial budget (default: 8).")] = None,
    strategy: Annotated[str | None, typer.Option(help="random or grid (default: random).")] = None,
    parallel: Annotated[int | None, typer.Option(help="Trials at the same time, as threads (default: 2).")] = None,
    dask_address: Annotated[
        str | None, typer.Option(help="Run trials on this Dask cluster (tcp://host:8786) through prefect-dask.")
    ] = None,
    dask_workers: Annotated[
        int | None, typer.Option(help="Run trials on a local Dask cluster of N worker processes.")
    ] = None,
) -> None:
    """Search the network's knobs (config file's `tuning.space`): each trial is a nested MLflow run; the best one is
    registered and offered to the same promotion gate as `train`.

    Trials run in parallel: as threads by default, or on Dask (--dask-workers N, --dask-address). With the default
    SQLite store, parallel writes are retried; a tracking server is the better home for many parallel trials.
    """
    overrides = request.overrides | build_overrides(
        tuning={"trials": trials, "strategy": strategy, "parallel": parallel}
    )
    settings = load_settings(request.config, overrides)
    preflight(settings)
    if dask_address and dask_workers:
        raise ConfigError("give either --dask-address (an existing cluster) or --dask-workers (a local one), not both")
    where = (
        f"the Dask cluster at {dask_address}"
        if dask_address
        else f"a local Dask cluster of {dask_workers} processes"
        if dask_workers
        else f"{settings.tuning.parallel} threads"
    )
    typer.echo(
        f"Tuning {settings.model_name} on {settings.data.name}: {settings.tuning.trials} {settings.tuning.strategy} "
        f"trials on {where} (loading libraries…)",
        err=True,
    )
    server = start_prefect_server()
    from pipelines.flows import task_runner, tuning_flow

    with prefect_api(server):
        runner = task_runner(settings.tuning.parallel, dask_address, dask_workers)
        outcome = tuning_flow.with_options(task_runner=runner)(settings)
    typer.echo("")
    for row in outcome["trials"]:
        knobs = "  ".join(
            f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
            for k, v in row.items()
            if k not in ("trial", "status", "val_loss", "epochs", "seconds") and not k.startswith("test_")
        )
        loss = f"{row['val_loss']:.4f}" if row["val_loss"] == row["val_loss"] and row["val_loss"] is not None else "—"
        typer.echo(f"  trial {row['trial']:>2}  {row['status']:<13} val_loss {loss:<8} {knobs}")
    typer.secho(
        f"best: trial {outcome['best_trial']} → {outcome['model_name']} version {outcome['version']} "
        f"{verdict(outcome)}.",
        bold=True,
    )
    typer.echo(f"  decision:     {outcome['decision']}")
    typer.echo(f"  search run:   {outcome['run_url']}")


def prefect_server() -> str:
    """The Prefect API URL in use, after checking that it answers; scheduling needs a real server."""
    from prefect.settings import PREFECT_API_URL

    api_url = PREFECT_API_URL.value()
    if not api_url:
        raise ConfigError(
            "scheduling needs a Prefect server: start one with `prefect server start` and "
            "`export PREFECT_API_URL=http://127.0.0.1:4200/api`, or use the compose stack (README)"
        )
    try:
        with urllib.request.urlopen(f"{api_url.rstrip('/')}/health", timeout=10) as response:
            response.read()
    except (OSError, ValueError) as error:
        raise ConfigError(f"the Prefect server at {api_url} does not answer ({error}); is it running?") from None
    return str(api_url)


def preflight(settings: Settings) -> None:
    """Fail in a blink, before libraries and the Prefect server start, when a file named in the settings is absent."""
    for label, path in (
        ("data file", settings.data.path),
        ("reference schema", settings.data.reference_schema),
    ):
        if path is not None and not path.expanduser().is_file():
            raise ConfigError(f"{label} {path} does not exist; check the path")


def verdict(outcome: dict[str, Any]) -> str:
    """What the promotion gate made of a new version, as the end of a sentence."""
    if outcome["promoted"]:
        return "is now champion"
    return f"did not take the alias (champion stays v{outcome['champion_version']})"


def print_outcome(outcome: dict[str, Any]) -> None:
    """The result of a training run, and where to look at it."""
    metrics = "  ".join(f"{name} {value:.4f}" for name, value in outcome["test_metrics"].items())
    typer.echo("")
    typer.secho(f"{outcome['model_name']} version {outcome['version']} {verdict(outcome)}.", bold=True)
    typer.echo(f"  test metrics: {metrics}")
    typer.echo(f"  decision:     {outcome['decision']}")
    typer.echo(f"  MLflow run:   {outcome['run_id']} (experiment {outcome['experiment_id']})")
    hint = "" if outcome["tracking_uri"].startswith("http") else "   (start the UI with `neuroflow ui`)"
    typer.echo(f"  see it at     {outcome['run_url']}{hint}")


@app.command()
@friendly_errors
def promote(
    version: Annotated[str, typer.Argument(help="Model version to make champion.")],
    config: ConfigOption = None,
    dataset: DatasetOption = None,
    model_name: ModelNameOption = None,
    tracking_uri: TrackingOption = None,
) -> None:
    """Move the champion alias to VERSION by hand (recorded in the alias history)."""
    from pipelines import registry, tracking

    settings = settings_for(config, dataset, model_name, tracking_uri)
    client = tracking.configure_tracking(settings.tracking)
    registry.promote_version(client, settings.model_name, settings.promotion.alias, version)
    typer.echo(f"{settings.model_name}@{settings.promotion.alias} → version {version}")


@app.command()
@friendly_errors
def rollback(
    config: ConfigOption = None,
    dataset: DatasetOption = None,
    model_name: ModelNameOption = None,
    tracking_uri: TrackingOption = None,
) -> None:
    """Give the champion alias back to the version that held it before the current one."""
    from pipelines import registry, tracking

    settings = settings_for(config, dataset, model_name, tracking_uri)
    client = tracking.configure_tracking(settings.tracking)
    version = registry.rollback(client, settings.model_name, settings.promotion.alias)
    typer.echo(f"{settings.model_name}@{settings.promotion.alias} → version {version} (rolled back)")


@app.command()
@friendly_errors
def history(
    config: ConfigOption = None,
    dataset: DatasetOption = None,
    model_name: ModelNameOption = None,
    tracking_uri: TrackingOption = None,
) -> None:
    """List every move of the champion alias, oldest first."""
    from pipelines import registry, tracking

    settings = settings_for(config, dataset, model_name, tracking_uri)
    client = tracking.configure_tracking(settings.tracking)
    entries = registry.alias_history(client, settings.model_name)
    if not entries:
        typer.echo(f"{settings.model_name} has no alias moves yet.")
    for entry in entries:
        previous = f"(was v{entry['previous']})" if entry.get("previous") else "(first)"
        moved = f"{entry['alias']} → v{entry['version']:<4} {previous:<10}"
        typer.echo(f"{entry['at']}  {moved} {entry['action']:<8} {entry['reason']}")


@app.command()
@friendly_errors
def schema(
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the schema JSON.")] = Path(
        "schema.json"
    ),
    config: ConfigOption = None,
    dataset: DatasetOption = None,
    data: Annotated[Path | None, typer.Option(help="CSV or Parquet file.")] = None,
    target: Annotated[str | None, typer.Option(help="Target column of --data.")] = None,
) -> None:
    """Learn the schema of a data set and write it, to validate later data against (`train --reference-schema`)."""
    from pipelines.data import drop_unlearnable_columns, learn_schema, load_dataset

    settings = load_settings(config, build_overrides(data={"dataset": dataset, "path": data, "target": target}))
    loaded, dropped = drop_unlearnable_columns(load_dataset(settings.data))
    learn_schema(loaded, None, settings.data.categorical, dropped).save(output)
    typer.echo(f"schema of {loaded.name} ({loaded.frame.shape[1] - 1} features, {loaded.task}) written to {output}")
    for name, reason in dropped.items():
        typer.echo(f"  left out {name!r}: {reason}")


@app.command()
@friendly_errors
def config(config: ConfigOption = None) -> None:
    """Show the settings in effect (defaults, config file, environment), as YAML."""
    import yaml

    settings = load_settings(config)
    typer.echo(yaml.safe_dump(settings.model_dump(mode="json"), sort_keys=False).rstrip())


@app.command()
@friendly_errors
def ui(
    config: ConfigOption = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the MLflow UI.")] = 5000,
    tracking_uri: TrackingOption = None,
) -> None:
    """Open the MLflow UI on the local store (or say where the configured tracking server is)."""
    settings = settings_for(config, tracking_uri=tracking_uri)
    uri = settings.tracking.tracking_uri
    if uri.startswith(("http://", "https://")):
        typer.echo(f"Runs are on the tracking server {uri}: open {settings.tracking.browser_url} in a browser.")
        return
    typer.echo(f"MLflow UI on {uri}: http://{host}:{port}  (Ctrl+C to stop)")
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "ui",
        "--backend-store-uri",
        uri,
        "--host",
        host,
        "--port",
        str(port),
    ]
    with contextlib.suppress(KeyboardInterrupt):
        subprocess.run(command, check=False, env=os.environ.copy())


@app.command()
@friendly_errors
def serve(
    config: ConfigOption = None,
    dataset: DatasetOption = None,
    model_name: ModelNameOption = None,
    tracking_uri: TrackingOption = None,
    host: Annotated[str | None, typer.Option(help="Interface to listen on (default: 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: 3000).")] = None,
    workers: Annotated[int | None, typer.Option(help="Server processes (default: 1).")] = None,
    bento: Annotated[
        str | None, typer.Option(help="Serve a Bento from `neuroflow build` (its baked model; no registry).")
    ] = None,
) -> None:
    """Serve the champion over HTTP (BentoML): POST /predict, GET /metadata, /readyz, /metrics, /docs.

    The service follows the champion: it checks the registry every service.poll_seconds and on POST /reload.
    """
    settings = load_settings(
        config,
        build_overrides(
            data={"dataset": dataset},
            tracking={"model_name": model_name, "tracking_uri": tracking_uri},
            service={"host": host, "port": port, "workers": workers},
        ),
    )
    service = settings.service
    env = {
        **os.environ,
        "NEUROFLOW_TRACKING__MODEL_NAME": settings.model_name,
        "NEUROFLOW_TRACKING__TRACKING_URI": settings.tracking.tracking_uri,
        "NEUROFLOW_SERVICE__HOST": service.host,
        "NEUROFLOW_SERVICE__PORT": str(service.port),
        "NEUROFLOW_SERVICE__WORKERS": str(service.workers),
    }
    if config is not None:
        env["NEUROFLOW_CONFIG"] = str(config.resolve())
    target = bento or "service.service:Neuroflow"
    what = f"Bento {bento}" if bento else f"{settings.model_name}@{settings.promotion.alias}"
    typer.echo(f"serving {what} on http://{service.host}:{service.port}  (docs at /docs, Ctrl+C to stop)")
    command = [
        sys.executable,
        "-m",
        "bentoml",
        "serve",
        target,
        "--host",
        service.host,
        "--port",
        str(service.port),
    ]
    returncode = run_until_stopped(command, env)
    if returncode not in (0, -2, 130, -signal.SIGTERM, 128 + signal.SIGTERM):
        raise typer.Exit(returncode)


def run_until_stopped(command: list[str], env: dict[str, str]) -> int:
    """Run a server in the foreground until it ends. A stop request for this process (SIGTERM from a process manager,
    SIGHUP when the terminal goes) is passed on to it, and Ctrl+C reaches it with the terminal's process group;
    either way it is waited for, so it never outlives the command still holding its port."""
    from pipelines.processes import stop_process

    process = subprocess.Popen(command, env=env)

    def pass_on(signum: int, _frame: object) -> None:
        process.send_signal(signum)

    previous = {number: signal.signal(number, pass_on) for number in (signal.SIGTERM, signal.SIGHUP)}
    try:
        return process.wait()
    except KeyboardInterrupt:
        # The server normally got the same Ctrl+C and is shutting down; if it did not (a SIGINT sent to this process
        # alone), it is asked to stop after a grace period, then killed. Another Ctrl+C kills it at once.
        try:
            with contextlib.suppress(subprocess.TimeoutExpired):
                return process.wait(timeout=10)
            return stop_process(process, grace=10)
        except KeyboardInterrupt:
            process.kill()
            return process.wait()
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


@app.command()
@friendly_errors
def build(
    version: Annotated[str | None, typer.Option(help="Registered version to bake in (default: the champion).")] = None,
    config: ConfigOption = None,
    dataset: DatasetOption = None,
    model_name: ModelNameOption = None,
    tracking_uri: TrackingOption = None,
) -> None:
    """Build a Bento with a registered model baked in; it serves with no registry (`neuroflow serve --bento TAG`)."""
    from service.bento import build_bento

    settings = settings_for(config, dataset, model_name, tracking_uri)
    built = build_bento(settings, version)
    typer.echo(f"built Bento {built.bento_tag} with {built.info.name} version {built.info.version}")
    typer.echo(f"  model:       {built.model_tag} (BentoML model store)")
    typer.echo(f"  serve it:    neuroflow serve --bento {built.bento_tag}")
    typer.echo(f"  image:       bentoml containerize {built.bento_tag}")


def main() -> None:
    """Entry point of the `neuroflow` command."""
    try:
        app()
    except SystemExit as done:
        exit_now(done.code)


def exit_now(code: int | str | None) -> None:
    """Leave as Python would, minus tearing down every imported module: with TensorFlow, MLflow and Great
    Expectations loaded that alone takes ~1.7 s here. Python's own shutdown steps run first, in its order: threads
    are joined and their exit hooks run (Prefect sends its last events there), then the exit handlers."""
    shutdown_threads = getattr(threading, "_shutdown", None)
    if shutdown_threads is None:  # not CPython as we know it: the ordinary exit
        sys.exit(code)
    if isinstance(code, str):
        print(code, file=sys.stderr)
        code = 1
    shutdown_threads()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code or 0)

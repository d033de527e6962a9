"""What the `neuroflow` command shows a person: errors as one paragraph, outcomes, a live training display in a
terminal, and none of the libraries' own chatter unless asked (`--verbose`)."""

import atexit
import contextlib
import functools
import logging
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer
import typer.exceptions

from ..core.errors import NeuroflowError

if TYPE_CHECKING:
    from ..pipelines.outcomes import TrainingOutcome, TuningOutcome, UnchangedOutcome

Command = TypeVar("Command", bound=Callable[..., Any])
TRAINING_LOGGER = "neuroflow.pipelines.steps.training"


def friendly_errors(command: Command) -> Command:
    """Print the project's errors as one clear message and exit 1, without a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except NeuroflowError as error:
            typer.secho(f"error: {error}", fg=typer.colors.RED, err=True)
            raise typer.Exit(1) from None
        except (typer.Exit, typer.Abort, typer.exceptions.TyperException):  # the command line's own endings
            raise
        except Exception as error:  # a bug: said as one, never as the registry's or the data's fault
            if kwargs.get("verbose"):
                raise
            typer.secho(f"error: {internal_error(error)}", fg=typer.colors.RED, err=True)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


PACKAGE = Path(__file__).resolve().parents[1]  # the neuroflow package's folder
ROOMS = ("core", "models", "pipelines", "service", "cli")  # its code (not the tests or benchmarks beside it)


def internal_error(error: BaseException) -> str:
    """One paragraph for an error neuroflow did not mean: where in neuroflow it happened (the innermost of its own
    frames), what it was, and what to do."""
    where = "neuroflow"
    for frame in reversed(traceback.extract_tb(error.__traceback__)):
        path = Path(frame.filename).resolve()
        if PACKAGE in path.parents and path.relative_to(PACKAGE).parts[0] in ROOMS:
            where = ".".join(path.relative_to(PACKAGE).with_suffix("").parts) + f".{frame.name}"
            break
    return (
        f"internal error in {where}: {type(error).__name__}: {error}. This is a bug in neuroflow, not a problem with "
        "your data, settings or stores; rerun with --verbose for the traceback, and report it."
    )


def say(message: str) -> None:
    """A progress note for the person at the terminal (stderr, so stdout stays the result)."""
    typer.echo(message, err=True)


class ConsoleFilter(logging.Filter):
    """For the console only. `own_only`: neuroflow's own lines and every warning; Prefect's task bookkeeping,
    MLflow's store notes and Great Expectations' temp folders stay in the Prefect UI's logs and in --verbose.
    `hide_epochs`: leave out the epoch lines a live display draws instead."""

    def __init__(self, own_only: bool, hide_epochs: bool) -> None:
        super().__init__()
        self.own_only = own_only
        self.hide_epochs = hide_epochs

    def filter(self, record: logging.LogRecord) -> bool:
        if self.hide_epochs and hasattr(record, "epoch"):
            return False
        return not self.own_only or record.levelno >= logging.WARNING or record.name.startswith("neuroflow")


def quiet_libraries(verbose: bool) -> None:
    """Before the libraries load: MLflow logs warnings only, unless --verbose (or MLFLOW_LOGGING_LEVEL) says more."""
    if not verbose:
        os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")


def filter_console(verbose: bool, live_epochs: bool) -> None:
    """Once Prefect has set up logging: its console handlers show what `ConsoleFilter` lets through."""
    if verbose and not live_epochs:
        return
    from prefect.logging.handlers import PrefectConsoleHandler

    console_filter = ConsoleFilter(own_only=not verbose, hide_epochs=live_epochs)
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    for logger in loggers:
        for handler in getattr(logger, "handlers", ()):
            filtered = any(isinstance(present, ConsoleFilter) for present in handler.filters)
            if isinstance(handler, PrefectConsoleHandler) and not filtered:
                handler.addFilter(console_filter)
    if not verbose:
        logging.getLogger("great_expectations").setLevel(logging.WARNING)


class EpochDisplay(logging.Handler):
    """In a terminal: one live line while a network trains (epoch n/N, a bar, the latest metrics, elapsed and
    remaining time until the epoch cap; early stopping may end it sooner)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.progress: Any = None
        self.task: Any = None

    def emit(self, record: logging.LogRecord) -> None:
        if hasattr(record, "epoch"):
            if self.progress is None:  # drawn from the first epoch on: lines logged before it print undisturbed
                self.start(int(getattr(record, "epochs", 0)))
            metrics = getattr(record, "metrics", {})
            shown = "  ".join(
                f"{name} {value:.4f}" for name, value in metrics.items() if "loss" in name or "auc" in name
            )
            self.progress.update(self.task, completed=int(getattr(record, "epoch", 0)), metrics=shown)
        elif getattr(record, "training_done", False):
            self.stop()

    def start(self, epochs: int) -> None:
        """Draw a new live line for a training of up to `epochs` epochs."""
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn("epoch {task.completed}/{task.total}"),
            BarColumn(bar_width=24),
            TimeElapsedColumn(),
            TextColumn("≤"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[metrics]}"),
            console=Console(stderr=True),
        )
        self.task = self.progress.add_task("training", total=epochs, metrics="")
        self.progress.start()

    def stop(self) -> None:
        """Leave the line as it ended (idempotent)."""
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


def live_display_wanted() -> bool:
    """A live display when stderr is a terminal that can redraw a line; plain lines for logs, pipes and CI."""
    return sys.stderr.isatty() and os.environ.get("TERM", "") not in ("", "dumb") and not os.environ.get("CI")


def show_training_progress(verbose: bool, one_training: bool = True) -> EpochDisplay | None:
    """Set up the console for a training command: the libraries' noise filtered, and, for `one_training` at a time,
    a live epoch display when stderr is a terminal (returned, to be stopped at the end); else one line per epoch."""
    live = one_training and live_display_wanted()
    filter_console(verbose, live)
    if not live:
        return None
    display = EpochDisplay()
    logging.getLogger(TRAINING_LOGGER).addHandler(display)
    return display


def print_training_outcome(outcome: "TrainingOutcome | UnchangedOutcome") -> None:
    """The result of a training run, and where to look at it."""
    from ..pipelines.outcomes import UnchangedOutcome

    if isinstance(outcome, UnchangedOutcome):
        typer.echo("")
        typer.secho(f"{outcome.model_name}: unchanged since v{outcome.champion_version}.", bold=True)
        typer.echo(f"  {outcome.reason}")
        typer.echo(f"  MLflow run:   {outcome.run_id} (experiment {outcome.experiment_id})")
        typer.echo(f"  see it at     {outcome.run_url}")
        return
    metrics = "  ".join(f"{name} {value:.4f}" for name, value in outcome.test_metrics.items())
    typer.echo("")
    typer.secho(f"{outcome.model_name} version {outcome.version} {outcome.verdict()}.", bold=True)
    typer.echo(f"  test metrics: {metrics}")
    if outcome.interval:
        typer.echo(f"  uncertainty:  {outcome.interval}")
    if outcome.baseline:
        typer.echo(f"  baseline:     {outcome.baseline}")
    typer.echo(f"  decision:     {outcome.decision}")
    typer.echo(f"  MLflow run:   {outcome.run_id} (experiment {outcome.experiment_id})")
    hint = "" if outcome.tracking_uri.startswith("http") else "   (start the UI with `neuroflow ui`)"
    typer.echo(f"  see it at     {outcome.run_url}{hint}")
    for warning in outcome.warnings:
        typer.secho(f"  warning: {warning}", fg=typer.colors.YELLOW)


def print_tuning_outcome(outcome: "TuningOutcome") -> None:
    """One line per trial, then the best trial's fate at the gate."""
    typer.echo("")
    for trial in outcome.trials:
        knobs = "  ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in trial.knobs.items())
        loss = f"{trial.val_loss:.4f}" if trial.val_loss is not None and trial.val_loss == trial.val_loss else "—"
        typer.echo(f"  trial {trial.number:>2}  {trial.status:<13} val_loss {loss:<8} {knobs}")
    typer.secho(
        f"best: trial {outcome.best_trial} → {outcome.model_name} version {outcome.version} {outcome.verdict()}.",
        bold=True,
    )
    typer.echo(f"  decision:     {outcome.decision}")
    typer.echo(f"  search run:   {outcome.run_url}")


_exit_code: list[int] = []


def skip_teardown_at_exit() -> None:
    """Leave as Python would, minus tearing down every imported module: with TensorFlow, MLflow and Great
    Expectations loaded that alone takes seconds. Registered first, this exit handler runs last, after Python has
    joined the threads and run every other exit handler (Prefect sends its last events there); it then flushes the
    streams and ends the process with the command's exit code."""
    if not _exit_code:
        return  # the command did not finish through `exit_with`: the ordinary shutdown
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a closed pipe: nothing more can be said
            stream.flush()
    os._exit(_exit_code[0])


def install_fast_exit() -> None:
    """Register `skip_teardown_at_exit` before anything else registers an exit handler (they run in reverse)."""
    atexit.register(skip_teardown_at_exit)


def exit_with(code: int | str | None) -> None:
    """Record the command's exit code for `skip_teardown_at_exit`, then exit the ordinary way."""
    if isinstance(code, str):
        print(code, file=sys.stderr)
        code = 1
    _exit_code.append(code or 0)
    sys.exit(code)

"""Every option of the `neuroflow` command, declared once, grouped into the help panels a user scans; and the small
machinery that hands a command its group of options as one typed value."""

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from ..core.settings import Settings, build_overrides, load_settings, merge_overrides, option_overrides

Command = TypeVar("Command", bound=Callable[..., Any])

DATA = "Data"
NETWORK = "Network"
TRACKING = "Tracking"
PROMOTION = "Promotion"
SERVICE = "Service"
TUNING = "Tuning"
SCHEDULE = "Schedule"
OUTPUT = "Output"

ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="YAML or TOML file with settings (see README).")
]
VerboseOption = Annotated[
    bool,
    typer.Option(
        "--verbose",
        "-v",
        help="Also show Prefect's, MLflow's and Great Expectations' own log lines.",
        rich_help_panel=OUTPUT,
    ),
]
DatasetOption = Annotated[
    str | None,
    typer.Option(help="Bundled data set: breast_cancer (default), wine or diabetes.", rich_help_panel=DATA),
]
DataOption = Annotated[
    Path | None, typer.Option(help="CSV or Parquet file to train on (needs --target).", rich_help_panel=DATA)
]
TargetOption = Annotated[str | None, typer.Option(help="Target column of --data.", rich_help_panel=DATA)]
ModelNameOption = Annotated[
    str | None, typer.Option(help="Registered model name (default: neuroflow-<data set>).", rich_help_panel=TRACKING)
]
TrackingOption = Annotated[
    str | None, typer.Option(help="MLflow tracking URI (default: sqlite:///mlflow.db).", rich_help_panel=TRACKING)
]


@dataclass(frozen=True)
class SettingsRequest:
    """What a command was told: a config file and the settings given as options (nested, as in the file)."""

    config: Path | None
    overrides: dict[str, Any]

    def settings(self, **more: dict[str, Any]) -> Settings:
        """The settings in effect, with `more` sections of overrides on top; ConfigError when they are invalid."""
        return load_settings(self.config, merge_overrides(self.overrides, build_overrides(**more)))


def model_options(
    config: ConfigOption = None,
    dataset: DatasetOption = None,
    model_name: ModelNameOption = None,
    tracking_uri: TrackingOption = None,
) -> SettingsRequest:
    """Which registered model a command is about, and where its registry is."""
    return SettingsRequest(
        config,
        option_overrides(dataset=dataset, model_name=model_name, tracking_uri=tracking_uri),
    )


# How a CSV file writes its columns and numbers: training, tuning and scoring read files the same way.
DelimiterOption = Annotated[
    str | None,
    typer.Option(help="Column separator of a CSV file (default: detected among , ; tab |).", rich_help_panel=DATA),
]
DecimalOption = Annotated[
    str | None,
    typer.Option(help="Decimal mark of numbers in a CSV file: . or , (default: .).", rich_help_panel=DATA),
]
ThousandsOption = Annotated[
    str | None,
    typer.Option(
        help="Thousands separator of numbers in a CSV file, e.g. , for 12,345 (default: none).", rich_help_panel=DATA
    ),
]


def training_options(
    config: ConfigOption = None,
    dataset: DatasetOption = None,
    data: DataOption = None,
    target: TargetOption = None,
    task: Annotated[
        str | None, typer.Option(help="auto, binary, multiclass or regression (default: auto).", rich_help_panel=DATA)
    ] = None,
    categorical: Annotated[
        str | None,
        typer.Option(help="Columns holding category codes as numbers, e.g. plan,region_code.", rich_help_panel=DATA),
    ] = None,
    reference_schema: Annotated[
        Path | None,
        typer.Option(
            help="Validate against this schema (from `neuroflow schema`) instead of learning one.", rich_help_panel=DATA
        ),
    ] = None,
    delimiter: DelimiterOption = None,
    decimal: DecimalOption = None,
    thousands: ThousandsOption = None,
    seed: Annotated[
        int | None, typer.Option(help="Seed for the split and the network (default: 42).", rich_help_panel=DATA)
    ] = None,
    test_size: Annotated[
        float | None, typer.Option(help="Share of rows held out for testing (default: 0.2).", rich_help_panel=DATA)
    ] = None,
    validation_size: Annotated[
        float | None, typer.Option(help="Share of the rest for validation (default: 0.2).", rich_help_panel=DATA)
    ] = None,
    preset: Annotated[
        str | None,
        typer.Option(
            help="tabular (the default: a modern tabular MLP ensemble) or classic (the seed's 64-32 ReLU network); "
            "the options below change one knob of it.",
            rich_help_panel=NETWORK,
        ),
    ] = None,
    hidden_units: Annotated[
        str | None,
        typer.Option(help="Layer sizes (default: 128,128).", rich_help_panel=NETWORK),
    ] = None,
    activation: Annotated[
        str | None,
        typer.Option(help="relu, tanh, sigmoid, selu, silu or mish (default: tabular selu).", rich_help_panel=NETWORK),
    ] = None,
    dropout: Annotated[
        float | None,
        typer.Option(help="Dropout after each hidden layer (default: 0.15; classic 0).", rich_help_panel=NETWORK),
    ] = None,
    l2: Annotated[float | None, typer.Option(help="L2 weight penalty (default: 0).", rich_help_panel=NETWORK)] = None,
    optimizer: Annotated[
        str | None,
        typer.Option(help="adam, adamw, rmsprop or sgd (default: tabular adamw).", rich_help_panel=NETWORK),
    ] = None,
    learning_rate: Annotated[
        float | None, typer.Option(help="Default: tabular 0.002, classic 0.001.", rich_help_panel=NETWORK)
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option(
            help="Rows a step; 0 chooses from the rows (default: tabular 0, classic 32).", rich_help_panel=NETWORK
        ),
    ] = None,
    epochs: Annotated[
        int | None, typer.Option(help="Maximum epochs (default: tabular 100, classic 50).", rich_help_panel=NETWORK)
    ] = None,
    patience: Annotated[
        int | None,
        typer.Option(
            help="Early-stopping patience in epochs (default: tabular 16, classic 10).", rich_help_panel=NETWORK
        ),
    ] = None,
    class_weight: Annotated[
        str | None,
        typer.Option(help="none or balanced: weigh rare classes up (default: none).", rich_help_panel=NETWORK),
    ] = None,
    min_improvement: Annotated[
        float | None,
        typer.Option(
            help="How much the primary metric must improve to take the alias (default: 0).", rich_help_panel=PROMOTION
        ),
    ] = None,
    threshold: Annotated[
        str | None,
        typer.Option(
            help="Binary tasks: 0.5, or f1 to take the cut-off with the best F1 on the validation rows (default: 0.5).",
            rich_help_panel=PROMOTION,
        ),
    ] = None,
    baseline: Annotated[
        bool | None,
        typer.Option(
            "--baseline/--no-baseline",
            help="Fit scikit-learn baselines beside the network and say whether it earns its place (default: on).",
            rich_help_panel=PROMOTION,
        ),
    ] = None,
    model_name: ModelNameOption = None,
    experiment: Annotated[
        str | None, typer.Option(help="MLflow experiment (default: neuroflow).", rich_help_panel=TRACKING)
    ] = None,
    tracking_uri: TrackingOption = None,
) -> SettingsRequest:
    """The training options `train`, `tune` and `schedule` share, as a config file plus nested overrides."""
    overrides = option_overrides(
        dataset=dataset,
        data=data,
        target=target,
        task=task,
        categorical=categorical,
        seed=seed,
        test_size=test_size,
        validation_size=validation_size,
        reference_schema=reference_schema,
        delimiter=delimiter,
        decimal=decimal,
        thousands=thousands,
        preset=preset,
        hidden_units=hidden_units,
        activation=activation,
        dropout=dropout,
        l2=l2,
        optimizer=optimizer,
        learning_rate=learning_rate,
        batch_size=batch_size,
        epochs=epochs,
        patience=patience,
        class_weight=class_weight,
        model_name=model_name,
        experiment=experiment,
        tracking_uri=tracking_uri,
        min_improvement=min_improvement,
        baseline=baseline,
        threshold=threshold,
    )
    return SettingsRequest(config, overrides)


def with_options(group: Callable[..., SettingsRequest]) -> Callable[[Command], Command]:
    """Give a command every option of `group`; it receives them as `request: SettingsRequest`, its own as usual."""
    shared = list(inspect.signature(group).parameters.values())

    def decorate(command: Command) -> Command:
        own = [parameter for parameter in inspect.signature(command).parameters.values() if parameter.name != "request"]

        def wrapper(**kwargs: Any) -> Any:
            request = group(**{parameter.name: kwargs.pop(parameter.name) for parameter in shared})
            return command(request=request, **kwargs)

        functools.update_wrapper(wrapper, command)
        del wrapper.__wrapped__  # type: ignore[attr-defined]
        # Python wants required parameters first; in the help, the group's panels come before the command's own.
        required = [parameter for parameter in own if parameter.default is inspect.Parameter.empty]
        ordered = [*required, *shared, *(parameter for parameter in own if parameter not in required)]
        wrapper.__signature__ = inspect.Signature(ordered)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {parameter.name: parameter.annotation for parameter in ordered}
        return wrapper  # type: ignore[return-value]

    return decorate

"""The one typed settings object, read by the CLI, the flows and the service alike.

Precedence, highest first: explicit values (CLI options), `NEUROFLOW_*` environment variables (nested with `__`,
e.g. `NEUROFLOW_NETWORK__EPOCHS=5`), a `.env` file, a YAML/TOML config file, then the defaults below.
"""

import json
import re
from pathlib import Path
from typing import Any, Literal, get_args
from urllib.parse import unquote, urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
    YamlConfigSettingsSource,
)

from .errors import ConfigError
from .spec import (
    PRESET_DEFAULTS,
    Activation,
    Calibration,
    ClassWeight,
    NetworkSpec,
    OptimizerName,
    Preset,
    Scaling,
    Schedule,
    Threshold,
    preset_spec,
)

# How a PostgreSQL URL may begin (the prediction log's store); one list, read by the settings and the log.
POSTGRES_URL_FORMS = ("postgresql://", "postgres://", "postgresql+psycopg://")

BundledDataset = Literal["breast_cancer", "wine", "diabetes"]
BUNDLED_DATASETS: tuple[str, ...] = get_args(BundledDataset)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataSettings(_Section):
    """Where the data comes from and how it is split."""

    dataset: str = Field("breast_cancer", description="Bundled data set: breast_cancer, wine or diabetes.")
    path: Path | None = Field(None, description="CSV or Parquet file; overrides `dataset`.")
    target: str | None = Field(None, description="Target column (required with `path`).")
    task: Literal["auto", "binary", "multiclass", "regression"] = "auto"
    test_size: float = Field(0.2, gt=0, lt=1)
    validation_size: float = Field(0.2, gt=0, lt=1, description="Share of the non-test rows kept for validation.")
    seed: int = 42
    reference_schema: Path | None = Field(None, description="Validate against this schema instead of learning one.")
    categorical: tuple[str, ...] = Field(
        (), description="Columns that are categories even though they hold numbers (integer codes such as 1, 2, 3)."
    )
    delimiter: str | None = Field(
        None, min_length=1, max_length=1, description="CSV column separator; detected when not set (, ; tab |)."
    )
    decimal: Literal[".", ","] = Field(".", description="Decimal mark of numbers in a CSV file: 1.5 or 1,5.")
    thousands: str | None = Field(
        None, min_length=1, max_length=1, description="Thousands separator of numbers in a CSV file: , in 12,345."
    )

    @field_validator("categorical", mode="before")
    @classmethod
    def _parse_columns(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("dataset")
    @classmethod
    def _known_dataset(cls, value: str) -> str:
        if value not in BUNDLED_DATASETS:
            raise ValueError(
                f"unknown data set {value!r}; choose one of {', '.join(BUNDLED_DATASETS)} or pass --data PATH"
            )
        return value

    @model_validator(mode="after")
    def _target_with_path(self) -> "DataSettings":
        if self.path is not None and not self.target:
            raise ValueError("a data file needs its target column: pass --target COLUMN")
        if self.thousands is not None and self.thousands == self.decimal:
            raise ValueError(f"data.thousands and data.decimal are both {self.decimal!r}; numbers need two marks")
        if self.delimiter is not None and self.delimiter in (self.decimal, self.thousands):
            raise ValueError(f"data.delimiter {self.delimiter!r} is also the decimal or thousands mark")
        return self

    @property
    def name(self) -> str:
        """A short name for the data: the bundled name or the file's stem."""
        return self.path.stem if self.path is not None else self.dataset


_NETWORK = NetworkSpec()


class NetworkSettings(_Section):
    """The network and how it is trained. `preset` chooses the recipe (tabular: the modern tabular MLP, the default;
    classic: the seed's 64-32 ReLU network); a field left unset takes the preset's value (`models.spec`)."""

    preset: Preset = Field(
        "tabular",
        description="tabular: periodic number embeddings, category embeddings, an ensemble of 4, AdamW, cosine "
        "schedule; classic: 64-32 ReLU, Adam, StandardScaler. Unset fields take the preset's values.",
    )
    hidden_units: tuple[int, ...] = Field(_NETWORK.hidden_units, description="Units of each hidden dense layer.")
    activation: Activation = _NETWORK.activation
    dropout: float = Field(_NETWORK.dropout, ge=0, lt=1)
    l2: float = Field(_NETWORK.l2, ge=0)
    optimizer: OptimizerName = _NETWORK.optimizer
    learning_rate: float = Field(_NETWORK.learning_rate, gt=0, le=10)
    batch_size: int = Field(_NETWORK.batch_size, ge=0, description="Rows a step; 0: from the training rows (32-256).")
    epochs: int = Field(_NETWORK.epochs, ge=1)
    patience: int = Field(
        _NETWORK.patience, ge=0, description="Epochs without validation-loss improvement before stopping."
    )
    class_weight: ClassWeight = Field(
        _NETWORK.class_weight,
        description="balanced: weigh each class by the inverse of its share, for imbalanced targets.",
    )
    scaling: Scaling = Field(_NETWORK.scaling, description="standard, or robust (median, quartiles, smooth clip).")
    numeric_embedding: int = Field(
        _NETWORK.numeric_embedding, ge=0, description="Periodic embedding size per number (0: off)."
    )
    frequencies: int = Field(_NETWORK.frequencies, ge=1, description="Periodic frequencies per number.")
    frequency_scale: float = Field(_NETWORK.frequency_scale, gt=0, description="Initial spread of the frequencies.")
    category_embedding: int = Field(
        _NETWORK.category_embedding,
        ge=0,
        description="Embedding size for text columns of more than `one_hot_max` values (0: one-hot for all).",
    )
    one_hot_max: int = Field(_NETWORK.one_hot_max, ge=1)
    feature_scale: bool = Field(_NETWORK.feature_scale, description="A learnable scale per input feature.")
    members: int = Field(_NETWORK.members, ge=1, le=32, description="Networks trained as one ensemble (tabular).")
    weight_decay: float = Field(_NETWORK.weight_decay, ge=0, description="Decoupled weight decay (adamw).")
    label_smoothing: float = Field(_NETWORK.label_smoothing, ge=0, lt=1)
    schedule: Schedule = Field(_NETWORK.schedule, description="constant, or cosine decay over `epochs`.")
    calibration: Calibration = Field(
        _NETWORK.calibration, description="temperature: class probabilities calibrated on the validation rows."
    )

    @model_validator(mode="before")
    @classmethod
    def _preset_defaults(cls, data: Any) -> Any:
        """Fill every field the caller left out with the preset's value."""
        if not isinstance(data, dict):
            return data
        preset = data.get("preset", "tabular")
        if preset not in PRESET_DEFAULTS:
            return data  # the field's own validation names the choices
        return {key: value for key, value in PRESET_DEFAULTS[preset].items() if key not in data} | data

    def spec(self, threshold: Threshold = "0.5") -> NetworkSpec:
        """The validated settings as the plain spec the model layer builds and trains from."""
        return preset_spec(self.preset, threshold=threshold, **self.model_dump(exclude={"preset"}))

    @field_validator("hidden_units", mode="before")
    @classmethod
    def _parse_units(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return tuple(int(part) for part in value.replace(" ", "").split(",") if part)
            except ValueError:
                raise ValueError(f"expected comma-separated whole numbers like '64,32', got {value!r}") from None
        return value

    @field_validator("hidden_units")
    @classmethod
    def _positive_units(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(units < 1 for units in value):
            raise ValueError("every hidden layer needs at least one unit")
        return value


class ValidationSettings(_Section):
    """How strictly new data is held to the schema."""

    min_rows: int = Field(10, ge=1)
    range_mostly: float = Field(
        0.95, gt=0, le=1, description="Share of values that must fall inside the learned numeric range."
    )
    category_mostly: float = Field(0.95, gt=0, le=1, description="Share of values that must be known categories.")


def split_credentials(uri: str) -> tuple[str, str | None, str | None]:
    """`http(s)://user:secret@host/...` → (`http(s)://host/...`, user, secret); other URIs come back unchanged
    (a database URI keeps its credentials, and `redact` hides them wherever it is written)."""
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or "@" not in parts.netloc:  # a database URI needs its credentials
        return uri, None, None
    userinfo, _, host = parts.netloc.rpartition("@")
    username, _, password = userinfo.partition(":")
    return urlunsplit(parts._replace(netloc=host)), unquote(username) or None, unquote(password) or None


CREDENTIALS_IN_TEXT = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s:]+(?::[^/@\s]*)?@")


def redact(text: str) -> str:
    """Any `scheme://user:secret@` in a text becomes `scheme://***@` (log lines, error messages)."""
    return CREDENTIALS_IN_TEXT.sub(r"\1***@", text)


class TrackingSettings(_Section):
    """Where MLflow keeps runs and models."""

    tracking_uri: str = "sqlite:///mlflow.db"
    registry_uri: str | None = None
    experiment: str = "neuroflow"
    model_name: str | None = Field(None, description="Registered model name; default neuroflow-<data set name>.")
    ui_url: str | None = Field(
        None,
        description="The MLflow UI's address as a browser reaches it, for links; default the tracking URI when it is "
        "a server, else http://127.0.0.1:5000 (`neuroflow ui`).",
    )
    username: str | None = Field(
        None, description="Tracking server user (else MLFLOW_TRACKING_USERNAME); taken out of the URI if it has one."
    )
    password: SecretStr | None = Field(
        None, description="Tracking server password (else MLFLOW_TRACKING_PASSWORD); never logged or printed."
    )
    store_timeout_seconds: float = Field(
        60.0,
        gt=0,
        description="About the longest a run waits on an unreachable tracking server before it gives up (MLflow's "
        "own client would retry for minutes per call).",
    )
    trust_artifact_store: bool = Field(
        False,
        description="Load models in the old pickled format (logged before neuroflow stored models as data) and "
        "versions without file digests. Unpickling runs code from the store: only for a store you trust.",
    )

    @model_validator(mode="before")
    @classmethod
    def _credentials_out_of_uris(cls, data: Any) -> Any:
        """`http://user:secret@host` keeps the host in the URI and moves the credentials to `username`/`password`,
        so the URI can be logged, printed and linked without the secret."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for key in ("tracking_uri", "registry_uri", "ui_url"):
            uri = data.get(key)
            if not isinstance(uri, str):
                continue
            clean, username, password = split_credentials(uri)
            data[key] = clean
            if username and key != "ui_url":
                data.setdefault("username", username)
                if password:
                    data.setdefault("password", password)
        return data

    @property
    def browser_url(self) -> str:
        """Where a person opens the MLflow UI for this store."""
        if self.ui_url:
            return self.ui_url.rstrip("/")
        if self.tracking_uri.startswith(("http://", "https://")):
            return self.tracking_uri.rstrip("/")
        return "http://127.0.0.1:5000"

    def run_url(self, experiment_id: str, run_id: str) -> str:
        """The MLflow UI page of one run."""
        return f"{self.browser_url}/#/experiments/{experiment_id}/runs/{run_id}"


class EvaluationSettings(_Section):
    """What a training run reports beside the network's own test metrics."""

    baseline: bool = Field(
        True, description="Fit logistic/ridge regression and gradient boosting on the same split, as a yardstick."
    )
    importance_repeats: int = Field(
        5, ge=0, description="Shuffles per feature for permutation importance on the test rows (0: off)."
    )
    bootstrap_rounds: int = Field(
        500, ge=0, description="Resamples of the test rows for the primary metric's 95% interval (0: off)."
    )
    threshold: Threshold = Field(
        "0.5",
        description="Binary: the positive class from probability 0.5, or (f1) from the cut-off that gives the best "
        "F1 on the validation rows. The served label and the card use the same threshold.",
    )


class CardSettings(_Section):
    """What the model card says that the data cannot: who the model is for, and where it must not be used."""

    intended_use: str = Field("", description="What the model is for and who should use it (Markdown).")
    limitations: str = Field("", description="Known limits, risks and cases it must not be used for (Markdown).")
    owner: str = Field("", description="Who to ask about the model.")


class PromotionSettings(_Section):
    """The gate a new version passes to become champion."""

    alias: str = "champion"
    min_improvement: float = Field(0.0, ge=0, description="How much better the primary metric must be.")
    confidence: float = Field(
        0.9,
        ge=0,
        lt=1,
        description="How sure the gate must be that the challenger is better: promote only when a paired bootstrap "
        "over the shared test rows puts the gain above zero with this probability (0: any gain above "
        "min_improvement wins, the old rule).",
    )


class ServiceSettings(_Section):
    """The prediction service: where it listens, what it accepts, how it follows the champion."""

    host: str = "127.0.0.1"
    port: int = Field(3000, ge=1, le=65535)
    workers: int = Field(1, ge=1, description="Server processes; each holds its own copy of the model.")
    max_rows: int = Field(1000, ge=1, description="Most records one request may carry.")
    max_body_bytes: int = Field(1_048_576, ge=1024, description="Largest request body; larger ones get 413 unread.")
    unknown_categories: Literal["reject", "unknown"] = Field(
        "reject",
        description="A category never seen in training: reject the request (422), or send it to the column's unknown "
        "bucket (the one rare training values share; all zeros if the column has none).",
    )
    auth_token: SecretStr | None = Field(
        None,
        description="When set (at least 16 characters), every path but /livez, /readyz and /metrics needs "
        "'Authorization: Bearer <token>': /predict, /reload, /metadata and the API docs.",
    )
    range_multiple: float = Field(
        100.0,
        gt=0,
        description="A number further outside its training range than this many times the range's width is refused "
        "with 422 (the network's float32 arithmetic would overflow on it).",
    )
    poll_seconds: float = Field(30.0, ge=0, description="How often to look for a new champion; 0 turns polling off.")
    startup_attempts: int = Field(8, ge=1, description="Registry lookups at start before falling back to polling.")
    request_timeout_seconds: float = Field(
        5.0, gt=0, description="A request still unanswered after this gets 504 (BentoML keeps a timer per request)."
    )
    access_log: bool = Field(False, description="Log every request (costs throughput).")
    direct_predict: bool = Field(
        True,
        description="Answer POST /predict with the typed API's own steps, skipping BentoML's per-request dispatch "
        "(same answers; about a third less time per one-row request). false: through BentoML's dispatch.",
    )
    trace_requests: bool = Field(
        False, description="OpenTelemetry spans for /predict and /metadata (BentoML's tracing settings apply)."
    )
    url: str | None = Field(
        None, description="A running service's base URL; the training flow asks it to reload after a promotion."
    )
    prediction_log: str = Field(
        "predictions",
        description="Where every served prediction is recorded: a folder (Parquet files partitioned by day, relative "
        "to the working directory), a PostgreSQL URL (postgresql://user@host/db: one table, created by the service), "
        "or off.",
    )
    log_flush_seconds: float = Field(1.0, gt=0, description="How often buffered prediction records are written.")
    log_buffer_rows: int = Field(
        100_000, ge=1, description="Most records waiting to be written; beyond it records are dropped and counted."
    )
    shadow: str = Field(
        "off",
        description="A second version scored beside the champion off the request path and logged, never answered "
        "with: off, latest (the newest version that is not the champion), or an alias such as challenger.",
    )
    live_metrics_seconds: float = Field(
        60.0, ge=0, description="How often the live metrics gauges on /metrics are recomputed; 0 turns them off."
    )

    @field_validator("prediction_log", "shadow")
    @classmethod
    def _off_spelled_once(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("give a value, or off")
        return "off" if value.lower() in ("off", "false", "no", "none", "0") else value

    @field_validator("prediction_log")
    @classmethod
    def _known_store(cls, value: str) -> str:
        if "://" in value and not value.startswith(POSTGRES_URL_FORMS):
            raise ValueError(f"{redact(value)!r}: give a folder, a postgresql:// URL, or off")
        return value

    @field_validator("auth_token")
    @classmethod
    def _strong_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("the auth token must be at least 16 characters long")
        return value


TUNABLE_KNOBS = (
    "hidden_units",
    "activation",
    "dropout",
    "l2",
    "optimizer",
    "learning_rate",
    "batch_size",
    "weight_decay",
    "numeric_embedding",
    "category_embedding",
    "frequency_scale",
    "members",
    "label_smoothing",
)
# The tabular preset's knobs: learning rate, weight decay, width and depth, dropout, embedding sizes.
DEFAULT_SPACE: dict[str, Any] = {
    "hidden_units": ["128,128", "256,256", "512,512", "256,256,256"],
    "dropout": {"low": 0.0, "high": 0.4},
    "learning_rate": {"low": 5e-4, "high": 5e-3, "log": True},
    "weight_decay": {"low": 1e-4, "high": 1e-1, "log": True},
    "numeric_embedding": [4, 8, 16],
    "category_embedding": [4, 8, 16],
}


class TuningSettings(_Section):
    """Hyperparameter search: which network knobs to try, how, and how many trials."""

    strategy: Literal["random", "grid"] = Field("random", description="Random samples, or every grid combination.")
    trials: int = Field(8, ge=1, description="Trial budget: most trials to run (a grid is cut to it).")
    parallel: int = Field(2, ge=1, description="Trials run at the same time (threads, or Dask workers).")
    seed: int = Field(0, description="Seed of the random search.")
    space: dict[str, Any] = Field(
        default_factory=lambda: dict(DEFAULT_SPACE),
        description="Knob → list of values, or {low, high, log} for a numeric range (random search only).",
    )

    @field_validator("space")
    @classmethod
    def _known_knobs(cls, value: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(value) - set(TUNABLE_KNOBS))
        if unknown:
            raise ValueError(f"cannot tune {', '.join(unknown)}; tunable knobs are {', '.join(TUNABLE_KNOBS)}")
        for knob, choices in value.items():
            if isinstance(choices, dict):
                if not {"low", "high"} <= set(choices) or set(choices) - {"low", "high", "log"}:
                    raise ValueError(f"{knob}: a range is {{low: ..., high: ..., log: true|false}}, got {choices}")
                if float(choices["low"]) > float(choices["high"]):
                    raise ValueError(f"{knob}: low {choices['low']} is above high {choices['high']}")
                if choices.get("log") and float(choices["low"]) <= 0:
                    raise ValueError(f"{knob}: a log range needs low > 0, got {choices['low']}")
            elif not isinstance(choices, list) or not choices:
                raise ValueError(f"{knob}: give a non-empty list of values or a {{low, high}} range")
        return value

    @model_validator(mode="after")
    def _grid_of_lists(self) -> "TuningSettings":
        ranges = [knob for knob, choices in self.space.items() if not isinstance(choices, list)]
        if self.strategy == "grid" and ranges:
            raise ValueError(
                f"grid search needs a list of values for every knob; {', '.join(ranges)} is a range: "
                "list the values, or use strategy: random"
            )
        return self


class ScoringSettings(_Section):
    """Batch scoring (`neuroflow predict`, `scoring_flow`): which file, where the scored rows go, how."""

    data_path: Path | None = Field(None, description="CSV or Parquet file the scheduled scoring flow scores.")
    output_dir: Path = Field(
        Path("scored"), description="Where the scoring flow writes <file>-<model>-v<version>-<time>.parquet."
    )
    chunk_rows: int = Field(100_000, ge=1, description="Rows read, checked and written at a time (memory stays flat).")
    strict: bool = Field(False, description="Fail the whole run on a row the model cannot score (else: rejects file).")


class MonitoringSettings(_Section):
    """Drift against the training data, live metrics from feedback, and drift-triggered retraining."""

    window_hours: float = Field(24.0, gt=0, description="Served records of this many past hours are compared.")
    min_rows: int = Field(50, ge=5, description="Fewer served records than this: too few for a verdict, said so.")
    drift_share: float = Field(
        0.3, gt=0, le=1, description="Drift is detected when at least this share of the features drifted."
    )
    stattest_threshold: float | None = Field(
        None, gt=0, lt=1, description="Per-feature test threshold; default: Evidently's for each test it chooses."
    )
    reference_rows: int = Field(5_000, ge=100, description="Training rows kept with each model as drift reference.")
    retrain: bool = Field(True, description="The monitoring flow runs the training deployment when drift is found.")
    training_deployment: str = Field("training/nightly", description="The deployment drift runs (flow/deployment).")
    cooldown_minutes: float = Field(
        360.0, ge=0, description="No drift-triggered training within this long of the previous one for the model."
    )
    retrain_data: Path | None = Field(
        None, description="Fresh data (CSV or Parquet, as the worker sees it) the triggered training runs on."
    )
    append_feedback: bool = Field(
        False, description="Append the served rows that have feedback to retrain_data for the triggered training."
    )


class Settings(BaseSettings):
    """Everything neuroflow can be told, in one place."""

    model_config = SettingsConfigDict(
        env_prefix="NEUROFLOW_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="forbid",
        frozen=True,
    )

    data: DataSettings = DataSettings()
    network: NetworkSettings = NetworkSettings()
    validation: ValidationSettings = ValidationSettings()
    tracking: TrackingSettings = TrackingSettings()
    promotion: PromotionSettings = PromotionSettings()
    evaluation: EvaluationSettings = EvaluationSettings()
    card: CardSettings = CardSettings()
    service: ServiceSettings = ServiceSettings()
    tuning: TuningSettings = TuningSettings()
    scoring: ScoringSettings = ScoringSettings()
    monitoring: MonitoringSettings = MonitoringSettings()
    reports_dir: Path = Field(Path("reports"), description="Where data reports (Great Expectations HTML) are written.")

    @property
    def model_name(self) -> str:
        """The registered model name in use."""
        return self.tracking.model_name or f"neuroflow-{self.data.name}"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Explicit values, then `NEUROFLOW_*` variables, then `.env`, then a config file's (`with_config_file`)."""
        return init_settings, env_settings, dotenv_settings, *cls.config_file_sources(settings_cls)

    @classmethod
    def config_file_sources(cls, settings_cls: type[BaseSettings]) -> tuple[PydanticBaseSettingsSource, ...]:
        """The config file's source, last: none here (`load_settings` names the file in a class of its own)."""
        return ()


def with_config_file(config_file: Path) -> type[Settings]:
    """Settings read with `config_file` (YAML or TOML) as the last source, below explicit values and the
    environment: pydantic-settings takes its sources from the class, so the file is named in a class of its own."""

    class FileSettings(Settings):
        @classmethod
        def config_file_sources(cls, settings_cls: type[BaseSettings]) -> tuple[PydanticBaseSettingsSource, ...]:
            if config_file.suffix == ".toml":
                return (TomlConfigSettingsSource(settings_cls, toml_file=config_file),)
            return (YamlConfigSettingsSource(settings_cls, yaml_file=config_file),)

    return FileSettings


def adopt_reference_model(settings: Settings) -> Settings:
    """With a reference schema and no model name given, the run joins the model the schema came from (so its first
    version is not a champion unopposed); `tracking.model_name` set by hand always wins."""
    reference = settings.data.reference_schema
    if reference is None or settings.tracking.model_name is not None:
        return settings
    try:
        name = json.loads(reference.expanduser().read_text()).get("model_name")
    except (OSError, ValueError, AttributeError):
        return settings  # the preflight and the flow report a schema that does not read
    if not name:
        return settings
    tracking = settings.tracking.model_copy(update={"model_name": str(name)})
    return settings.model_copy(update={"tracking": tracking})


# The one map from an option's name (the CLI's `--learning-rate`, the flows' `learning_rate`) to the setting it sets.
OPTION_SETTINGS: dict[str, tuple[str, str]] = {
    **{name: ("data", name) for name in ("dataset", "target", "task", "categorical", "seed", "test_size")},
    **{name: ("data", name) for name in ("validation_size", "reference_schema", "delimiter", "decimal", "thousands")},
    "data": ("data", "path"),  # the CLI's --data
    "data_path": ("data", "path"),  # the flows' parameter
    **{name: ("network", name) for name in ("preset", "hidden_units", "activation", "dropout", "l2", "optimizer")},
    **{name: ("network", name) for name in ("learning_rate", "batch_size", "epochs", "patience", "class_weight")},
    **{name: ("tracking", name) for name in ("model_name", "experiment", "tracking_uri")},
    "min_improvement": ("promotion", "min_improvement"),
    "baseline": ("evaluation", "baseline"),
    "threshold": ("evaluation", "threshold"),
}


def option_overrides(**options: Any) -> dict[str, Any]:
    """Nested overrides from named options (`OPTION_SETTINGS`), for those that were given (not None)."""
    sections: dict[str, dict[str, Any]] = {}
    for name, value in options.items():
        section, field = OPTION_SETTINGS[name]
        sections.setdefault(section, {})[field] = value
    return build_overrides(**sections)


def build_overrides(**sections: dict[str, Any]) -> dict[str, Any]:
    """Nested overrides from options that were given; options left out leave env and config file in charge."""
    return {
        name: given
        for name, values in sections.items()
        if (given := {k: v for k, v in values.items() if v is not None})
    }


def merge_overrides(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Two sets of nested overrides as one: the keys of `extra` win within each section, and a top-level value of
    `extra` (`reports_dir`) replaces that of `base`."""
    merged = dict(base)
    for name, value in extra.items():
        both_sections = isinstance(value, dict) and isinstance(merged.get(name), dict)
        merged[name] = merged[name] | value if both_sections else value
    return merged


def load_settings(config_file: Path | None = None, overrides: dict[str, Any] | None = None) -> Settings:
    """Build the settings from a config file, the environment and explicit overrides; raise ConfigError if invalid."""
    if config_file is not None:
        if not config_file.is_file():
            raise ConfigError(f"config file {config_file} does not exist; pass the path of a .yaml or .toml file")
        if config_file.suffix not in (".yaml", ".yml", ".toml"):
            raise ConfigError(f"config file {config_file} must end in .yaml, .yml or .toml")
    try:
        if config_file is None:
            return Settings(**(overrides or {}))
        read = with_config_file(config_file)(**(overrides or {}))
    except ValidationError as error:
        raise ConfigError(describe_validation_error(error)) from None
    except ValueError as error:  # a config file that does not parse
        raise ConfigError(f"could not read {config_file}: {error}") from None
    # the same values as a plain Settings (what flows, workers and pickles expect), validated once already
    values = {name: getattr(read, name) for name in Settings.model_fields}
    return Settings.model_construct(_fields_set=read.model_fields_set, **values)


def describe_validation_error(error: ValidationError) -> str:
    """One line per invalid setting, naming it the way the config file and env vars do."""
    lines = []
    for problem in error.errors():
        where = ".".join(str(part) for part in problem["loc"]) or "settings"
        message = problem["msg"].removeprefix("Value error, ")
        lines.append(f"{where}: {message}")
    return "invalid settings:\n  " + "\n  ".join(lines)

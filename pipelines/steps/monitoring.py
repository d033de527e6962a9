"""Drift of the served records against the training data, with Evidently; live metrics from feedback; the shadow's
agreement with the champion. Plain functions: `neuroflow monitor` and `monitoring_flow` wire them.

The reference is a sample of the training split a version was trained on (`reference/reference.parquet` on its MLflow
run, with the network's answers on it), logged at training time. It is read as Parquet: data, never code.
"""

import json
import logging
import math
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from ...core.errors import ModelNotFoundError, MonitoringError
from ...core.predictionlog import CHAMPION, SHADOW, PredictionStore, store_errors, window_start
from ...core.settings import MonitoringSettings
from ...models.inference import Predictor
from ...models.livemetrics import decode, labelled, live_metrics
from ...models.schema import DataSchema

log = logging.getLogger(__name__)
T = TypeVar("T")

REFERENCE_ARTIFACT = "reference/reference.parquet"
PREDICTION = "prediction"


def reference_sample(features: pd.DataFrame, predictor: Predictor, rows: int, seed: int) -> pd.DataFrame:
    """Up to `rows` training rows (raw feature values) with the network's answers on them: the drift reference."""
    sample = features.sample(rows, random_state=seed) if len(features) > rows else features
    frame = sample.reset_index(drop=True).copy()
    frame[PREDICTION] = predictor.predict(frame).answers
    return frame


def log_reference(client: Any, run_id: str, frame: pd.DataFrame) -> None:
    """The reference sample as a Parquet artifact of the training run."""
    with tempfile.TemporaryDirectory(prefix="neuroflow-reference-") as scratch:
        path = Path(scratch) / Path(REFERENCE_ARTIFACT).name
        frame.to_parquet(path, index=False)
        client.log_artifact(run_id, str(path), str(Path(REFERENCE_ARTIFACT).parent))


def read_run_file(client: Any, run_id: str, artifact_path: str, read: Callable[[Path], T]) -> T:
    """One artifact of a run, downloaded to a scratch folder and read there as data (`read`: JSON, Parquet)."""
    import mlflow

    with tempfile.TemporaryDirectory(prefix="neuroflow-monitor-") as scratch:
        path = mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path=artifact_path, dst_path=scratch, tracking_uri=client.tracking_uri
        )
        return read(Path(path))


def load_reference(client: Any, run_id: str) -> pd.DataFrame:
    """The reference sample a version's training run logged (MonitoringError if it has none)."""
    from mlflow.exceptions import MlflowException

    try:
        return read_run_file(client, run_id, REFERENCE_ARTIFACT, pd.read_parquet)
    except (MlflowException, OSError) as error:  # not there (or unreadable); anything else is a bug
        raise MonitoringError(
            f"run {run_id} has no drift reference ({REFERENCE_ARTIFACT}): it was trained before neuroflow kept "
            f"one; retrain the model to monitor it ({str(error)[:200]})"
        ) from None


def served_frame(records: pd.DataFrame, schema: DataSchema) -> pd.DataFrame:
    """Logged records as a table of the model's features (typed as in training) and its answers."""
    names = [column.name for column in schema.features]
    frame = pd.DataFrame.from_records(decode(records["features"]), columns=names)
    for column in schema.features:
        if column.kind == "numeric":
            frame[column.name] = pd.to_numeric(frame[column.name], errors="coerce")
    frame[PREDICTION] = decode(records["prediction"])
    return frame


@dataclass(frozen=True)
class FeatureDrift:
    """One column's drift test, as Evidently chose and scored it."""

    column: str
    method: str
    score: float
    threshold: float
    drifted: bool


@dataclass(frozen=True)
class MonitoringResult:
    """What one look at a window of served records found."""

    model_name: str
    model_version: str | None
    rows: int
    min_rows: int
    window: str
    reference_rows: int = 0
    drift_detected: bool = False
    share_drifted: float = 0.0
    drift_share_threshold: float = 0.0
    drifted_features: tuple[str, ...] = ()
    features: tuple[FeatureDrift, ...] = ()
    prediction_drift: FeatureDrift | None = None
    missing_share: float = 0.0
    live: dict[str, dict[str, float]] = field(default_factory=dict)
    shadow: dict[str, Any] | None = None
    report_path: str | None = None
    run_url: str | None = None
    target: str | None = None

    @property
    def enough_rows(self) -> bool:
        return self.rows >= self.min_rows

    @property
    def verdict(self) -> str:
        if not self.enough_rows:
            return "too few rows"
        return "drift" if self.drift_detected else "no drift"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["features"] = {item.column: asdict(item) for item in self.features}
        data["drifted_features"] = list(self.drifted_features)
        data["verdict"] = self.verdict
        data["enough_rows"] = self.enough_rows
        return json.loads(json.dumps(data, default=str, allow_nan=False, indent=None).replace("NaN", "null"))

    def paragraph(self) -> str:
        """The verdict in one paragraph, for the terminal and the Prefect artifact."""
        subject = f"{self.model_name} v{self.model_version}" if self.model_version else self.model_name
        if not self.enough_rows:
            return (
                f"{subject}: too few served records for a verdict ({self.rows} in {self.window}; at least "
                f"{self.min_rows} are needed, monitoring.min_rows). This is not a 'no drift': serve more, widen "
                "the window (--since, monitoring.window_hours) or lower monitoring.min_rows."
            )
        drifted = len(self.drifted_features)
        text = (
            f"{subject}: {'DRIFT DETECTED' if self.drift_detected else 'no drift'} in {self.rows} served records "
            f"({self.window}) against {self.reference_rows} training rows: {drifted} of {len(self.features)} "
            f"features drifted ({self.share_drifted:.0%}; the threshold is {self.drift_share_threshold:.0%})"
        )
        if self.drifted_features:
            shown = ", ".join(self.drifted_features[:8]) + (f" and {drifted - 8} more" if drifted > 8 else "")
            text += f": {shown}"
        if self.prediction_drift is not None:
            text += f". Predictions {'drifted' if self.prediction_drift.drifted else 'did not drift'}"
            text += f" ({self.prediction_drift.method} {self.prediction_drift.score:.3g})"
        if self.missing_share:
            text += f". {self.missing_share:.1%} of served values were missing"
        for who, scores in self.live.items():
            shown = ", ".join(f"{name} {value:.3f}" for name, value in scores.items() if name != "rows")
            text += f". Live {who} on {int(scores['rows'])} labelled records: {shown}"
        if self.shadow:
            text += (
                f". Shadow v{self.shadow['version']} agrees with the champion on {self.shadow['agreement']:.1%} of "
                f"{self.shadow['rows']} records"
            )
        return text + "."


def select_window(
    store: PredictionStore, model_name: str, since: datetime | None, last: int | None, hours: float
) -> pd.DataFrame:
    """The logged records to judge: the last N, or those since a time (default: monitoring.window_hours)."""
    if last is not None:
        return store.read(model_name, None, last)
    return store.read(model_name, since or window_start(hours))


def describe_window(since: datetime | None, last: int | None, hours: float) -> str:
    if last is not None:
        return f"the last {last} records"
    if since is not None:
        return f"since {since.isoformat(timespec='minutes')}"
    return f"the last {hours:g} h"


def drift_tests(snapshot: dict[str, Any]) -> dict[str, FeatureDrift]:
    """Each column's drift test from an Evidently snapshot: a p-value drifts below its threshold, a distance at or
    above it (Evidently's own rule)."""
    tests = {}
    for metric in snapshot["metrics"]:
        config = metric["config"]
        if not config["type"].endswith(":ValueDrift"):
            continue
        score, threshold, method = float(metric["value"]), float(config["threshold"]), str(config["method"])
        drifted = score < threshold if "p_value" in method else score >= threshold
        tests[config["column"]] = FeatureDrift(config["column"], method, score, threshold, drifted)
    return tests


def evidently() -> Any:
    """Evidently, imported with the one shim it needs under pandas 3 (it imports a helper pandas 3 removed, for its
    legacy type tests that neuroflow does not use)."""
    import pandas.core.dtypes.common as common

    if not hasattr(common, "infer_dtype_from_object"):
        common.infer_dtype_from_object = lambda dtype: np.dtype(dtype).type
    import evidently as library

    return library


def measure_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    schema: DataSchema,
    settings: MonitoringSettings,
    html_path: Path | None,
    title: str,
) -> tuple[dict[str, FeatureDrift], FeatureDrift | None]:
    """Evidently's drift tests per feature (chosen by column kind and size), prediction drift, and a summary of the
    served data, as one report; returns the features' tests and the prediction's."""
    library = evidently()
    from evidently.metrics import ValueDrift
    from evidently.presets import DataDriftPreset, DataSummaryPreset

    # Dates are left out: served rows are always newer than the training rows, so a date column always "drifts".
    numeric = [column.name for column in schema.features if column.kind == "numeric"]
    categorical = [column.name for column in schema.features if column.kind in ("categorical", "boolean")]
    prediction_kind = numeric if schema.task == "regression" else categorical
    definition = library.DataDefinition(
        numerical_columns=numeric + ([PREDICTION] if prediction_kind is numeric else []),
        categorical_columns=categorical + ([PREDICTION] if prediction_kind is categorical else []),
    )
    features = numeric + categorical
    columns = [*features, PREDICTION]
    report = library.Report(
        [
            DataDriftPreset(columns=features, drift_share=settings.drift_share, threshold=settings.stattest_threshold),
            ValueDrift(column=PREDICTION),
            DataSummaryPreset(columns=features),
        ],
        metadata={"title": title},
    )
    snapshot = report.run(
        library.Dataset.from_pandas(current[columns].reset_index(drop=True), data_definition=definition),
        library.Dataset.from_pandas(reference[columns].reset_index(drop=True), data_definition=definition),
    )
    if html_path is not None:
        html_path.parent.mkdir(parents=True, exist_ok=True)
        snapshot.save_html(str(html_path))
    tests = drift_tests(json.loads(snapshot.json()))
    return {name: tests[name] for name in features if name in tests}, tests.get(PREDICTION)


def shadow_agreement(records: pd.DataFrame, task: str) -> dict[str, Any] | None:
    """How often the shadow answered as the champion did, on the requests both scored."""
    shadow = records[records["role"] == SHADOW]
    if shadow.empty:
        return None
    champion = records[records["role"] == CHAMPION][["request_id", "prediction"]]
    pairs = shadow[["request_id", "prediction", "model_version"]].merge(
        champion, on="request_id", suffixes=("_shadow", "_champion")
    )
    if pairs.empty:
        return None
    ours, theirs = decode(pairs["prediction_champion"]), decode(pairs["prediction_shadow"])
    if task == "regression":
        difference = np.abs(np.asarray(ours, dtype=float) - np.asarray(theirs, dtype=float))
        agreement = float((difference <= 1e-6 + 0.05 * np.abs(np.asarray(ours, dtype=float))).mean())
        extra = {"mean_abs_difference": float(difference.mean())}
    else:
        agreement = float(np.mean([str(a) == str(b) for a, b in zip(ours, theirs, strict=True)]))
        extra = {}
    return {"version": str(pairs["model_version"].iloc[-1]), "rows": len(pairs), "agreement": agreement} | extra


def live_by_version(records: pd.DataFrame, feedback: pd.DataFrame, schema: DataSchema) -> dict[str, dict[str, float]]:
    """Live metrics of every version (champion and shadow) that has labelled records in the window."""
    scores = live_metrics(labelled(records, feedback), schema.task, schema.classes)
    return {
        f"{role} v{version}": {name: value for name, value in values.items() if not _nan(value)}
        for (role, version), values in scores.items()
    }


def _nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def monitor_window(
    records: pd.DataFrame,
    feedback: pd.DataFrame,
    reference: pd.DataFrame,
    schema: DataSchema,
    model_name: str,
    version: str,
    settings: MonitoringSettings,
    window: str,
    html_path: Path | None,
) -> MonitoringResult:
    """Everything the monitoring report says about one window of one version's served records."""
    served = records[(records["role"] == CHAMPION) & (records["model_version"] == version)]
    base = MonitoringResult(model_name, version, len(served), settings.min_rows, window, len(reference))
    live = live_by_version(records, feedback, schema)
    shadow = shadow_agreement(records, schema.task)
    if len(served) < settings.min_rows:
        return replace(base, live=live, shadow=shadow)
    current = served_frame(served, schema)
    title = f"{model_name} v{version}: served records ({window}) against the training data"
    tests, prediction = measure_drift(reference, current, schema, settings, html_path, title)
    drifted = tuple(name for name, test in tests.items() if test.drifted)
    share = len(drifted) / len(tests) if tests else 0.0
    names = [column.name for column in schema.features]
    missing = float(current[names].isna().to_numpy().mean()) if names else 0.0
    return replace(
        base,
        drift_detected=bool(tests) and share >= settings.drift_share,
        share_drifted=share,
        drift_share_threshold=settings.drift_share,
        drifted_features=drifted,
        features=tuple(tests.values()),
        prediction_drift=prediction,
        missing_share=missing,
        live=live,
        shadow=shadow,
        report_path=str(html_path) if html_path is not None else None,
    )


def served_version(records: pd.DataFrame, asked: str | None) -> str:
    """The version to judge: the one asked for, else the champion version that served the newest record."""
    if asked is not None:
        return asked
    champion = records[records["role"] == CHAMPION]
    if champion.empty:
        raise ModelNotFoundError("no served records in this window: nothing to compare (is the prediction log on?)")
    return str(champion.sort_values("served_at", kind="stable")["model_version"].iloc[-1])


def parse_since(text: str) -> datetime:
    """`--since`: an ISO time (UTC unless it says otherwise), or a span back from now such as 30m, 6h, 2d."""
    text = text.strip()
    units = {"m": 60, "h": 3600, "d": 86400}
    if text[-1:] in units and text[:-1].replace(".", "", 1).isdigit():
        return datetime.now(UTC) - timedelta(seconds=float(text[:-1]) * units[text[-1]])
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def load_schema(client: Any, run_id: str) -> DataSchema:
    """The schema a version was trained with (`schema/schema.json` on its run), read as JSON."""
    return read_run_file(client, run_id, "schema/schema.json", DataSchema.load)


def champion_schema(client: Any, name: str, alias: str) -> DataSchema:
    """The schema the current champion was trained with: what its served records' labels must fit."""
    from ...core.store import champion_version

    version = champion_version(client, name, alias)
    return load_schema(client, str(client.get_model_version(name, version).run_id))


def monitor(
    settings: Any,
    since: datetime | None = None,
    last: int | None = None,
    version: str | None = None,
    tags: dict[str, str] | None = None,
) -> MonitoringResult:
    """Judge a window of the served records of `settings.model_name` against the served version's training data,
    and record the look as an MLflow monitoring run (the HTML report, the verdict, the live metrics) linked to the
    version (`tags` go on that run: the Prefect flow run that looked, when a flow did)."""
    from ...core.errors import ConfigError
    from ...core.predictionlog import open_store
    from ...core.store import describe_version, reason
    from ..bookkeeping import tracking

    store = open_store(settings.service.prediction_log)
    if store is None:
        raise ConfigError("the prediction log is off (service.prediction_log: off): there are no served records")
    hours = settings.monitoring.window_hours
    window = describe_window(since, last, hours)
    try:
        records = select_window(store, settings.model_name, since, last, hours)
        feedback = store.read_feedback()
    except store_errors() as error:
        raise MonitoringError(f"could not read the prediction log ({store.description}): {reason(error)}") from None
    client = tracking.configure_tracking(settings.tracking)
    if records.empty and version is None:
        return MonitoringResult(settings.model_name, None, 0, settings.monitoring.min_rows, window)
    version = served_version(records, version)
    info = describe_version(client, settings.model_name, version, None)
    if info.run_id is None:
        raise MonitoringError(f"{settings.model_name} v{version} has no training run to take its reference from")
    schema = load_schema(client, info.run_id)
    reference = load_reference(client, info.run_id)
    with tempfile.TemporaryDirectory(prefix="neuroflow-monitor-") as scratch:
        html = Path(scratch) / "drift_report.html"
        result = monitor_window(
            records,
            feedback,
            reference,
            schema,
            settings.model_name,
            version,
            settings.monitoring,
            window,
            html,
        )
        url = log_monitoring(client, settings, result, info.run_id, html if html.exists() else None, tags)
    return replace(result, run_url=url, report_path=None, target=schema.target.name)


def log_monitoring(
    client: Any,
    settings: Any,
    result: MonitoringResult,
    trained_run: str,
    html: Path | None,
    tags: dict[str, str] | None = None,
) -> str:
    """The look as an MLflow run of kind `monitoring`: metrics, the HTML report, the verdict as its description;
    the monitored version gets a tag pointing at it. Returns the run's URL."""
    import mlflow

    from ..bookkeeping import tracking

    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    run_id = tracking.start_run(
        client,
        settings,
        run_name=f"monitor-{result.model_name}-v{result.model_version}-{stamp}",
        tags={
            "neuroflow.kind": "monitoring",
            "neuroflow.monitored_model_version": str(result.model_version),
            "neuroflow.monitored_run_id": trained_run,
            "neuroflow.drift": result.verdict,
            "mlflow.source.name": "neuroflow monitor",
        }
        | (tags or {}),
    )
    succeeded = False
    try:
        metrics = {"rows": float(result.rows), "reference_rows": float(result.reference_rows)}
        if result.enough_rows:
            metrics |= {
                "drift_detected": float(result.drift_detected),
                "share_drifted": result.share_drifted,
                "drifted_features": float(len(result.drifted_features)),
                "missing_share": result.missing_share,
            }
            metrics |= {f"drift_score.{test.column}": test.score for test in result.features}
            if result.prediction_drift is not None:
                metrics["drift_score.prediction"] = result.prediction_drift.score
        for who, scores in result.live.items():
            key = who.replace(" ", "_")
            metrics |= {f"live.{key}.{name}": float(value) for name, value in scores.items()}
        if result.shadow:
            metrics["shadow_agreement"] = float(result.shadow["agreement"])
        safe = {name: value for name, value in metrics.items() if math.isfinite(value)}
        client.log_batch(run_id, metrics=[mlflow.entities.Metric(k, v, 0, 0) for k, v in safe.items()])
        client.log_dict(run_id, result.to_json(), "monitoring.json")
        if html is not None:
            client.log_artifact(run_id, str(html))
        tracking.note(client, run_id, result.paragraph())
        experiment_id = client.get_run(run_id).info.experiment_id
        url = settings.tracking.run_url(experiment_id, run_id)
        client.set_model_version_tag(result.model_name, str(result.model_version), "neuroflow.last_monitoring", url)
        client.set_model_version_tag(result.model_name, str(result.model_version), "neuroflow.drift", result.verdict)
        succeeded = True
        return url
    finally:
        tracking.finish_run(client, run_id, succeeded)

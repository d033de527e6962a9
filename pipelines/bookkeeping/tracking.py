"""The MLflow run's record of a training: settings, per-epoch metrics, the data, the reports, plots and the outcome.

What a model *is* in MLflow (signature, code, runtime) lives in `neuroflow.models.packaging`; this module only writes
the run around it.
"""

import functools
import getpass
import json
import logging
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

import mlflow
import pandas as pd
from mlflow.data.pandas_dataset import from_pandas
from mlflow.tracking import MlflowClient
from mlflow.types import Schema
from mlflow.utils.validation import MAX_METRICS_PER_BATCH

from ...core.settings import Settings, TrackingSettings, redact
from ...core.store import logged_model_id, mlflow_client
from ...models import packaging
from ...models.inference import Predictor
from ...models.schema import DataSchema
from ..steps.data import Dataset, frame_digest
from ..steps.smoke import SmokeResult
from ..steps.validation import ValidationReport
from .registry import PromotionDecision

log = logging.getLogger(__name__)

T = TypeVar("T")
EpochHook = Callable[[int, dict[str, float]], None]
LOCK_RETRIES = 8


def _locked(error: Exception) -> bool:
    return "database is locked" in str(error)


def retry_when_locked(function: Callable[..., T]) -> Callable[..., T]:
    """Retry a tracking call that SQLite refused because another writer (a parallel trial) held the database."""

    @functools.wraps(function)
    def call(*args: Any, **kwargs: Any) -> T:
        for attempt in range(LOCK_RETRIES):
            try:
                return function(*args, **kwargs)
            except Exception as error:
                if not _locked(error) or attempt == LOCK_RETRIES - 1:
                    raise
                time.sleep(0.1 * 2**attempt)
        raise AssertionError("unreachable")

    return call


class RetryingClient:
    """An MlflowClient whose every call is retried on SQLite's "database is locked"."""

    def __init__(self, client: MlflowClient) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        return retry_when_locked(attribute) if callable(attribute) else attribute


@contextmanager
def resumed(run_id: str) -> Iterator[None]:
    """Make the run active for MLflow's fluent API, and leave it RUNNING afterwards (the flow ends it)."""
    mlflow.start_run(run_id=run_id)
    try:
        yield
    finally:
        mlflow.end_run(status="RUNNING")


def configure_tracking(settings: TrackingSettings) -> MlflowClient:
    """Point MLflow at the configured store and make sure the experiment exists."""
    client: MlflowClient = mlflow_client(settings)
    mlflow.set_experiment(settings.experiment)
    return client


def start_run(client: MlflowClient, settings: Settings, run_name: str, tags: dict[str, str] | None = None) -> str:
    """Open the run that tells the story of one training; returns its id."""
    experiment = client.get_experiment_by_name(settings.tracking.experiment)
    assert experiment is not None
    run = client.create_run(
        experiment.experiment_id,
        run_name=run_name,
        tags={
            "mlflow.source.name": "neuroflow training_flow",
            "mlflow.source.type": "JOB",
            "mlflow.user": getpass.getuser(),
            "neuroflow.dataset": settings.data.name,
            "neuroflow.model_name": settings.model_name,
            **(tags or {}),
        },
    )
    client.log_batch(
        run.info.run_id, params=[mlflow.entities.Param(k, v) for k, v in flatten_settings(settings).items()]
    )
    return run.info.run_id


def flatten_settings(settings: Settings) -> dict[str, str]:
    """Settings as flat `section.key` parameters, as the MLflow UI shows them."""
    flat: dict[str, str] = {}
    for section, values in settings.model_dump(mode="json").items():
        if isinstance(values, dict):
            for key, value in values.items():
                flat[f"{section}.{key}"] = redact(str(value))[:6000]
        else:
            flat[section] = redact(str(values))
    return flat


@contextmanager
def epoch_logger(client: MlflowClient, run_id: str, interval: float = 1.0) -> Iterator[EpochHook]:
    """A training hook that writes the epochs' metrics to the run in batches: at most one write per `interval`
    seconds, and what is left when training ends or fails. A write per epoch can take longer than a small epoch
    (~8 ms to SQLite here, a round trip to a tracking server), so MLflow's own autologging batches too."""
    pending: list[mlflow.entities.Metric] = []
    last_write = time.monotonic()

    def write() -> None:
        nonlocal last_write
        for start in range(0, len(pending), MAX_METRICS_PER_BATCH):
            client.log_batch(run_id, metrics=pending[start : start + MAX_METRICS_PER_BATCH])
        pending.clear()
        last_write = time.monotonic()

    def log_epoch(epoch: int, metrics: dict[str, float]) -> None:
        timestamp = int(time.time() * 1000)
        pending.extend(mlflow.entities.Metric(name, value, timestamp, epoch) for name, value in metrics.items())
        if time.monotonic() - last_write >= interval:
            write()

    try:
        yield log_epoch
    except BaseException:
        with suppress(Exception):  # the training's own error is the one to report
            write()
        raise
    write()


def log_data(
    client: MlflowClient, run_id: str, dataset: Dataset, schema: DataSchema, split_sizes: dict[str, int]
) -> str:
    """The data set as a run input (with its digest), its schema, and the split sizes; returns the digest."""
    # MLflow warns that it guesses the source type of a plain string, and hints about integer columns.
    with resumed(run_id), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        source = from_pandas(
            dataset.frame,
            source=dataset.source,
            name=dataset.name,
            targets=dataset.target,
            digest=frame_digest(dataset.frame),
        )
        # MLflow would infer the schema, looking for missing values cell by cell in Python (~10 s on a million rows);
        # it is the schema learned from this very frame. (A cached_property: assigning it is what it allows.)
        source.schema = dataset_schema(schema, dataset.frame)
        mlflow.log_input(source, context="training")
    client.log_dict(run_id, schema.to_dict(), "schema/schema.json")
    client.log_batch(
        run_id,
        metrics=[mlflow.entities.Metric(name, float(size), 0, 0) for name, size in split_sizes.items()],
        tags=[
            mlflow.entities.RunTag("neuroflow.data_digest", source.digest),
            mlflow.entities.RunTag("neuroflow.task", schema.task),
        ],
    )
    return source.digest


def log_columns(client: MlflowClient, run_id: str, columns: list[dict[str, Any]]) -> None:
    """What the pipeline did with each column (`data_report/columns.json`), and the dropped ones as a tag."""
    client.log_dict(run_id, {"columns": columns}, "data_report/columns.json")
    dropped = [row["column"] for row in columns if row["action"].startswith("dropped")]
    client.set_tag(run_id, "neuroflow.dropped_columns", ", ".join(dropped)[:5000] or "none")
    kinds = pd.Series([row["kind"] or "dropped" for row in columns]).value_counts().to_dict()
    log.info("columns: %s", ", ".join(f"{count} {kind}" for kind, count in kinds.items()))


def log_validation(client: MlflowClient, run_id: str, report: ValidationReport) -> None:
    """The Great Expectations HTML report and a plain summary of what failed."""
    client.log_artifacts(run_id, str(report.docs_dir), "data_report")
    client.log_dict(
        run_id,
        {"success": report.success, "evaluated": report.evaluated, "failures": list(report.failures)},
        "data_report/summary.json",
    )
    client.set_tag(run_id, "neuroflow.validation", "passed" if report.success else "failed")


def log_evaluation(
    client: MlflowClient,
    run_id: str,
    scores: dict[str, float],
    plots: list[Path],
    training: dict[str, Any],
    prefix: str = "test_",
) -> None:
    """Metrics as `test_*` (or `prefix`), the plots under `plots/`, and how training went."""
    metrics = {f"{prefix}{name}": value for name, value in scores.items()} | {
        key: float(value) for key, value in training.items()
    }
    client.log_batch(run_id, metrics=[mlflow.entities.Metric(k, v, 0, 0) for k, v in metrics.items()])
    for plot in plots:
        client.log_artifact(run_id, str(plot), "plots")


def dataset_schema(schema: DataSchema, frame: pd.DataFrame) -> Schema:
    """The logged data set's schema: the learned one, features and target (MLflow infers what else the frame holds)."""
    known = {column.name: packaging.column_spec(column) for column in (*schema.features, schema.target)}
    others = [name for name in frame.columns if name not in known]
    inferred = {spec.name: spec for spec in mlflow.models.infer_signature(frame[others]).inputs} if others else {}
    return Schema([known.get(name) or inferred[name] for name in frame.columns])


def log_model(run_id: str, predictor: Predictor, example: pd.DataFrame, workdir: Path) -> packaging.LoggedModel:
    """Log the model to the run (packaged by `neuroflow.models.packaging`); returns its URI and file digests."""
    with resumed(run_id):
        return retry_when_locked(packaging.log_model)(predictor, example, workdir)


def log_summary(client: MlflowClient, run_id: str, summary: dict[str, Any]) -> None:
    """The outcome as `summary.json`, and as the run's description in the MLflow UI."""
    client.log_dict(run_id, json.loads(json.dumps(summary, default=str)), "summary.json")
    note(client, run_id, describe_outcome(summary))


def log_scoring(client: MlflowClient, run_id: str, result: Any) -> None:
    """A scoring run as MLflow shows it: the version and input as tags (searchable in the runs list), the counts and
    speed as metrics, and everything in `scoring.json`."""
    for key, value in {
        "neuroflow.scored_model_version": result.model_version,
        "neuroflow.scored_model": result.model_name,
        "neuroflow.input_digest": result.input_digest,
        "neuroflow.output": str(result.output),
    }.items():
        client.set_tag(run_id, key, value)
    client.log_batch(
        run_id,
        metrics=[
            mlflow.entities.Metric(name, float(value), int(time.time() * 1000), 0)
            for name, value in {
                "rows": result.rows,
                "rows_scored": result.scored,
                "rows_rejected": result.rejected,
                "scoring_seconds": result.seconds,
                "rows_per_second": result.rows_per_second,
            }.items()
        ],
    )
    client.log_dict(run_id, result.to_json(), "scoring.json")


def note(client: MlflowClient, run_id: str, markdown: str) -> None:
    """The run's description in the MLflow UI."""
    client.set_tag(run_id, "mlflow.note.content", markdown)


def describe_outcome(summary: dict[str, Any]) -> str:
    """A few Markdown lines: what was trained, how it scored, what the promotion gate decided."""
    scores = " · ".join(f"{name} {value:.4f}" for name, value in summary["test_metrics"].items())
    verdict = (
        "promoted to champion" if summary["promoted"] else f"not promoted (champion: v{summary['champion_version']})"
    )
    prefect = summary.get("prefect_flow_run_url")
    review = "".join(
        f"{label}: {summary[key]}\n\n"
        for key, label in (("interval", "Uncertainty"), ("baseline", "Baseline"))
        if summary.get(key)
    ) + "".join(f"⚠ {warning}\n\n" for warning in summary.get("warnings") or ())
    return (
        f"**{summary['model_name']} v{summary['version']}**, {verdict}.\n\n"
        f"Test: {scores}\n\n"
        f"{review}"
        f"Promotion: {summary['decision']}\n\n"
        f"Data digest: `{summary.get('data_digest', '?')}`"
        + (f"\n\nPrefect flow run: [{prefect}]({prefect})" if prefect else "")
    )


def summary_markdown(summary: dict[str, Any], data: dict[str, Any]) -> str:
    """The run's story for a Prefect artifact: data, test metrics, the decision, and links to the MLflow run."""
    verdict = (
        "promoted to **champion**"
        if summary["promoted"]
        else f"**not promoted**; the champion stays v{summary['champion_version']}"
    )
    lines = [
        f"## {summary['model_name']} v{summary['version']}: {verdict}",
        "",
        f"[Open the MLflow run]({summary['run_url']}) (run `{summary['run_id']}`)",
        "",
        "| Data | |",
        "|---|---|",
        *(f"| {key.replace('_', ' ')} | {value} |" for key, value in data.items()),
        f"| digest | `{summary.get('data_digest', '?')}` |",
        "",
        "| Test metric | Value |",
        "|---|---|",
        *(f"| {name} | {value:.4f} |" for name, value in summary["test_metrics"].items()),
        "",
        f"**Promotion decision:** {summary['decision']}",
        *([f"\n**Baseline:** {summary['baseline']}"] if summary.get("baseline") else []),
        *(f"\n**Warning:** {warning}" for warning in summary.get("warnings") or ()),
    ]
    return "\n".join(lines)


def log_decision(client: MlflowClient, run_id: str, decision: PromotionDecision) -> None:
    """The promotion decision and both scores, on the run."""
    client.log_dict(run_id, asdict(decision), "promotion.json")
    client.set_tag(run_id, "neuroflow.promotion", decision.status)
    if decision.champion_score is not None:
        client.log_metric(run_id, f"champion_{decision.metric}", decision.champion_score)
    if (paired := decision.paired) is not None:  # the gain over the champion and its paired interval
        gains = {"promotion_gain": paired.gain, "promotion_gain_low": paired.low, "promotion_gain_high": paired.high}
        for name, value in gains.items():
            client.log_metric(run_id, name, value)
        client.set_tag(run_id, "neuroflow.promotion_gain", paired.describe())


def log_smoke_test(client: MlflowClient, run_id: str, result: SmokeResult) -> None:
    """The smoke test's verdict on the run: a tag, its times (the check's, and the trainer's wait for it), and the
    whole result as `smoke_test.json`."""
    client.log_dict(run_id, result.to_json(), "smoke_test.json")
    client.set_tag(run_id, "neuroflow.smoke_test", "passed" if result.passed else "failed")
    client.log_metric(run_id, "smoke_test_seconds", result.seconds)
    if result.waited_seconds is not None:
        client.log_metric(run_id, "smoke_test_wait_seconds", result.waited_seconds)


def log_steps(client: MlflowClient, run_id: str, metrics: dict[str, float]) -> None:
    """Per-step wall time and peak memory (`system/step_seconds.*`, `system/peak_rss_mb.*`)."""
    client.log_batch(run_id, metrics=[mlflow.entities.Metric(k, v, 0, 0) for k, v in metrics.items()])


def finish_run(client: MlflowClient, run_id: str, succeeded: bool) -> None:
    client.set_terminated(run_id, "FINISHED" if succeeded else "FAILED")


def log_model_card(client: MlflowClient, run_id: str, name: str, version: str, card: Any) -> None:
    """The model card as `model_card/model_card.md` and `.html` on the run, and as the version's description (the
    registry page shows it; the service answers it at `/model-card`)."""
    client.log_text(run_id, card.markdown(), "model_card/model_card.md")
    client.log_text(run_id, card.html(), "model_card/model_card.html")
    client.update_model_version(name, version, description=card.markdown())


def name_run(client: MlflowClient, run_id: str, dataset: str, version: str, promoted: bool) -> None:
    """A run name that says what happened, as the runs list shows it: `breast_cancer v3 promoted`."""
    client.update_run(run_id, name=f"{dataset} v{version} {'promoted' if promoted else 'not promoted'}"[:250])


def link_logged_model(client: MlflowClient, model_uri: str, name: str, version: str) -> None:
    """Tag the logged model (MLflow 3's Models tab) with the registered version it became, and the version with
    the logged model's id, so each page links to the other."""
    model_id = logged_model_id(model_uri)
    if model_id is None:
        return
    client.set_logged_model_tags(model_id, {"neuroflow.registered_version": f"{name}/{version}"})
    client.set_model_version_tag(name, version, "neuroflow.logged_model_id", model_id)

"""The Prefect flows. They wire the step functions and hold no logic of their own."""

import logging
import tempfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import mlflow
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from models.schema import DataSchema, infer_schema
from neuroflow.errors import DataValidationError, NeuroflowError
from neuroflow.settings import Settings
from pipelines import data, evaluation, registry, tracking, training, validation

log = logging.getLogger(__name__)


class _HideUserErrorTracebacks(logging.Filter):
    """Prefect logs every failure with its traceback; for errors the user can fix, the message is the story."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], NeuroflowError):
            record.exc_info = None
            record.exc_text = None
        return True


for _name in ("prefect.flow_runs", "prefect.task_runs"):
    logging.getLogger(_name).addFilter(_HideUserErrorTracebacks())


def step(function: Any) -> Any:
    """A Prefect task around a plain step function: no caching or result storage of frames and models."""
    return task(function, cache_policy=NO_CACHE, persist_result=False)


load_dataset = step(data.load_dataset)
split_data = step(data.split_data)
validate_frame = step(validation.validate_frame)
train_model = step(training.train_model)
log_model = step(tracking.log_model)


@dataclass(frozen=True)
class TrainingOutcome:
    """What a training run produced: where to find it and what the gate decided."""

    run_id: str
    experiment_id: str
    model_name: str
    version: str
    promoted: bool
    champion_version: str | None
    test_metrics: dict[str, float]
    decision: str
    tracking_uri: str


@step
def learn_schema(dataset: data.Dataset, reference: Path | None) -> DataSchema:
    """The schema to hold the data to: a reference file when given, else learned from this data."""
    if reference is not None:
        return DataSchema.load(reference)
    return infer_schema(dataset.frame, dataset.target, dataset.task)


@step
def evaluate(result: training.TrainingResult, split: data.Split, plot_dir: Path) -> tuple[dict[str, float], list[Path]]:
    """Test metrics and plots for the trained predictor."""
    schema = result.predictor.schema
    prediction = result.predictor.predict(split.test_features)
    scores = evaluation.evaluate_predictions(schema.task, split.test_target, prediction, schema.classes)
    plots = evaluation.make_plots(schema.task, result.history, split.test_target, prediction, schema.classes, plot_dir)
    return scores, plots


@step
def score_champion(model_uri: str, schema: DataSchema, split: data.Split) -> float | None:
    """The champion's primary metric on this run's test rows, or None if it cannot read them."""
    from models.inference import Prediction

    try:
        champion = mlflow.pyfunc.load_model(model_uri)
        frame = champion.predict(split.test_features)
        prediction = Prediction.from_frame(frame, schema.classes)
        scores = evaluation.evaluate_predictions(schema.task, split.test_target, prediction, schema.classes)
    except Exception as error:  # any failure means "not comparable", which the gate reports
        log.warning("could not score the champion %s on this data: %s", model_uri, error)
        return None
    return scores.get(evaluation.primary_metric(schema.task).name)


@step
def promote_if_better(
    client: Any,
    settings: Settings,
    version: str,
    candidate_score: float,
    split: data.Split,
    schema: DataSchema,
) -> registry.PromotionDecision:
    """Score the champion on the same test rows and move the alias only if the candidate beats it."""
    name, alias = settings.model_name, settings.promotion.alias
    champion = registry.current_champion(client, name, alias)
    champion_score = None
    if champion is not None:
        champion_score = score_champion(f"models:/{name}@{alias}", schema, split)
    decision = registry.decide_promotion(
        evaluation.primary_metric(schema.task),
        version,
        candidate_score,
        str(champion.version) if champion else None,
        champion_score,
        settings.promotion.min_improvement,
    )
    registry.apply_decision(client, name, alias, decision)
    return decision


@flow(name="training", persist_result=False, log_prints=True)
def training_flow(settings: Settings | None = None) -> dict[str, Any]:
    """Load → learn schema → validate → split → train → evaluate → log → register → promote."""
    settings = settings or Settings()
    client = tracking.configure_tracking(settings.tracking)
    dataset = load_dataset(settings.data)
    schema = learn_schema(dataset, settings.data.reference_schema)
    started = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    run_id = tracking.start_run(client, settings, run_name=f"{settings.data.name}-{started}")
    succeeded = False
    try:
        report_dir = settings.reports_dir / f"{settings.data.name}-{started}-{run_id[:8]}"
        report = validate_frame(dataset.frame, schema, settings.validation, report_dir)
        tracking.log_validation(client, run_id, report)
        if not report.success:
            raise DataValidationError(
                f"data validation failed ({report.summary()}); nothing was trained or registered.\n  "
                + "\n  ".join(report.failures)
                + f"\nReport: {report.html_path}",
                list(report.failures),
                report.html_path,
            )
        split = split_data(dataset, settings.data.test_size, settings.data.validation_size, settings.data.seed)
        digest = tracking.log_data(client, run_id, dataset, schema, split.sizes())
        result = train_model(
            schema, split, settings.network, settings.data.seed, [tracking.epoch_logger(client, run_id)]
        )
        with tempfile.TemporaryDirectory(prefix="neuroflow-") as workdir:
            scores, plots = evaluate(result, split, Path(workdir) / "plots")
            tracking.log_evaluation(
                client,
                run_id,
                scores,
                plots,
                {
                    "epochs_run": result.epochs_run,
                    "best_epoch": result.best_epoch,
                    "train_seconds": result.seconds,
                },
            )
            model_uri = log_model(run_id, result.predictor, split.test_features.head(5), Path(workdir))
        version = registry.register_version(client, settings.model_name, model_uri, run_id)
        primary = evaluation.primary_metric(schema.task).name
        decision = promote_if_better(client, settings, version, scores[primary], split, schema)
        tracking.log_decision(client, run_id, decision)
        champion = registry.current_champion(client, settings.model_name, settings.promotion.alias)
        outcome = TrainingOutcome(
            run_id=run_id,
            experiment_id=client.get_run(run_id).info.experiment_id,
            model_name=settings.model_name,
            version=version,
            promoted=decision.promoted,
            champion_version=str(champion.version) if champion else None,
            test_metrics=scores,
            decision=decision.reason,
            tracking_uri=settings.tracking.tracking_uri,
        )
        tracking.log_summary(client, run_id, asdict(outcome) | {"data_digest": digest})
        succeeded = True
        return asdict(outcome)
    finally:
        tracking.finish_run(client, run_id, succeeded)

"""The Prefect flows. They wire the step functions and hold no logic of their own."""

import logging
import re
import tempfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run as prefect_run
from prefect.utilities.urls import url_for

from neuroflow.errors import NeuroflowError, TrainingError
from neuroflow.settings import Settings, load_settings
from pipelines import data, evaluation, notify, profiling, registry, tracking, training, tuning, validation

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
learn_schema = step(data.learn_schema)
drop_unlearnable_columns = step(data.drop_unlearnable_columns)
validate_frame = step(validation.validate_frame)
split_data = step(data.split_data)
train_model = step(training.train_model)
evaluate_model = step(evaluation.evaluate_model)
log_model = step(tracking.log_model)
promote_if_better = step(registry.promote_if_better)
notify_service = step(notify.request_reload)
run_trial = step(tuning.run_trial)


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
    run_url: str


@flow(name="training", persist_result=False, log_prints=True)
def training_flow(
    settings: Settings | None = None,
    overrides: dict[str, Any] | None = None,
    config_file: str | None = None,
) -> dict[str, Any]:
    """Load → learn schema → validate → split → train → evaluate → log → register → promote.

    Called from code with `settings`; a deployment passes `overrides` (and a `config_file`) instead, and the settings
    are resolved where the run happens, so the worker's NEUROFLOW_* environment (servers, secrets) applies.
    """
    if settings is None:
        settings = load_settings(Path(config_file) if config_file else None, overrides)
    clock = profiling.StepClock()
    client = tracking.configure_tracking(settings.tracking)
    with clock.step("load"):
        dataset, schema, columns = load_data(settings)
    started = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    prefect_url = url_for("flow-run", obj_id=prefect_run.id) if prefect_run.id else None
    run_id = tracking.start_run(
        client,
        settings,
        run_name=f"{settings.data.name}-{started}",
        tags={
            "neuroflow.prefect_flow_run_id": str(prefect_run.id),
            "neuroflow.prefect_flow_run": str(prefect_run.name),
        }
        | ({"neuroflow.prefect_flow_run_url": prefect_url} if prefect_url else {}),
    )
    experiment_id = client.get_run(run_id).info.experiment_id
    run_url = settings.tracking.run_url(experiment_id, run_id)
    create_link_artifact(
        key=artifact_key("mlflow-run", settings.model_name),
        link=run_url,
        link_text=f"MLflow run {run_id[:8]} ({settings.model_name})",
        description="The MLflow run of this training: parameters, per-epoch metrics, plots, data report, model.",
    )
    succeeded = False
    try:
        tracking.log_columns(client, run_id, columns)
        split, digest = validate_and_split(client, settings, dataset, schema, run_id, started, clock)
        with clock.step("train"), tracking.epoch_logger(client, run_id) as log_epoch:
            result = train_model(schema, split, settings.network, settings.data.seed, [log_epoch])
        with tempfile.TemporaryDirectory(prefix="neuroflow-") as workdir, clock.step("evaluate_and_log"):
            scores, plots = evaluate_model(result.predictor, result.history, split, Path(workdir) / "plots")
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
        with clock.step("register_and_gate"):
            version = registry.register_version(client, settings.model_name, model_uri, run_id)
            decision = gate(client, settings, run_id, version, scores, schema, split)
        tracking.log_steps(client, run_id, clock.metrics())
        log.info("steps: %s", clock.summary())
        outcome = TrainingOutcome(
            run_id=run_id,
            experiment_id=experiment_id,
            model_name=settings.model_name,
            version=version,
            promoted=decision.promoted,
            champion_version=decision.champion_after,
            test_metrics=scores,
            decision=decision.reason,
            tracking_uri=settings.tracking.tracking_uri,
            run_url=run_url,
        )
        summary = asdict(outcome) | {"data_digest": digest, "prefect_flow_run_url": prefect_url}
        tracking.log_summary(client, run_id, summary)
        data_facts = {
            "data set": dataset.name,
            "source": dataset.source,
            "task": schema.task,
            "features": len(schema.features),
            **split.sizes(),
        }
        publish_summary(settings, tracking.summary_markdown(summary, data_facts))
        succeeded = True
        return asdict(outcome)
    except NeuroflowError as error:
        tracking.note(client, run_id, f"**Failed.** {error}")
        publish_summary(settings, f"## Training of {settings.model_name} failed\n\n{error}\n\n[MLflow run]({run_url})")
        raise
    finally:
        tracking.finish_run(client, run_id, succeeded)


def load_data(settings: Settings) -> tuple[data.Dataset, Any, list[dict[str, Any]]]:
    """Load the data, drop columns it cannot learn from (unless a reference schema fixes the columns), learn the
    schema, and say what happens to each column."""
    dataset = load_dataset(settings.data)
    dropped: dict[str, str] = {}
    if settings.data.reference_schema is None:
        dataset, dropped = drop_unlearnable_columns(dataset)
    schema = learn_schema(dataset, settings.data.reference_schema, settings.data.categorical, dropped)
    return dataset, schema, data.describe_columns(dataset, schema, dropped)


def validate_and_split(
    client: Any,
    settings: Settings,
    dataset: data.Dataset,
    schema: Any,
    run_id: str,
    started: str,
    clock: profiling.StepClock,
) -> tuple[data.Split, str]:
    """Validate the data (a failure stops the flow with its report), split it, and log it; returns split and digest."""
    report_dir = settings.reports_dir / f"{settings.data.name}-{started}-{run_id[:8]}"
    with clock.step("validate"):
        report = validate_frame(dataset.frame, schema, settings.validation, report_dir)
        tracking.log_validation(client, run_id, report)
    validation.ensure_valid(report)
    with clock.step("split_and_log_data"):
        split = split_data(dataset, settings.data.test_size, settings.data.validation_size, settings.data.seed)
        digest = tracking.log_data(client, run_id, dataset, schema, split.sizes())
    return split, digest


def gate(
    client: Any,
    settings: Settings,
    run_id: str,
    version: str,
    scores: dict[str, float],
    schema: Any,
    split: data.Split,
) -> registry.PromotionDecision:
    """The promotion gate on the candidate's test rows (its `scores` there); records the decision and tells the
    service if it won."""
    metric = evaluation.primary_metric(schema.task)
    decision = promote_if_better(
        client,
        settings.model_name,
        settings.promotion.alias,
        metric,
        version,
        scores[metric.name],
        settings.promotion.min_improvement,
        score_champion=lambda uri: evaluation.score_registered_model(uri, schema, split),
    )
    tracking.log_decision(client, run_id, decision)
    if decision.promoted:
        notify_service(settings.service)
    return decision


def artifact_key(kind: str, model_name: str) -> str:
    """Prefect artifact keys allow lowercase letters, digits and dashes; one key per kind and model keeps a history."""
    return re.sub(r"[^a-z0-9-]+", "-", f"{kind}-{model_name}".lower()).strip("-")


def publish_summary(settings: Settings, markdown: str) -> None:
    """The run's story on the Prefect flow run page (Artifacts tab), versioned under one key per model."""
    create_markdown_artifact(
        key=artifact_key("training-summary", settings.model_name),
        markdown=markdown,
        description=f"Training of {settings.model_name}: data, metrics, promotion decision.",
    )


def task_runner(parallel: int, dask_address: str | None = None, dask_workers: int | None = None) -> Any:
    """Where trials run: threads here by default, an existing Dask cluster, or a LocalCluster of N processes."""
    if dask_address or dask_workers:
        from prefect_dask import DaskTaskRunner

        if dask_address:
            return DaskTaskRunner(address=dask_address)
        return DaskTaskRunner(
            cluster_class="distributed.LocalCluster",
            cluster_kwargs={"n_workers": dask_workers, "threads_per_worker": 1, "dashboard_address": None},
        )
    from prefect.task_runners import ThreadPoolTaskRunner

    return ThreadPoolTaskRunner(max_workers=parallel)


@flow(name="tuning", persist_result=False, log_prints=True)
def tuning_flow(
    settings: Settings | None = None,
    overrides: dict[str, Any] | None = None,
    config_file: str | None = None,
) -> dict[str, Any]:
    """Validate and split once → run the trials in parallel as nested runs → register the best → promotion gate."""
    if settings is None:
        settings = load_settings(Path(config_file) if config_file else None, overrides)
    trials = tuning.plan_trials(settings.tuning, settings.network)
    client = tracking.configure_tracking(settings.tracking)
    dataset, schema, columns = load_data(settings)
    started = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    run_id = tracking.start_run(
        client,
        settings,
        run_name=f"tune-{settings.data.name}-{started}",
        tags={"neuroflow.kind": "tuning", "neuroflow.prefect_flow_run_id": str(prefect_run.id)},
    )
    experiment_id = client.get_run(run_id).info.experiment_id
    succeeded = False
    try:
        tracking.log_columns(client, run_id, columns)
        split, _ = validate_and_split(client, settings, dataset, schema, run_id, started, profiling.StepClock())
        futures = [run_trial.submit(settings, schema, split, trial, run_id, experiment_id) for trial in trials]
        results = [future.result() for future in futures]
        metric = evaluation.primary_metric(schema.task)
        frame = tuning.trials_frame(results, metric.name)
        with tempfile.TemporaryDirectory(prefix="neuroflow-") as workdir:
            tuning.log_search(client, run_id, frame, Path(workdir))
        best = tuning.best_trial(results)
        if best is None or best.model_uri is None or best.run_id is None:
            errors = "; ".join(f"trial {result.number}: {result.error}" for result in results[:3])
            raise TrainingError(f"all {len(results)} trials failed ({errors}); see the trials table in the run")
        client.set_tag(run_id, "neuroflow.best_trial", str(best.number))
        version = registry.register_version(client, settings.model_name, best.model_uri, best.run_id)
        decision = gate(client, settings, run_id, version, best.test_scores, schema, split)
        counts = frame["status"].value_counts().to_dict()
        tracking.note(
            client,
            run_id,
            f"**Search of {len(results)} trials** ({settings.tuning.strategy}): {counts}. Best: trial "
            f"{best.number} (val_loss {best.val_loss:.4f}, {best.knobs}) → {settings.model_name} v{version}, "
            f"{decision.status}. {decision.reason}",
        )
        succeeded = True
        return {
            "run_id": run_id,
            "experiment_id": experiment_id,
            "run_url": settings.tracking.run_url(experiment_id, run_id),
            "model_name": settings.model_name,
            "version": version,
            "promoted": decision.promoted,
            "champion_version": decision.champion_after,
            "decision": decision.reason,
            "best_trial": best.number,
            "best_knobs": best.knobs,
            "trials": frame.drop(columns=["error", "run_id"]).to_dict("records"),
            "statuses": counts,
        }
    except NeuroflowError as error:
        tracking.note(client, run_id, f"**Failed.** {error}")
        raise
    finally:
        tracking.finish_run(client, run_id, succeeded)

"""The Prefect flows. Each line is a step; the steps are plain functions in the modules beside this one."""

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

from prefect import Task, flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run as prefect_run
from pydantic import Field

from ..core.errors import ConfigError, TrainingError
from ..core.settings import (
    BundledDataset,
    Settings,
    adopt_reference_model,
    build_overrides,
    load_settings,
    merge_overrides,
    option_overrides,
)
from ..core.spec import Preset
from ..models.schema import DataSchema
from . import retraining
from .bookkeeping import promotion, registry, tracking, unchanged
from .bookkeeping.runs import RunRecord, artifact_key, recorded_run, store_errors
from .outcomes import (
    MonitoringOutcome,
    ScoringOutcome,
    TrainingOutcome,
    TuningOutcome,
    UnchangedOutcome,
)
from .report import modelcard, review
from .steps import data, evaluation, fitting, monitoring, profiling, scoring, smoke, tuning, validation

log = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")


def step(function: Callable[P, R]) -> Task[P, R]:
    """A Prefect task around a plain step function: no caching or result storage of frames and models. Typed with
    the function's own signature, so mypy checks every call the flows make."""
    return task(cache_policy=NO_CACHE, persist_result=False)(function)


load_dataset = step(data.load_dataset)
learn_schema = step(data.learn_schema)
drop_unlearnable_columns = step(data.drop_unlearnable_columns)
validate_frame = step(validation.validate_frame)
split_data = step(data.split_data)
train_and_log = step(fitting.train_and_log)
register_version = step(registry.register_version)
promote = step(promotion.gate)
review_model = step(review.review_model)
run_trial = step(tuning.run_trial)


def resolve_settings(
    settings: Settings | None,
    overrides: dict[str, Any] | None,
    config_file: str | None,
    fields: dict[str, Any] | None = None,
) -> Settings:
    """Settings passed from code, or resolved here from a deployment's named fields, overrides and config file, so
    that the worker's NEUROFLOW_* environment (servers, secrets) applies."""
    if settings is None:
        overrides = merge_overrides(overrides or {}, fields or {})
        settings = load_settings(Path(config_file) if config_file else None, overrides)
    elif fields or overrides or config_file:
        raise ConfigError(
            "give the flow either a whole `settings` object (from code) or its fields, `overrides` and "
            f"`config_file` (from a deployment), not both; got settings and {sorted(fields or {}) or 'overrides'}"
        )
    return adopt_reference_model(settings)


@flow(name="training", persist_result=False, log_prints=True)
def training_flow(
    dataset: BundledDataset | None = None,
    data_path: str | None = None,
    target: str | None = None,
    epochs: Annotated[int, Field(ge=1)] | None = None,
    hidden_units: list[Annotated[int, Field(ge=1)]] | None = None,
    learning_rate: Annotated[float, Field(gt=0, le=10)] | None = None,
    dropout: Annotated[float, Field(ge=0, lt=1)] | None = None,
    model_name: str | None = None,
    force: bool = False,
    preset: Preset | None = None,
    overrides: dict[str, Any] | None = None,
    config_file: str | None = None,
    settings: Settings | None = None,
) -> TrainingOutcome | UnchangedOutcome:
    """Load → learn schema → validate → split → stop if nothing changed since the champion → train, evaluate, log →
    register → smoke test → promotion gate.

    A field left empty takes its value from the config file, the worker's NEUROFLOW_* environment, or the default.

    Args:
        dataset: Bundled data set to train on (default breast_cancer); `data_path` takes precedence.
        data_path: CSV or Parquet file to train on, as the worker sees it; needs `target`.
        target: The column to predict in `data_path`.
        epochs: Most epochs to train; early stopping may end sooner (default: the preset's, tabular 40).
        hidden_units: Units of each hidden layer, e.g. [128, 128] (the tabular default).
        learning_rate: The optimizer's learning rate (default: the preset's, tabular 0.002).
        dropout: Share of units dropped after each hidden layer while training, 0 to 0.9 (default 0).
        model_name: Registered model to add a version to (default neuroflow-<data set>).
        force: Train and register even when the data and settings equal those of the current champion.
        preset: The network's recipe: tabular (the default) or classic (the seed's 64-32 ReLU network).
        overrides: Any other settings, nested as in a config file, e.g. {"network": {"patience": 5}}.
        config_file: A YAML or TOML settings file, as the worker sees it.
        settings: For code: a whole Settings object, instead of the fields above.
    """
    fields = option_overrides(
        dataset=dataset,
        data_path=data_path,
        target=target,
        preset=preset,
        epochs=epochs,
        hidden_units=hidden_units,
        learning_rate=learning_rate,
        dropout=dropout,
        model_name=model_name,
    )
    settings = resolve_settings(settings, overrides, config_file, fields)
    with store_errors(settings.tracking), smoke.SmokeChecker() as checker:
        clock = profiling.StepClock()
        client = tracking.configure_tracking(settings.tracking)
        checker.connect(settings.tracking.tracking_uri, settings.tracking.registry_uri)
        with clock.step("load"):
            prepared = load_data(settings)
        with recorded_run(client, settings, "training") as run:
            tracking.log_columns(client, run.run_id, prepared.columns)
            checked = validate_and_split(run, prepared, clock)
            trained_on = fingerprint(run, prepared)
            if not force and (champion := unchanged_champion(run, trained_on)):
                return report_unchanged(run, champion, checked.digest, prepared.dataset)
            fitted = fit(run, prepared, checked, clock)
            with clock.step("review"):
                looked = review_fitted(run, prepared, checked, fitted)
            with clock.step("register_and_gate"):
                judged = register_and_gate(run, prepared, checked, fitted, checker, trained_on)
            return conclude(run, prepared, checked, fitted, looked, judged, clock)


@dataclass(frozen=True)
class Prepared:
    """The data a run learns from: the data set, its schema and what happens to each column."""

    dataset: data.Dataset
    schema: DataSchema
    columns: list[dict[str, Any]]


@dataclass(frozen=True)
class Checked:
    """The data validated and split: the split, the data's digest and the validation summary."""

    split: data.Split
    digest: str
    validated: str


@dataclass(frozen=True)
class Judged:
    """The version a run registered and what the gate decided for it."""

    version: str
    decision: registry.PromotionDecision


def fingerprint(run: RunRecord, prepared: Prepared) -> str:
    """The run's training fingerprint (what "unchanged" is judged on), recorded on the run."""
    value = unchanged.training_fingerprint(prepared.dataset.frame, prepared.schema, run.settings)
    run.client.set_tag(run.run_id, unchanged.FINGERPRINT_TAG, value)
    return value


def unchanged_champion(run: RunRecord, trained_on: str) -> str | None:
    """The champion's version if it was trained on the same data and settings (fingerprint) as this run, else None."""
    settings = run.settings
    return unchanged.unchanged_since(run.client, settings.model_name, settings.promotion.alias, trained_on)


def fit(run: RunRecord, prepared: Prepared, checked: Checked, clock: profiling.StepClock) -> fitting.FittedModel:
    """Train, evaluate and log the network; the columns' record then says how each was encoded."""
    settings = run.settings
    fitted = train_and_log(
        run.client,
        run.run_id,
        prepared.schema,
        checked.split,
        settings.network.spec(settings.evaluation.threshold),
        settings.data.seed,
        clock,
        settings.monitoring.reference_rows,
    )
    columns = data.describe_fitted(prepared.columns, prepared.schema, fitted.training.predictor.encoder)
    tracking.log_columns(run.client, run.run_id, columns)
    return fitted


def review_fitted(run: RunRecord, prepared: Prepared, checked: Checked, fitted: fitting.FittedModel) -> review.Review:
    """The report card of the trained network: interval, advice, baselines and importance."""
    settings = run.settings
    return review_model(
        run.client,
        run.run_id,
        fitted.training.predictor,
        (fitted.training.epochs_run, fitted.training.best_epoch),
        fitted.scores,
        checked.split,
        prepared.dataset.frame[prepared.dataset.target],
        settings.network.spec(settings.evaluation.threshold),
        settings.evaluation,
        settings.data.seed,
    )


def register_and_gate(
    run: RunRecord,
    prepared: Prepared,
    checked: Checked,
    fitted: fitting.FittedModel,
    checker: smoke.SmokeChecker,
    trained_on: str,
) -> Judged:
    """Register the version, smoke-test it and let the gate decide on the champion alias."""
    settings = run.settings
    version = register_version(
        run.client,
        settings.model_name,
        fitted.model_uri,
        run.run_id,
        fitted.file_digests,
        {unchanged.FINGERPRINT_TAG: trained_on},
    )
    decision = promote(
        run.client,
        settings,
        run.run_id,
        version,
        fitted.scores,
        fitted.training.predictor,
        prepared.schema,
        checked.split,
        checker,
        fitted.example_outputs,
    )
    tracking.link_logged_model(run.client, fitted.model_uri, settings.model_name, version)
    return Judged(version, decision)


def conclude(
    run: RunRecord,
    prepared: Prepared,
    checked: Checked,
    fitted: fitting.FittedModel,
    looked: review.Review,
    judged: Judged,
    clock: profiling.StepClock,
) -> TrainingOutcome:
    """The model card, the run's name, steps and summary, and the typed outcome the caller reads."""
    settings, client, dataset = run.settings, run.client, prepared.dataset
    ran = {"epochs_run": fitted.training.epochs_run, "best_epoch": fitted.training.best_epoch} | {
        f"calibration {name}": round(value, 4)
        for name, value in fitted.training.calibration.items()
        if name in ("temperature", "threshold")
    }
    write_model_card(run, prepared, checked, fitted.scores, ran, looked, judged.decision)
    tracking.name_run(client, run.run_id, dataset.name, judged.version, judged.decision.promoted)
    tracking.log_steps(client, run.run_id, clock.metrics())
    log.info("steps: %s", clock.summary())
    outcome = TrainingOutcome(
        **run.registered(judged.version, judged.decision),
        test_metrics=fitted.scores,
        tracking_uri=settings.tracking.tracking_uri,
        interval=looked.interval.describe() if looked.interval else None,
        baseline=looked.baselines.verdict if looked.baselines else None,
        warnings=tuple(looked.warnings),
    )
    summary = asdict(outcome) | {"data_digest": checked.digest, "prefect_flow_run_url": run.prefect_url}
    tracking.log_summary(client, run.run_id, summary)
    schema = prepared.schema
    facts = {"data set": dataset.name, "source": dataset.source, "task": schema.task, "features": len(schema.features)}
    run.publish(tracking.summary_markdown(summary, facts | checked.split.sizes()))
    return outcome


def write_model_card(
    run: RunRecord,
    prepared: Prepared,
    checked: Checked,
    scores: dict[str, float],
    epochs: dict[str, Any],
    looked: review.Review,
    decision: registry.PromotionDecision,
    network: dict[str, Any] | None = None,
) -> None:
    """The version's model card from what its run knows: on the run (Markdown and HTML) and as its description.
    `network`: the settings it trained with, when they are not the run's own (a tuning trial's)."""
    dataset, schema = prepared.dataset, prepared.schema
    digest, validated, split = checked.digest, checked.validated, checked.split
    version = decision.candidate_version
    settings = run.settings
    card = modelcard.build_card(
        model_name=settings.model_name,
        version=version,
        run_id=run.run_id,
        dataset={
            "name": dataset.name,
            "source": dataset.source,
            "digest": digest,
            "rows": len(dataset.frame),
            "split": ", ".join(f"{k.removesuffix('_rows')} {v}" for k, v in split.sizes().items()),
        },
        schema=schema,
        validation=validated,
        scores=scores,
        interval=looked.interval,
        baselines=looked.baselines,
        decision=decision,
        importance=looked.importance,
        training=(network or settings.network.model_dump(mode="json")) | epochs,
        warnings=looked.warnings,
        card=settings.card,
    )
    tracking.log_model_card(run.client, run.run_id, settings.model_name, version, card)


def report_unchanged(run: RunRecord, champion: str, digest: str, dataset: data.Dataset) -> UnchangedOutcome:
    """Say that nothing changed since the champion: in the log, on the MLflow run and in a Prefect artifact."""
    settings = run.settings
    outcome = UnchangedOutcome(
        run.run_id, run.experiment_id, run.url, settings.model_name, champion, settings.tracking.tracking_uri
    )
    log.info("unchanged since v%s: %s", champion, outcome.reason)
    run.client.set_tag(run.run_id, "neuroflow.outcome", "unchanged")
    run.client.update_run(run.run_id, name=f"{dataset.name} unchanged since v{champion}")
    run.client.set_tag(run.run_id, "neuroflow.unchanged_since", champion)
    run.note(f"**Unchanged since v{champion}**, nothing registered.\n\n{outcome.reason}\n\nData digest: `{digest}`")
    run.publish(
        f"## {settings.model_name}: unchanged since v{champion}\n\n{outcome.reason}\n\n"
        f"Data: {dataset.name} ({dataset.source}), digest `{digest}`.\n\n[Open the MLflow run]({run.url})"
    )
    return outcome


def load_data(settings: Settings) -> Prepared:
    """Load the data, drop columns it cannot learn from (unless a reference schema fixes the columns), learn the
    schema, and say what happens to each column."""
    dataset = load_dataset(settings.data)
    dropped: dict[str, str] = {}
    if settings.data.reference_schema is None:
        dataset, dropped = drop_unlearnable_columns(dataset)
    schema = learn_schema(dataset, settings.data.reference_schema, settings.data.categorical, dropped)
    if settings.data.reference_schema is not None and schema.model_name != settings.model_name:
        log.warning(
            "the reference schema %s %s; this run registers %s%s",
            settings.data.reference_schema,
            f"came from the model {schema.model_name!r}"
            if schema.model_name
            else "does not say which model it came from",
            settings.model_name,
            ""
            if schema.model_name
            else ", a NEW model whose first version becomes champion with nothing to beat "
            "(pass --model-name to join an existing model)",
        )
    schema = replace(schema, model_name=settings.model_name)
    return Prepared(dataset, schema, data.describe_columns(dataset, schema, dropped))


def validate_and_split(run: RunRecord, prepared: Prepared, clock: profiling.StepClock) -> Checked:
    """Validate the data (a failure stops the flow with its report), split it, and log it."""
    settings, dataset, schema = run.settings, prepared.dataset, prepared.schema
    with clock.step("validate"):
        report_dir = settings.reports_dir / f"{settings.data.name}-{run.started}-{run.run_id[:8]}"
        report = validate_frame(dataset.frame, schema, settings.validation, report_dir)
        tracking.log_validation(run.client, run.run_id, report)
    validation.ensure_valid(report)
    with clock.step("split_and_log_data"):
        split = split_data(dataset, settings.data.test_size, settings.data.validation_size, settings.data.seed)
        digest = tracking.log_data(run.client, run.run_id, dataset, schema, split.sizes())
    return Checked(split, digest, report.summary())


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
) -> TuningOutcome:
    """Validate and split once → run the trials in parallel as nested runs → register the best → promotion gate."""
    settings = resolve_settings(settings, overrides, config_file)
    with store_errors(settings.tracking), smoke.SmokeChecker() as checker:
        trials = tuning.plan_trials(settings.tuning, settings.network)
        client = tracking.configure_tracking(settings.tracking)
        checker.connect(settings.tracking.tracking_uri, settings.tracking.registry_uri)
        prepared = load_data(settings)
        with recorded_run(client, settings, "tuning") as run:
            tracking.log_columns(client, run.run_id, prepared.columns)
            checked = validate_and_split(run, prepared, profiling.StepClock())
            searched = search(run, prepared, checked, trials)
            chosen, judged = register_and_gate_best(run, prepared, checked, searched, checker)
            return conclude_search(run, searched, chosen, judged)


@dataclass(frozen=True)
class Searched:
    """A finished search: every trial's result, the best one (which registered a model), and the trials' statuses."""

    results: tuple[tuning.TrialResult, ...]
    best: tuning.TrialResult
    model_uri: str
    best_run_id: str
    statuses: dict[str, int]


@dataclass(frozen=True)
class Chosen:
    """The best trial registered and looked at once on the test rows: its scores and report card."""

    scores: dict[str, float]
    looked: review.Review


def search(run: RunRecord, prepared: Prepared, checked: Checked, trials: list[tuning.Trial]) -> Searched:
    """Run the trials as nested runs (in parallel), log the trials table and choose the best; a TrainingError
    naming the first failures when none finished."""
    futures = [
        run_trial.submit(run.settings, prepared.schema, checked.split, trial, run.run_id, run.experiment_id)
        for trial in trials
    ]
    results = [future.result() for future in futures]
    frame = tuning.log_search(run.client, run.run_id, results, prepared.schema.task)
    best = tuning.best_trial(results, evaluation.primary_metric(prepared.schema.task))
    if best is None or best.model_uri is None or best.run_id is None:
        errors = "; ".join(f"trial {result.number}: {result.error}" for result in results[:3])
        raise TrainingError(f"all {len(results)} trials failed ({errors}); see the trials table in the run")
    run.client.set_tag(run.run_id, "neuroflow.best_trial", str(best.number))
    statuses = {str(status): int(count) for status, count in frame["status"].value_counts().items()}
    ordered = tuple(sorted(results, key=lambda result: result.number))
    return Searched(ordered, best, best.model_uri, best.run_id, statuses)


def register_and_gate_best(
    run: RunRecord, prepared: Prepared, checked: Checked, searched: Searched, checker: smoke.SmokeChecker
) -> tuple[Chosen, Judged]:
    """Register the best trial, score it on the test rows (the search's one look), review it, let the gate decide,
    and write its model card."""
    settings, best, split = run.settings, searched.best, checked.split
    version = register_version(
        run.client, settings.model_name, searched.model_uri, searched.best_run_id, best.file_digests
    )
    predictor, scores = score_chosen_trial(
        run.client, settings, version, prepared.schema, split, [run.run_id, searched.best_run_id]
    )
    network = tuning.trial_network(settings.network, best.knobs)
    looked = review_model(
        run.client,
        searched.best_run_id,
        predictor,
        (best.epochs_run, best.best_epoch),
        scores,
        split,
        prepared.dataset.frame[prepared.dataset.target],
        network.spec(settings.evaluation.threshold),
        settings.evaluation,
        settings.data.seed,
    )
    decision = promote(
        run.client,
        settings,
        run.run_id,
        version,
        scores,
        predictor,
        prepared.schema,
        split,
        checker,
        best.example_outputs,
    )
    ran = {"epochs_run": best.epochs_run, "best_epoch": best.best_epoch}
    write_model_card(run, prepared, checked, scores, ran, looked, decision, network.model_dump(mode="json"))
    return Chosen(scores, looked), Judged(version, decision)


def conclude_search(run: RunRecord, searched: Searched, chosen: Chosen, judged: Judged) -> TuningOutcome:
    """The search run's note and the typed outcome the caller reads."""
    settings = run.settings
    results = list(searched.results)
    run.note(
        tuning.describe_search(results, searched.best, searched.statuses, settings, judged.version, judged.decision)
    )
    return TuningOutcome(
        **run.registered(judged.version, judged.decision),
        best_trial=searched.best.number,
        best_knobs=searched.best.knobs,
        trials=searched.results,
        statuses=searched.statuses,
    )


@task(cache_policy=NO_CACHE, persist_result=False)
def score_chosen_trial(
    client: Any, settings: Settings, version: str, schema: DataSchema, split: data.Split, run_ids: list[str]
) -> tuple[Any, dict[str, float]]:
    """The one look at the test rows a search takes: the chosen trial, registered, loaded through the safe loader
    and scored; its `test_*` metrics go on the search run and the trial's run. Returns the predictor and scores."""
    predictor = evaluation.load_comparable(
        client, settings.model_name, version, schema, settings.tracking.trust_artifact_store
    )
    scores = evaluation.evaluate_predictions(
        schema.task, split.test_target, predictor.predict(split.test_features), schema.classes
    )
    for run_id in run_ids:
        tracking.log_evaluation(client, run_id, scores, [], {})
    return predictor, scores


load_scoring_model = step(scoring.load_scoring_model)
score_file = step(scoring.score_file)


@flow(name="scoring", persist_result=False, log_prints=True)
def scoring_flow(
    data_path: str | None = None,
    output_path: str | None = None,
    version: str | None = None,
    alias: str | None = None,
    model_name: str | None = None,
    strict: bool | None = None,
    keep: list[str] | None = None,
    overrides: dict[str, Any] | None = None,
    config_file: str | None = None,
    settings: Settings | None = None,
) -> ScoringOutcome:
    """Load the registered version → score the file in chunks, every row checked as the service checks a request →
    record the run in MLflow (input digest, rows scored and refused, output, version, duration) and in Prefect.

    Args:
        data_path: CSV or Parquet file to score, as the worker sees it (default: scoring.data_path).
        output_path: Where the scored rows go (default: scoring.output_dir/<file>-<model>-v<version>-<time>.parquet).
        version: Registered version to score with (default: the champion).
        alias: Score with the version this alias points at instead.
        model_name: Registered model (default neuroflow-<data set>).
        strict: Fail the run on the first row the model cannot score (default: scoring.strict; else a rejects file).
        keep: Input columns to keep beside the predictions (default: all).
        overrides: Any other settings, nested as in a config file.
        config_file: A YAML or TOML settings file, as the worker sees it.
        settings: For code: a whole Settings object, instead of the fields above.
    """
    fields = merge_overrides(
        build_overrides(scoring={"data_path": data_path, "strict": strict}), option_overrides(model_name=model_name)
    )
    settings = resolve_settings(settings, overrides, config_file, fields)
    if settings.scoring.data_path is None:
        raise ConfigError("nothing to score: give data_path, or set scoring.data_path (NEUROFLOW_SCORING__DATA_PATH)")
    data = settings.scoring.data_path.expanduser()
    if not data.is_file():
        raise ConfigError(f"scoring.data_path {data} does not exist (as the worker sees it)")
    with store_errors(settings.tracking):
        client = tracking.configure_tracking(settings.tracking)
        with recorded_run(client, settings, "scoring") as run:
            model = load_scoring_model(settings, version, alias)
            output = Path(output_path) if output_path else scoring.default_output(settings.scoring, data, model)
            output.parent.mkdir(parents=True, exist_ok=True)
            result = score_file(
                model,
                data,
                output,
                strict=settings.scoring.strict,
                keep=tuple(keep) if keep else None,
                chunk_rows=settings.scoring.chunk_rows,
                reading=settings.data,
            )
            return record_scoring(run, result)


def record_scoring(run: RunRecord, result: scoring.ScoringResult) -> ScoringOutcome:
    """What the scoring run did, on the MLflow run and in Prefect, and as the typed outcome."""
    tracking.log_scoring(run.client, run.run_id, result)
    run.note(scoring.describe(result))
    run.publish(scoring.describe(result) + f"\n\n[Open the MLflow run]({run.url})")
    return ScoringOutcome(
        run.run_id,
        run.url,
        result.model_name,
        result.model_version,
        result.rows,
        result.scored,
        result.rejected,
        str(result.output),
        str(result.rejects) if result.rejects else None,
        result.seconds,
    )


judge_window = step(monitoring.monitor)
trigger_training = step(retraining.trigger_training)


@flow(name="monitoring", persist_result=False, log_prints=True)
def monitoring_flow(
    last: Annotated[int, Field(ge=1)] | None = None,
    since: str | None = None,
    version: str | None = None,
    model_name: str | None = None,
    retrain: bool | None = None,
    overrides: dict[str, Any] | None = None,
    config_file: str | None = None,
    settings: Settings | None = None,
) -> MonitoringOutcome:
    """Judge the served records against the training data (an MLflow monitoring run with the Evidently report) →
    publish the verdict → when drift is found, run the training deployment, whose new version meets the same gate.

    Args:
        last: Judge the last N served records (default: those of the last monitoring.window_hours).
        since: Judge the records since this time: ISO, or a span back from now such as 6h.
        version: The version whose records to judge (default: the one serving most recently).
        model_name: Registered model (default neuroflow-<data set>).
        retrain: Run the training deployment on drift (default: monitoring.retrain).
        overrides: Any other settings, nested as in a config file, e.g. {"monitoring": {"drift_share": 0.5}}.
        config_file: A YAML or TOML settings file, as the worker sees it.
        settings: For code: a whole Settings object, instead of the fields above.
    """
    fields = merge_overrides(build_overrides(monitoring={"retrain": retrain}), option_overrides(model_name=model_name))
    settings = resolve_settings(settings, overrides, config_file, fields)
    try:
        moment = monitoring.parse_since(since) if since else None
    except ValueError:
        raise ConfigError(f"since {since!r}: give an ISO time such as 2026-12-01T08:00, or 30m, 6h, 2d") from None
    with store_errors(settings.tracking):
        looked_by = {
            "neuroflow.prefect_flow_run_id": str(prefect_run.id),
            "neuroflow.prefect_flow_run": str(prefect_run.name),
        }
        result = judge_window(settings, moment, last, version, looked_by)
    retraining_run, retraining_note = retrain_on_drift(settings, result)
    publish_verdict(settings, result, retraining_note)
    return MonitoringOutcome(
        settings.model_name,
        result.model_version,
        result.verdict,
        result.drift_detected,
        result.drifted_features,
        result.share_drifted,
        result.rows,
        result.run_url,
        retraining_run,
        retraining_note,
    )


def retrain_on_drift(settings: Settings, result: monitoring.MonitoringResult) -> tuple[str | None, str]:
    """On drift, with monitoring.retrain on: the training deployment's new flow run (or None) and what was done."""
    if result.drift_detected and settings.monitoring.retrain and result.target:
        retraining_run, retraining_note = trigger_training(
            settings, result.target, list(result.drifted_features), result.model_version
        )
        log.info("%s", retraining_note)
        return retraining_run, retraining_note
    return None, "not retraining: monitoring.retrain is off" if result.drift_detected else ""


def publish_verdict(settings: Settings, result: monitoring.MonitoringResult, retraining_note: str) -> None:
    """The verdict as a Prefect artifact (one key per model, so it keeps a history) and in the log."""
    markdown = f"## {settings.model_name}: {result.verdict}\n\n{result.paragraph()}"
    if retraining_note:
        markdown += f"\n\n**Retraining:** {retraining_note}."
    if result.run_url:
        markdown += f"\n\n[Open the monitoring run and its drift report in MLflow]({result.run_url})"
    create_markdown_artifact(
        key=artifact_key("monitoring", settings.model_name),
        markdown=markdown,
        description=f"Drift verdict for {settings.model_name}",
    )
    log.info("%s", result.paragraph())

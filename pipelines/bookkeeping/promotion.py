"""The step both flows end with: the smoke test and the promotion gate on the candidate's own test rows, recorded on
the run, and the service told when the champion moved."""

from dataclasses import replace

import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient

from ...core.errors import ChampionNotComparableError, RegistryUnavailableError, SmokeTestFailedError
from ...core.settings import Settings
from ...models.inference import Predictor
from ...models.schema import DataSchema
from ..report import advice
from ..steps import data, evaluation, smoke
from ..steps.data import Split
from . import notify, registry, tracking


def gate(
    client: MlflowClient,
    settings: Settings,
    run_id: str,
    version: str,
    scores: dict[str, float],
    candidate: Predictor,
    schema: DataSchema,
    split: Split,
    checker: smoke.SmokeChecker,
    example_outputs: list[list[float]],
) -> registry.PromotionDecision:
    """Smoke-test the candidate as the service would load it (`checker`, a fresh process), score the champion on the
    candidate's test rows (the candidate's `scores` there) and the candidate's paired gain over it, decide, record
    the decision on the run and the version, and tell a running service if the candidate won."""
    metric = evaluation.primary_metric(schema.task)
    job = smoke_job(settings, version, example_outputs)

    def smoke_test() -> str | None:
        result = checker.check(job)
        tracking.log_smoke_test(client, run_id, result)
        if result.registry_failed:
            raise RegistryUnavailableError(result.reason)
        return None if result.passed else result.reason

    def score_champion(champion: str) -> registry.ChampionComparison:
        rows, compared = rows_to_compare(client, settings.model_name, champion, schema, split)
        incumbent = evaluation.predict_registered(
            client, settings.model_name, champion, schema, rows, settings.tracking.trust_artifact_store
        )
        challenger = candidate.predict(rows.test_features)
        both = [
            evaluation.evaluate_predictions(schema.task, rows.test_target, prediction, schema.classes).get(metric.name)
            for prediction in (challenger, incumbent)
        ]
        if None in both:
            raise ChampionNotComparableError(f"{metric.name} is undefined on the {compared}")
        candidate_score, champion_score = (float(score) for score in both if score is not None)
        paired = None
        if settings.promotion.confidence:
            paired = advice.paired_gain(
                schema,
                rows.test_target,
                challenger,
                incumbent,
                metric.name,
                metric.greater_is_better,
                settings.promotion.confidence,
                settings.evaluation.bootstrap_rounds or advice.BOOTSTRAP_ROUNDS,
                settings.data.seed,
            )
        return registry.ChampionComparison(champion_score, paired, candidate_score, compared)

    decision = registry.promote_if_better(
        client,
        settings.model_name,
        settings.promotion.alias,
        metric,
        version,
        scores[metric.name],
        settings.promotion.min_improvement,
        score_champion=score_champion,
        smoke_test=smoke_test,
    )
    tracking.log_decision(client, run_id, decision)
    if decision.smoke_problem is not None:
        raise smoke_test_failed(settings, decision)
    if decision.promoted:
        notify.request_reload(settings.service)
    return decision


MIN_COMPARED_ROWS = 20  # fewer shared unseen test rows than this, and the gate cannot judge


def rows_to_compare(
    client: MlflowClient, name: str, champion: str, schema: DataSchema, split: Split
) -> tuple[Split, str]:
    """The test rows neither the champion nor the candidate learned from (the candidate's own training rows may
    repeat in its test rows when the table holds duplicates; the champion's, when it was split otherwise or trained
    on rows appended since), and those rows in words. ChampionNotComparableError when too few are left."""
    total = len(split.test_target)
    tested = data.labelled_row_digests(schema, split.test_features, split.test_target)
    new = ~np.isin(tested, data.training_row_digests(schema, split))
    seen = evaluation.trained_rows(client, name, champion)
    if seen is not None:
        new &= ~np.isin(tested, seen)
    kept = int(new.sum())
    memory = "" if seen is not None else f"; v{champion} kept no record of its training rows"
    compared = f"compared on {kept} of {total} test rows{memory}"
    if kept < total:
        compared += f"; {total - kept} were rows v{champion} or this version trained on"
    if kept < MIN_COMPARED_ROWS:
        raise ChampionNotComparableError(
            f"only {kept} of {total} test rows are new to both v{champion} and this version (at least "
            f"{MIN_COMPARED_ROWS} are needed to judge)"
        )
    if kept == total:
        return split, compared
    mask = pd.Series(new, index=split.test_target.index)
    return replace(split, test_features=split.test_features[mask], test_target=split.test_target[mask]), compared


def smoke_test_failed(settings: Settings, decision: registry.PromotionDecision) -> SmokeTestFailedError:
    """The one paragraph for a version the service could not have served: what failed, what stayed, what to do."""
    name, version, alias = settings.model_name, decision.candidate_version, settings.promotion.alias
    stays = (
        f"the {alias!r} alias stays on v{decision.champion_version}"
        if decision.champion_version
        else f"{name} has no {alias!r} yet"
    )
    return SmokeTestFailedError(
        f"{name} v{version} was registered but failed its smoke test (loaded and asked as the service would): "
        f"{decision.smoke_problem}. It was not promoted ({stays}), and its tags {registry.STATUS_TAG} and "
        f"{registry.REASON_TAG} say why. The service would fail the same way: fix the cause and train again, "
        "or rerun with --verbose for the details."
    )


def smoke_job(settings: Settings, version: str, example_outputs: list[list[float]]) -> smoke.SmokeJob:
    """The smoke test of `version`: the registry as the service reads it (URIs without credentials; those reach the
    checking process through MLflow's own environment variables), and the service's request limits."""
    tracking_settings = settings.tracking
    return smoke.SmokeJob(
        tracking_uri=tracking_settings.tracking_uri,
        registry_uri=tracking_settings.registry_uri,
        name=settings.model_name,
        version=version,
        expected=example_outputs,
        service=settings.service.model_dump(mode="json", exclude={"auth_token"}),
        trust_store=tracking_settings.trust_artifact_store,
        store_timeout_seconds=tracking_settings.store_timeout_seconds,
    )

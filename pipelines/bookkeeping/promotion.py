"""The step both flows end with: the smoke test and the promotion gate on the candidate's own test rows, recorded on
the run, and the service told when the champion moved."""

from mlflow.tracking import MlflowClient

from ...core.errors import RegistryUnavailableError, SmokeTestFailedError
from ...core.settings import Settings
from ...models.inference import Predictor
from ...models.schema import DataSchema
from ..report import advice
from ..steps import evaluation, smoke
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
        incumbent = evaluation.predict_registered(
            client, settings.model_name, champion, schema, split, settings.tracking.trust_artifact_store
        )
        score = evaluation.evaluate_predictions(schema.task, split.test_target, incumbent, schema.classes)[metric.name]
        if not settings.promotion.confidence:
            return registry.ChampionComparison(score)
        paired = advice.paired_gain(
            schema,
            split.test_target,
            candidate.predict(split.test_features),
            incumbent,
            metric.name,
            metric.greater_is_better,
            settings.promotion.confidence,
            settings.evaluation.bootstrap_rounds or advice.BOOTSTRAP_ROUNDS,
            settings.data.seed,
        )
        return registry.ChampionComparison(score, paired)

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

"""The step both flows end with: the smoke test and the promotion gate on the candidate's own test rows, recorded on
the run, and the service told when the champion moved."""

from mlflow.tracking import MlflowClient

from ...core.errors import RegistryUnavailableError
from ...core.settings import Settings
from ...models.schema import DataSchema
from ..steps import evaluation, smoke
from ..steps.data import Split
from . import notify, registry, tracking


def gate(
    client: MlflowClient,
    settings: Settings,
    run_id: str,
    version: str,
    scores: dict[str, float],
    schema: DataSchema,
    split: Split,
    checker: smoke.SmokeChecker,
    example_outputs: list[list[float]],
) -> registry.PromotionDecision:
    """Smoke-test the candidate as the service would load it (`checker`, a fresh process), score the champion on the
    candidate's test rows (the candidate's `scores` there), decide, record the decision on the run and the version,
    and tell a running service if the candidate won."""
    metric = evaluation.primary_metric(schema.task)
    job = smoke_job(settings, version, example_outputs)

    def smoke_test() -> str | None:
        result = checker.check(job)
        tracking.log_smoke_test(client, run_id, result)
        if result.registry_failed:
            raise RegistryUnavailableError(result.reason)
        return None if result.passed else result.reason

    decision = registry.promote_if_better(
        client,
        settings.model_name,
        settings.promotion.alias,
        metric,
        version,
        scores[metric.name],
        settings.promotion.min_improvement,
        score_champion=lambda champion: evaluation.score_registered_model(
            client, settings.model_name, champion, schema, split, settings.tracking.trust_artifact_store
        ),
        smoke_test=smoke_test,
    )
    tracking.log_decision(client, run_id, decision)
    if decision.promoted:
        notify.request_reload(settings.service)
    return decision


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

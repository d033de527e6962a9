"""The step both flows end with: the promotion gate on the candidate's own test rows, recorded on the run, and the
service told when the champion moved."""

from mlflow.tracking import MlflowClient

from neuroflow.models.schema import DataSchema
from neuroflow.pipelines import evaluation, notify, registry, tracking
from neuroflow.pipelines.data import Split
from neuroflow.settings import Settings


def gate(
    client: MlflowClient,
    settings: Settings,
    run_id: str,
    version: str,
    scores: dict[str, float],
    schema: DataSchema,
    split: Split,
) -> registry.PromotionDecision:
    """Score the champion on the candidate's test rows (the candidate's `scores` there), decide, record the decision
    on the run and the version, and tell a running service if the candidate won."""
    metric = evaluation.primary_metric(schema.task)
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
    )
    tracking.log_decision(client, run_id, decision)
    if decision.promoted:
        notify.request_reload(settings.service)
    return decision

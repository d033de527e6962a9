"""The honest report card of a trained network, written to its run: the primary metric's bootstrap interval, the
warnings that teach, the scikit-learn baselines, and permutation importance."""

import logging
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.tracking import MlflowClient

from ...core.settings import EvaluationSettings
from ...core.spec import NetworkSpec
from ...models.inference import Predictor
from ..steps.data import Split
from ..steps.evaluation import primary_metric
from . import advice, baseline, importance

log = logging.getLogger(__name__)

IMPORTANCE_TABLE = "importance/permutation_importance.csv"


@dataclass(frozen=True)
class Review:
    """What the run learned about its own network beyond the test metrics."""

    interval: advice.Interval | None
    warnings: list[str] = field(default_factory=list)
    baselines: baseline.BaselineReport | None = None
    importance: pd.DataFrame | None = None
    seconds: dict[str, float] = field(default_factory=dict)


def review_model(
    client: MlflowClient,
    run_id: str,
    predictor: Predictor,
    epochs: tuple[int, int],
    scores: dict[str, float],
    split: Split,
    target: pd.Series,
    spec: NetworkSpec,
    settings: EvaluationSettings,
    seed: int,
) -> Review:
    """Compute the review of a trained network on its test rows and record it on `run_id`: metrics
    (`test_<metric>_low/_high`, `baseline.*`), tags (`neuroflow.baseline`, `neuroflow.warnings`), the importance
    table and plot. `epochs`: how many ran, and the best one."""
    schema = predictor.schema
    metric = primary_metric(schema.task).name
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    interval = None
    prediction = predictor.predict(split.test_features)  # once: the interval and the baselines' verdict read it
    if settings.bootstrap_rounds:
        interval = advice.bootstrap_interval(
            schema, split.test_target, prediction, metric, settings.bootstrap_rounds, seed
        )
    seconds["bootstrap"] = time.perf_counter() - started
    warnings = advice.training_warnings(schema, target, spec, epochs[0], epochs[1], len(split.test_target), interval)
    report = None
    if settings.baseline:
        report = baseline.fit_baselines(
            schema,
            split,
            seed,
            scores,
            prediction,
            settings.bootstrap_rounds or advice.BOOTSTRAP_ROUNDS,
        )
        seconds["baseline"] = report.seconds
    started = time.perf_counter()
    table = None
    if settings.importance_repeats:
        table = importance.permutation_importance(
            predictor, split.test_features, split.test_target, settings.importance_repeats, seed
        )
    seconds["importance"] = time.perf_counter() - started
    review = Review(interval, warnings, report, table, seconds)
    log_review(client, run_id, review, metric)
    return review


def log_review(client: MlflowClient, run_id: str, review: Review, metric: str) -> None:
    """The review on the run, where the MLflow UI shows it."""
    metrics: dict[str, float] = {}
    if review.interval is not None:
        metrics |= {f"test_{metric}_low": review.interval.low, f"test_{metric}_high": review.interval.high}
    if review.baselines is not None:
        metrics |= review.baselines.metrics()
        client.set_tag(run_id, "neuroflow.baseline", review.baselines.verdict[:5000])
        client.log_dict(
            run_id,
            {"scores": review.baselines.scores, "verdict": review.baselines.verdict, "errors": review.baselines.errors},
            "baseline/baselines.json",
        )
    metrics |= {f"system/review_seconds.{name}": value for name, value in review.seconds.items()}
    client.log_batch(run_id, metrics=[mlflow.entities.Metric(k, float(v), 0, 0) for k, v in metrics.items()])
    client.set_tag(run_id, "neuroflow.warnings", " | ".join(review.warnings)[:5000] or "none")
    if review.importance is not None:
        with tempfile.TemporaryDirectory(prefix="neuroflow-importance-") as scratch:
            table = Path(scratch) / Path(IMPORTANCE_TABLE).name
            review.importance.to_csv(table, index=False)
            client.log_artifact(run_id, str(table), str(Path(IMPORTANCE_TABLE).parent))
            plot = importance.plot_importance(review.importance, metric, Path(scratch) / "permutation_importance.png")
            client.log_artifact(run_id, str(plot), "plots")

"""Hyperparameter search: plan trials over the network's knobs, run each as a nested MLflow run, pick the best.

The best trial is chosen on validation loss (the test rows stay for the promotion gate), then goes through the same
gate as `neuroflow train`. One failing trial is recorded as failed and does not stop the search.
"""

import itertools
import logging
import math
import os
import random
import socket
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import matplotlib.pyplot as plt
import mlflow
import pandas as pd
from mlflow.tracking import MlflowClient
from pydantic import ValidationError

from ...core.errors import ConfigError
from ...core.settings import NetworkSettings, Settings, TuningSettings
from ...core.spec import Task
from ...models.schema import DataSchema
from ..bookkeeping import tracking
from ..bookkeeping.registry import PromotionDecision
from . import evaluation, fitting
from .data import Split
from .evaluation import PrimaryMetric

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Trial:
    """One point of the search space: its number and the knobs it sets."""

    number: int
    knobs: dict[str, Any]


@dataclass(frozen=True)
class TrialResult:
    """How a trial ended: `completed`, `early-stopped` or `failed`, with its scores and logged model."""

    number: int
    knobs: dict[str, Any]
    status: str
    run_id: str | None
    val_loss: float | None = None
    validation_scores: dict[str, float] = field(default_factory=dict)  # never the test rows: those are the gate's
    epochs_run: int = 0
    best_epoch: int = 0
    seconds: float = 0.0
    model_uri: str | None = None
    error: str | None = None
    file_digests: dict[str, str] = field(default_factory=dict)
    example_outputs: list[list[float]] = field(default_factory=list)


def trial_network(base: NetworkSettings, knobs: dict[str, Any]) -> NetworkSettings:
    """The network settings of one trial: the base settings with the trial's knobs applied."""
    try:
        return NetworkSettings.model_validate(base.model_dump() | knobs)
    except ValidationError as error:
        problems = "; ".join(
            f"network.{'.'.join(str(part) for part in problem['loc'])}: {problem['msg'].removeprefix('Value error, ')}"
            for problem in error.errors()
        )
        raise ConfigError(f"tuning.space gives an invalid trial {knobs}: {problems}") from None


def _sample(choices: Any, rng: random.Random) -> Any:
    if isinstance(choices, list):
        return rng.choice(choices)
    low, high = float(choices["low"]), float(choices["high"])
    if choices.get("log"):  # TuningSettings guarantees low > 0 for a log range
        return float(math.exp(rng.uniform(math.log(low), math.log(high))))
    return rng.uniform(low, high)


def plan_trials(tuning: TuningSettings, base: NetworkSettings) -> list[Trial]:
    """The trials to run: `tuning.trials` random samples, or the grid (shuffled and cut to the budget if larger)."""
    rng = random.Random(tuning.seed)
    space = tuning.space
    if tuning.strategy == "grid":  # TuningSettings guarantees a list of values for every knob of a grid
        combinations = [dict(zip(space, values, strict=True)) for values in itertools.product(*space.values())]
        if len(combinations) > tuning.trials:
            log.warning("the grid has %d points; running %d of them", len(combinations), tuning.trials)
            combinations = rng.sample(combinations, tuning.trials)
    else:
        combinations = [{knob: _sample(choices, rng) for knob, choices in space.items()} for _ in range(tuning.trials)]
    trials = [Trial(number, knobs) for number, knobs in enumerate(combinations, start=1)]
    for trial in trials:
        trial_network(base, trial.knobs)  # every trial is valid before any starts
    return trials


def run_trial(
    settings: Settings, schema: DataSchema, split: Split, trial: Trial, parent_run_id: str, experiment_id: str
) -> TrialResult:
    """Train and evaluate one trial as a nested run of the search; a failure is recorded, never raised."""
    client = cast(MlflowClient, tracking.RetryingClient(tracking.configure_tracking(settings.tracking)))
    run_id: str | None = None
    started = time.perf_counter()
    try:
        network = trial_network(settings.network, trial.knobs)
        run = client.create_run(
            experiment_id,
            run_name=f"trial-{trial.number:02d}",
            tags={
                "mlflow.parentRunId": parent_run_id,
                "neuroflow.trial": str(trial.number),
                "neuroflow.dataset": settings.data.name,
                "neuroflow.trial_process": f"{socket.gethostname()}:{os.getpid()}",
            },
        )
        run_id = run.info.run_id
        client.log_batch(
            run_id,
            params=[
                mlflow.entities.Param(f"network.{key}", str(value)[:6000])
                for key, value in network.model_dump(mode="json").items()
            ],
        )
        fitted = fitting.train_and_log(
            client,
            run_id,
            schema,
            split,
            network.spec(settings.evaluation.threshold),
            settings.data.seed,
            reference_rows=settings.monitoring.reference_rows,
            holdout="validation",
        )
        result = fitted.training
        status = "early-stopped" if result.stopped_early else "completed"
        val_loss = min(result.history["val_loss"])
        client.log_metric(run_id, "best_val_loss", val_loss)
        client.set_tag(run_id, "neuroflow.trial_status", status)
        client.set_terminated(run_id, "FINISHED")
        return TrialResult(
            trial.number,
            trial.knobs,
            status,
            run_id,
            val_loss,
            fitted.scores,
            result.epochs_run,
            result.best_epoch,
            time.perf_counter() - started,
            fitted.model_uri,
            file_digests=fitted.file_digests,
            example_outputs=fitted.example_outputs,
        )
    except Exception as error:  # one failing trial must not fail the search: record it and go on
        message = f"{type(error).__name__}: {error}"
        log.warning("trial %d failed: %s", trial.number, message)
        if run_id is not None:
            client.set_tag(run_id, "neuroflow.trial_status", "failed")
            client.set_tag(run_id, "neuroflow.trial_error", message[:5000])
            client.set_terminated(run_id, "FAILED")
        return TrialResult(
            trial.number, trial.knobs, "failed", run_id, seconds=time.perf_counter() - started, error=message
        )


def best_trial(results: list[TrialResult], metric: PrimaryMetric) -> TrialResult | None:
    """The finished trial with the best validation primary metric (the one the gate judges by), never a loss that
    includes the L2 penalty; trials the metric is undefined for rank last, by validation loss."""
    finished = [result for result in results if result.status != "failed" and result.val_loss is not None]
    if not finished:
        return None

    def rank(result: TrialResult) -> tuple[int, float, float, int]:
        score = result.validation_scores.get(metric.name)
        if score is None or not math.isfinite(score):
            return (1, 0.0, result.val_loss or 0.0, result.number)
        return (0, -score if metric.greater_is_better else score, result.val_loss or 0.0, result.number)

    return min(finished, key=rank)


def trials_frame(results: list[TrialResult], metric: str) -> pd.DataFrame:
    """One row per trial: its knobs, how it ended and how it scored."""
    rows = [
        {
            "trial": result.number,
            "status": result.status,
            **{key: str(value) if isinstance(value, list | tuple) else value for key, value in result.knobs.items()},
            "val_loss": result.val_loss,
            f"validation_{metric}": result.validation_scores.get(metric),
            "epochs": result.epochs_run,
            "seconds": round(result.seconds, 1),
            "run_id": result.run_id,
            "error": result.error,
        }
        for result in sorted(results, key=lambda result: result.number)
    ]
    return pd.DataFrame(rows)


STATUS_COLOURS = {"completed": "tab:blue", "early-stopped": "tab:green", "failed": "tab:red"}


def plot_trials(frame: pd.DataFrame, path: Path) -> Path:
    """Validation loss per trial (failed trials as red marks at zero), and loss against learning rate."""
    figure, (bars, scatter) = plt.subplots(1, 2, figsize=(11, 4))
    colours = [STATUS_COLOURS[status] for status in frame["status"]]
    losses = frame["val_loss"].fillna(0.0)
    bars.bar(frame["trial"].astype(str), losses, color=colours)
    if frame["val_loss"].notna().any():
        best = frame.loc[frame["val_loss"].idxmin()]
        bars.annotate("best", (str(best["trial"]), best["val_loss"]), ha="center", va="bottom")
    bars.set(
        xlabel="trial",
        ylabel="best validation loss",
        title="Trials (blue: completed, green: early-stopped, red: failed)",
    )
    finished = frame[frame["val_loss"].notna()]
    if "learning_rate" in frame and not finished.empty:
        scatter.scatter(finished["learning_rate"], finished["val_loss"], c="tab:blue")
        for _, row in finished.iterrows():
            scatter.annotate(str(row["trial"]), (row["learning_rate"], row["val_loss"]))
        scatter.set_xscale("log")
        scatter.set(xlabel="learning rate", ylabel="best validation loss", title="Loss against learning rate")
    else:
        scatter.axis("off")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def log_search(client: MlflowClient, parent_run_id: str, results: list[TrialResult], task: Task) -> pd.DataFrame:
    """The parent run's view of the search: the trials table (CSV and MLflow table), a plot, and counts; returns
    the table."""
    metric = evaluation.primary_metric(task)
    frame = trials_frame(results, metric.name)
    best = best_trial(results, metric)
    frame[f"chosen_by_validation_{metric.name}"] = [
        best is not None and number == best.number for number in frame["trial"]
    ]
    with tempfile.TemporaryDirectory(prefix="neuroflow-search-") as scratch:
        workdir = Path(scratch)
        csv = workdir / "trials.csv"
        frame.to_csv(csv, index=False)
        client.log_artifact(parent_run_id, str(csv))
        client.log_table(parent_run_id, frame.drop(columns=["error"]).astype(str), "trials_table.json")
        client.log_artifact(parent_run_id, str(plot_trials(frame, workdir / "trials.png")), "plots")
    client.set_tag(parent_run_id, "neuroflow.chosen_by", f"validation_{metric.name}")
    counts = frame["status"].value_counts()
    metrics = {f"trials_{status.replace('-', '_')}": float(counts.get(status, 0)) for status in STATUS_COLOURS}
    if frame["val_loss"].notna().any():
        metrics["best_val_loss"] = float(frame["val_loss"].min())
    for name, value in metrics.items():
        client.log_metric(parent_run_id, name, value)
    return frame


def describe_search(
    results: list[TrialResult],
    best: TrialResult,
    statuses: dict[str, int],
    settings: Settings,
    version: str,
    decision: PromotionDecision,
) -> str:
    """The search run's description in the MLflow UI: how the trials ended and what became of the best one."""
    metric = decision.metric
    chosen = best.validation_scores.get(metric)
    score = f"validation {metric} {chosen:.4f}" if chosen is not None else f"val_loss {best.val_loss:.4f}"
    return (
        f"**Search of {len(results)} trials** ({settings.tuning.strategy}): {statuses}. Best by validation "
        f"{metric}: trial {best.number} ({score}, {best.knobs}) → {settings.model_name} v{version}, "
        f"{decision.status}. {decision.reason}"
    )

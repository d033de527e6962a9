"""The step `train` and every tuning trial share: train a network, score it on the test rows, and record it all on
one MLflow run (per-epoch metrics, test metrics, plots, the model)."""

import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from mlflow.tracking import MlflowClient

from ...core.spec import NetworkSpec
from ...models.schema import DataSchema
from ..bookkeeping import tracking
from . import data, evaluation, monitoring, smoke, training
from .data import Split
from .profiling import StepClock


@dataclass(frozen=True)
class FittedModel:
    """A trained, scored and logged model: how training went, its test scores and its `models:/` URI."""

    training: training.TrainingResult
    scores: dict[str, float]  # on the holdout rows it was evaluated on
    model_uri: str
    file_digests: dict[str, str]
    example_outputs: list[list[float]]  # the network's outputs on the logged input example, for the smoke test


def train_and_log(
    client: MlflowClient,
    run_id: str,
    schema: DataSchema,
    split: Split,
    network: NetworkSpec,
    seed: int,
    clock: StepClock | None = None,
    reference_rows: int = 5_000,
    holdout: str = "test",
) -> FittedModel:
    """Train on the split, evaluate on its `holdout` rows (`test`; a tuning trial's are `validation`, so that the
    test rows are touched once, for the chosen trial), and log metrics (`<holdout>_*`), plots, the model and the drift
    reference (a sample of the training rows with the network's answers) to `run_id`."""
    clock = clock or StepClock()
    with clock.step("train"), tracking.epoch_logger(client, run_id) as log_epoch:
        result = training.train_model(schema, split, network, seed, [log_epoch])
    rows = (
        split
        if holdout == "test"
        else replace(split, test_features=split.validation_features, test_target=split.validation_target)
    )
    with tempfile.TemporaryDirectory(prefix="neuroflow-") as workdir, clock.step("evaluate_and_log"):
        scores, plots = evaluation.evaluate_model(result.predictor, result.history, rows, Path(workdir) / "plots")
        tracking.log_evaluation(
            client,
            run_id,
            scores,
            plots,
            {"epochs_run": result.epochs_run, "best_epoch": result.best_epoch, "train_seconds": result.seconds}
            | {f"calibration.{name}": value for name, value in result.calibration.items()},
            prefix=f"{holdout}_",
        )
        example = rows.test_features.head(5)
        logged = tracking.log_model(run_id, result.predictor, example, Path(workdir))
        reference = monitoring.reference_sample(split.train_features, result.predictor, reference_rows, seed)
        monitoring.log_reference(client, run_id, reference)
        digests = Path(workdir) / data.TRAINING_ROWS_ARTIFACT  # what the gate leaves out when this is champion
        np.savez_compressed(digests, rows=data.training_row_digests(schema, split))
        client.log_artifact(run_id, str(digests))
    return FittedModel(
        result, scores, logged.uri, logged.file_digests, smoke.expected_outputs(result.predictor, example)
    )

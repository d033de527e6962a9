from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from neuroflow.models.inference import Prediction
from neuroflow.pipelines.steps.evaluation import evaluate_predictions, make_plots, primary_metric

HISTORY = {
    "loss": [0.9, 0.5, 0.4],
    "val_loss": [1.0, 0.6, 0.5],
    "accuracy": [0.5, 0.7, 0.8],
    "val_accuracy": [0.5, 0.6, 0.7],
}


def test_perfect_binary_predictions_score_one() -> None:
    truth = pd.Series([0, 1, 1, 0])
    prediction = Prediction(np.array(["0", "1", "1", "0"]), np.array([[0.9, 0.1], [0.2, 0.8], [0.1, 0.9], [0.7, 0.3]]))
    scores = evaluate_predictions("binary", truth, prediction, ("0", "1"))
    assert scores["accuracy"] == scores["precision"] == scores["recall"] == scores["f1"] == scores["roc_auc"] == 1.0
    assert 0 < scores["log_loss"] < 0.4


def test_multiclass_metrics_are_macro_averaged() -> None:
    truth = pd.Series(["a", "a", "b", "c"])
    labels = np.array(["a", "b", "b", "c"])
    probabilities = np.array([[0.8, 0.1, 0.1], [0.3, 0.6, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8]])
    scores = evaluate_predictions("multiclass", truth, Prediction(labels, probabilities), ("a", "b", "c"))
    assert scores["accuracy"] == 0.75
    assert scores["recall"] == pytest.approx((0.5 + 1 + 1) / 3)
    assert scores["f1"] == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)


def test_regression_metrics() -> None:
    scores = evaluate_predictions("regression", pd.Series([1.0, 2.0, 3.0]), Prediction(np.array([1.0, 2.0, 5.0])), None)
    assert scores["rmse"] == pytest.approx(np.sqrt(4 / 3))
    assert scores["mae"] == pytest.approx(2 / 3)
    assert scores["r2"] == pytest.approx(1 - 4 / 2)


def test_primary_metric_direction() -> None:
    assert primary_metric("binary").name == "roc_auc"
    assert primary_metric("multiclass").name == "f1"
    rmse = primary_metric("regression")
    assert rmse.name == "rmse" and rmse.improvement(candidate=4.0, incumbent=5.0) == 1.0


@pytest.mark.parametrize(
    ("task", "files"),
    [
        ("binary", {"learning_curves.png", "confusion_matrix.png", "roc_curve.png"}),
        ("multiclass", {"learning_curves.png", "confusion_matrix.png"}),
        ("regression", {"learning_curves.png", "predicted_vs_actual.png", "residuals.png"}),
    ],
)
def test_plots_fit_the_task(tmp_path: Path, task: str, files: set[str]) -> None:
    if task == "regression":
        truth, prediction, classes = pd.Series([1.0, 2.0, 3.0]), Prediction(np.array([1.1, 1.9, 3.2])), None
    elif task == "binary":
        truth = pd.Series([0, 1, 1, 0])
        prediction = Prediction(
            np.array(["0", "1", "0", "0"]), np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.7, 0.3]])
        )
        classes = ("0", "1")
    else:
        truth = pd.Series([0, 1, 2])
        prediction = Prediction(np.array(["0", "1", "1"]), np.eye(3)[[0, 1, 1]])
        classes = ("0", "1", "2")
    paths = make_plots(task, HISTORY, truth, prediction, classes, tmp_path)  # type: ignore[arg-type]
    assert {path.name for path in paths} == files
    for path in paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5_000

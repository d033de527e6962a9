"""Live metrics from served predictions and their labels, held equal to scikit-learn's."""

import json
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, f1_score, mean_absolute_error, roc_auc_score

from neuroflow.models.livemetrics import labelled, live_metrics, roc_auc


def log_rows(predictions: list, probabilities: list | None, version: str = "1", role: str = "champion") -> pd.DataFrame:
    ids = [f"r-{index}" for index in range(len(predictions))]
    return pd.DataFrame(
        {
            "request_id": ids,
            "model_version": version,
            "role": role,
            "prediction": [json.dumps(value) for value in predictions],
            "probabilities": [
                json.dumps(row) if row is not None else None for row in (probabilities or [None] * len(ids))
            ],
        }
    )


def feedback(labels: dict[str, object]) -> pd.DataFrame:
    now = datetime.now(UTC)
    return pd.DataFrame(
        {
            "request_id": list(labels),
            "label": [json.dumps(v) for v in labels.values()],
            "received_at": [now] * len(labels),
        }
    )


def test_binary_metrics_equal_scikit_learns() -> None:
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 2, 200)
    positive = np.clip(truth * 0.3 + rng.random(200) * 0.7, 0, 1)
    predicted = (positive > 0.5).astype(int)
    rows = log_rows(predicted.tolist(), [{"0": 1 - p, "1": p} for p in positive])
    joined = labelled(rows, feedback({f"r-{i}": int(v) for i, v in enumerate(truth)}))
    scores = live_metrics(joined, "binary", ("0", "1"))[("champion", "1")]
    assert scores["rows"] == 200
    assert scores["accuracy"] == pytest.approx(accuracy_score(truth, predicted))
    assert scores["f1_macro"] == pytest.approx(f1_score(truth, predicted, average="macro"))
    assert scores["roc_auc"] == pytest.approx(roc_auc_score(truth, positive))


def test_multiclass_auc_is_the_macro_one_against_rest() -> None:
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 3, 150)
    matrix = rng.dirichlet([1, 1, 1], 150)
    matrix[np.arange(150), truth] += 0.5
    matrix /= matrix.sum(axis=1, keepdims=True)
    rows = log_rows(matrix.argmax(axis=1).tolist(), [dict(zip("abc", row.tolist(), strict=True)) for row in matrix])
    rows["prediction"] = [json.dumps("abc"[i]) for i in matrix.argmax(axis=1)]
    joined = labelled(rows, feedback({f"r-{i}": "abc"[v] for i, v in enumerate(truth)}))
    scores = live_metrics(joined, "multiclass", ("a", "b", "c"))[("champion", "1")]
    assert scores["roc_auc"] == pytest.approx(roc_auc_score(truth, matrix, multi_class="ovr", average="macro"))
    assert scores["f1_macro"] == pytest.approx(f1_score(truth, matrix.argmax(axis=1), average="macro"))


def test_regression_and_the_latest_label_wins() -> None:
    rows = log_rows([10.0, 20.0, 30.0], None)
    labels = feedback({"r-0": 12.0, "r-1": 20.0, "r-2": 0.0})
    later = feedback({"r-2": 33.0})
    joined = labelled(rows, pd.concat([labels, later], ignore_index=True))
    scores = live_metrics(joined, "regression", None)[("champion", "1")]
    assert scores["mae"] == pytest.approx(mean_absolute_error([12, 20, 33], [10, 20, 30]))
    assert scores["rmse"] == pytest.approx(np.sqrt((4 + 0 + 9) / 3))


def test_records_without_labels_give_no_metrics_and_one_class_gives_no_auc() -> None:
    rows = log_rows([1, 1], [{"0": 0.2, "1": 0.8}, {"0": 0.4, "1": 0.6}])
    assert live_metrics(labelled(rows, feedback({})), "binary", ("0", "1")) == {}
    scores = live_metrics(labelled(rows, feedback({"r-0": 1, "r-1": 1})), "binary", ("0", "1"))[("champion", "1")]
    assert scores["accuracy"] == 1.0 and np.isnan(scores["roc_auc"])
    assert np.isnan(roc_auc(np.array([True, True]), np.array([0.1, 0.2])))

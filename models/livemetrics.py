"""Live metrics: served predictions joined to the labels that came back for them, scored per model version.

Plain NumPy and pandas (no scikit-learn), so the service can keep its gauges current without loading it.
"""

import json
import math
from typing import Any

import numpy as np
import pandas as pd

from .schema import category_label as label_key

CLASSIFICATION_METRICS = ("accuracy", "f1_macro", "roc_auc")
REGRESSION_METRICS = ("rmse", "mae")


def decode(values: pd.Series) -> list[Any]:
    """A column of JSON texts as Python values (None stays None)."""
    return [json.loads(value) if isinstance(value, str) else value for value in values]


def labelled(records: pd.DataFrame, feedback: pd.DataFrame) -> pd.DataFrame:
    """The served records that have a label: the latest label given for each request id."""
    if records.empty or feedback.empty:
        return records.iloc[0:0].assign(label=pd.Series(dtype=object))
    latest = feedback.sort_values("received_at", kind="stable").drop_duplicates("request_id", keep="last")
    joined = records.merge(latest[["request_id", "label"]], on="request_id", how="inner")
    joined["label"] = decode(joined["label"])
    return joined


def roc_auc(truth: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve of one class against the rest (Mann-Whitney, ties averaged); NaN with one class."""
    positives = int(truth.sum())
    negatives = len(truth) - positives
    if positives == 0 or negatives == 0:
        return math.nan
    ranks = pd.Series(score).rank(method="average").to_numpy()
    return float((ranks[truth].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def classification_scores(
    labels: list[Any], predictions: list[Any], probabilities: list[dict[str, float] | None], classes: tuple[str, ...]
) -> dict[str, float]:
    truth = np.array([label_key(value) for value in labels], dtype=object)
    chosen = np.array([label_key(value) for value in predictions], dtype=object)
    scores = {"accuracy": float((truth == chosen).mean())}
    f1s = []
    for label in classes:
        true_positive = float(((chosen == label) & (truth == label)).sum())
        predicted, actual = float((chosen == label).sum()), float((truth == label).sum())
        if actual == 0 and predicted == 0:
            continue
        f1s.append(2 * true_positive / (predicted + actual) if predicted + actual else 0.0)
    scores["f1_macro"] = float(np.mean(f1s)) if f1s else math.nan
    if all(row is not None for row in probabilities):
        matrix = np.array([[row.get(label, 0.0) for label in classes] for row in probabilities])  # type: ignore[union-attr]
        columns = [1] if len(classes) == 2 else range(len(classes))
        aucs = [roc_auc(truth == classes[index], matrix[:, index]) for index in columns]
        finite = [value for value in aucs if not math.isnan(value)]
        scores["roc_auc"] = float(np.mean(finite)) if finite else math.nan
    return scores


def regression_scores(labels: list[Any], predictions: list[Any]) -> dict[str, float]:
    errors = np.asarray(predictions, dtype="float64") - np.asarray(labels, dtype="float64")
    return {"rmse": float(np.sqrt(np.mean(errors**2))), "mae": float(np.mean(np.abs(errors)))}


def live_metrics(joined: pd.DataFrame, task: str, classes: tuple[str, ...] | None) -> dict[tuple[str, str], Any]:
    """`{(role, version): {"rows": n, metric: value, ...}}` for every role and version with labelled records."""
    results: dict[tuple[str, str], Any] = {}
    if joined.empty:
        return results
    for (role, version), rows in joined.groupby(["role", "model_version"], sort=True):
        labels = list(rows["label"])
        predictions = decode(rows["prediction"])
        if task == "regression":
            scores = regression_scores(labels, predictions)
        else:
            scores = classification_scores(labels, predictions, decode(rows["probabilities"]), tuple(classes or ()))
        results[(str(role), str(version))] = {"rows": len(rows)} | scores
    return results

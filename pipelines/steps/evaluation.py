"""Scoring predictions on held-out rows, and the plots people look at instead of reading numbers."""

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator
from sklearn import metrics

from ...core.errors import (
    ChampionNotComparableError,
    RegistryUnavailableError,
    SchemaMismatchError,
    UntrustedModelError,
)
from ...core.spec import Task
from ...core.store import describe_version, reason
from ...models import calibration
from ...models.inference import Prediction, Predictor
from ...models.loading import load_version
from ...models.schema import DataSchema, category_label
from .data import Split

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PrimaryMetric:
    """The metric that decides promotion, and which way is better."""

    name: str
    greater_is_better: bool

    def improvement(self, candidate: float, incumbent: float) -> float:
        """How much better the candidate is (positive) or worse (negative)."""
        return candidate - incumbent if self.greater_is_better else incumbent - candidate


PRIMARY_METRICS: dict[str, PrimaryMetric] = {
    "binary": PrimaryMetric("roc_auc", True),
    "multiclass": PrimaryMetric("f1", True),
    "regression": PrimaryMetric("rmse", False),
}


# What each metric is, as a person reads it; multi-class precision, recall, F1 and ROC AUC are macro averages.
METRIC_LABELS = {
    "accuracy": "accuracy",
    "precision": "precision",
    "recall": "recall",
    "f1": "F1",
    "roc_auc": "ROC AUC",
    "log_loss": "log loss",
    "ece": "expected calibration error",
    "rmse": "RMSE",
    "mae": "MAE",
    "r2": "R²",
}
MACRO = ("precision", "recall", "f1", "roc_auc")


def metric_label(name: str, task: str) -> str:
    """A metric's name as the card says it: `f1` of a multi-class model is "macro F1"."""
    base = name.removesuffix("_uncalibrated")
    label = METRIC_LABELS.get(base, base)
    if task == "multiclass" and base in MACRO:
        label = f"macro {label}" + (" (one-vs-rest)" if base == "roc_auc" else "")
    return label + (" (uncalibrated)" if name.endswith("_uncalibrated") else "")


def primary_metric(task: Task) -> PrimaryMetric:
    return PRIMARY_METRICS[task]


def evaluate_predictions(
    task: Task, truth: pd.Series, prediction: Prediction, classes: tuple[str, ...] | None
) -> dict[str, float]:
    """Accuracy, precision, recall, F1, ROC AUC and log loss (macro for multi-class); RMSE, MAE, R² for regression."""
    if task == "regression":
        actual = truth.to_numpy(dtype="float64")
        predicted = np.asarray(prediction.labels, dtype="float64")
        return {
            "rmse": float(np.sqrt(metrics.mean_squared_error(actual, predicted))),
            "mae": float(metrics.mean_absolute_error(actual, predicted)),
            "r2": float(metrics.r2_score(actual, predicted)),
        }
    labels = list(classes or ())
    actual_labels = truth.map(category_label).to_numpy()
    probabilities = np.clip(np.asarray(prediction.probabilities, dtype="float64"), 1e-15, 1.0)
    probabilities = probabilities / probabilities.sum(axis=1, keepdims=True)
    averaging = {"average": "binary", "pos_label": labels[-1]} if task == "binary" else {"average": "macro"}
    scores = {
        "accuracy": float(metrics.accuracy_score(actual_labels, prediction.labels)),
        "precision": float(metrics.precision_score(actual_labels, prediction.labels, zero_division=0, **averaging)),
        "recall": float(metrics.recall_score(actual_labels, prediction.labels, zero_division=0, **averaging)),
        "f1": float(metrics.f1_score(actual_labels, prediction.labels, zero_division=0, **averaging)),
        "log_loss": float(metrics.log_loss(actual_labels, probabilities, labels=labels)),
    }
    known = np.isin(actual_labels, labels)
    if known.all():
        indices = pd.Series(actual_labels).map({label: index for index, label in enumerate(labels)}).to_numpy()
        scores["ece"] = calibration.expected_calibration_error(probabilities, indices.astype("int64"))
    present = set(actual_labels)
    if len(present) == len(labels):
        if task == "binary":
            scores["roc_auc"] = float(metrics.roc_auc_score(actual_labels == labels[1], probabilities[:, 1]))
        else:
            scores["roc_auc"] = float(
                metrics.roc_auc_score(actual_labels, probabilities, multi_class="ovr", average="macro", labels=labels)
            )
    return scores


def evaluate_model(
    predictor: Predictor, history: dict[str, list[float]], split: Split, plot_dir: Path
) -> tuple[dict[str, float], list[Path]]:
    """Test metrics and plots for a trained predictor."""
    schema = predictor.schema
    matrix = predictor.encode(split.test_features)
    prediction = predictor.decode(predictor.raw_outputs(matrix))
    scores = evaluate_predictions(schema.task, split.test_target, prediction, schema.classes)
    if schema.task != "regression" and predictor.forward.temperature != 1.0:
        plain = predictor.decode(np.asarray(predictor.forward.calibrated(1.0)(matrix), dtype="float64"))
        before = evaluate_predictions(schema.task, split.test_target, plain, schema.classes)
        scores |= {f"{name}_uncalibrated": before[name] for name in ("log_loss", "ece") if name in before}
    plots = make_plots(schema.task, history, split.test_target, prediction, schema.classes, plot_dir)
    return scores, plots


def score_registered_model(
    client: Any, name: str, version: str, schema: DataSchema, split: Split, trust_store: bool = False
) -> float:
    """A registered version's primary metric on these test rows, loaded through the safe loader (nothing from the
    store runs here). RegistryUnavailableError when its files cannot be read; ChampionNotComparableError when it
    cannot score these rows (other columns or classes, or files the loader refuses)."""
    scores = score_version(client, name, version, schema, split, trust_store)
    return scores[primary_metric(schema.task).name]


def score_version(
    client: Any, name: str, version: str, schema: DataSchema, split: Split, trust_store: bool = False
) -> dict[str, float]:
    """Every test metric of a registered version on these test rows (see `score_registered_model`)."""
    prediction = predict_registered(client, name, version, schema, split, trust_store)
    return evaluate_predictions(schema.task, split.test_target, prediction, schema.classes)


def predict_registered(
    client: Any, name: str, version: str, schema: DataSchema, split: Split, trust_store: bool = False
) -> Prediction:
    """A registered version's predictions on these test rows, loaded through the safe loader (see
    `score_registered_model` for its errors)."""
    predictor = load_comparable(client, name, version, schema, trust_store)
    try:
        return predictor.predict(split.test_features)
    except (SchemaMismatchError, ValueError, TypeError, KeyError) as error:
        raise ChampionNotComparableError(f"v{version} cannot read these rows: {error}") from None


def trained_rows(client: Any, name: str, version: str) -> np.ndarray | None:
    """The digests of the rows a registered version learned from (`data.TRAINING_ROWS_ARTIFACT` on its run), read
    as data (no pickle); None when its run kept none (trained before neuroflow recorded them). A registry or store
    that fails to answer is RegistryUnavailableError, never taken for "kept none"."""
    from mlflow.exceptions import MlflowException

    from .data import TRAINING_ROWS_ARTIFACT
    from .monitoring import read_run_file

    try:
        run_id = client.get_model_version(name, version).run_id
        if not run_id or TRAINING_ROWS_ARTIFACT not in {item.path for item in client.list_artifacts(run_id)}:
            return None
        rows: np.ndarray = read_run_file(
            client, run_id, TRAINING_ROWS_ARTIFACT, lambda path: np.load(path, allow_pickle=False)["rows"]
        )
    except (MlflowException, OSError) as error:
        raise RegistryUnavailableError(
            f"could not read which rows v{version} of {name} trained on: {reason(error)}"
        ) from None
    return rows


def load_comparable(client: Any, name: str, version: str, schema: DataSchema, trust_store: bool = False) -> Predictor:
    """A registered version through the safe loader, checked to predict the same task and classes as `schema`."""
    from mlflow.exceptions import MlflowException

    try:
        info = describe_version(client, name, version, None)
    except (MlflowException, OSError) as error:  # the registry's own failures; anything else is a bug
        raise RegistryUnavailableError(
            f"could not read v{version} of {name} from the registry to score it: {reason(error)}"
        ) from None
    try:
        predictor = load_version(info, trust_store).predictor
    except RegistryUnavailableError as error:
        raise RegistryUnavailableError(f"could not read v{version} of {name} to score it: {error}") from None
    except UntrustedModelError as error:
        raise ChampionNotComparableError(str(error)) from None
    if predictor.schema.task != schema.task or predictor.schema.classes != schema.classes:
        raise ChampionNotComparableError(
            f"v{version} was trained for {predictor.schema.task} with classes {predictor.schema.classes}, "
            f"this data is {schema.task} with classes {schema.classes}"
        )
    return predictor


def plot_learning_curves(history: dict[str, list[float]], path: Path) -> Path:
    """Loss and each metric per epoch, train against validation, with the epoch whose weights were kept."""
    names = [name for name in history if not name.startswith("val_")]
    best = int(np.argmin(history["val_loss"])) + 1 if "val_loss" in history else None
    figure, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 3.8), squeeze=False)
    for axis, name in zip(axes[0], names, strict=True):
        epochs = np.arange(1, len(history[name]) + 1)
        axis.plot(epochs, history[name], label="train")
        if f"val_{name}" in history:
            axis.plot(epochs, history[f"val_{name}"], label="validation")
        if best is not None:
            axis.axvline(best, linestyle=":", color="grey", linewidth=1, label=f"best epoch ({best})")
        axis.set_title(name.replace("_", " "))
        axis.set_xlabel("epoch")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.legend()
        axis.grid(alpha=0.3)
    return _save(figure, path)


def plot_confusion_matrix(truth: pd.Series, prediction: Prediction, classes: tuple[str, ...], path: Path) -> Path:
    """Counts of true against predicted class."""
    figure, axis = plt.subplots(figsize=(4.8, 4.2))
    metrics.ConfusionMatrixDisplay.from_predictions(
        truth.map(category_label),
        prediction.labels,
        labels=list(classes),
        display_labels=list(classes),
        ax=axis,
        colorbar=False,
    )
    axis.set(xlabel="predicted class", ylabel="true class", title="confusion matrix (test)")
    if len(classes) > 4:
        plt.setp(axis.get_xticklabels(), rotation=45, ha="right")
    return _save(figure, path)


def plot_roc_curve(truth: pd.Series, prediction: Prediction, classes: tuple[str, ...], path: Path) -> Path:
    """ROC curve of the positive class."""
    figure, axis = plt.subplots(figsize=(4.8, 4.2))
    positive = truth.map(category_label).to_numpy() == classes[1]
    scores = np.asarray(prediction.probabilities)[:, 1]
    false_positive, true_positive, _ = metrics.roc_curve(positive, scores)
    area = metrics.roc_auc_score(positive, scores)
    axis.plot(false_positive, true_positive, label=f"network (AUC = {area:.3f})")
    axis.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="chance (AUC = 0.500)")
    axis.set(
        xlabel=f"false positive rate (true {classes[0]!r} called {classes[1]!r})",
        ylabel=f"true positive rate ({classes[1]!r} found)",
        title=f"ROC curve, positive class {classes[1]!r} (test)",
    )
    axis.legend(loc="lower right")
    axis.grid(alpha=0.3)
    return _save(figure, path)


def plot_regression(truth: pd.Series, prediction: Prediction, directory: Path) -> list[Path]:
    """Predicted against actual, and residuals against predicted."""
    actual = truth.to_numpy(dtype="float64")
    predicted = np.asarray(prediction.labels, dtype="float64")
    figure, axis = plt.subplots(figsize=(4.8, 4.2))
    axis.scatter(actual, predicted, s=12, alpha=0.7)
    low, high = float(min(actual.min(), predicted.min())), float(max(actual.max(), predicted.max()))
    axis.plot([low, high], [low, high], linestyle="--", color="grey", linewidth=1)
    axis.set(xlabel="actual", ylabel="predicted", title="predicted vs actual (test)")
    first = _save(figure, directory / "predicted_vs_actual.png")
    figure, axis = plt.subplots(figsize=(4.8, 4.2))
    axis.scatter(predicted, actual - predicted, s=12, alpha=0.7)
    axis.axhline(0, linestyle="--", color="grey", linewidth=1)
    axis.set(xlabel="predicted", ylabel="actual - predicted", title="residuals (test)")
    return [first, _save(figure, directory / "residuals.png")]


def make_plots(
    task: Task,
    history: dict[str, list[float]],
    truth: pd.Series,
    prediction: Prediction,
    classes: tuple[str, ...] | None,
    directory: Path,
) -> list[Path]:
    """Every plot that fits the task, as PNG files in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = [plot_learning_curves(history, directory / "learning_curves.png")]
    if task == "regression":
        return paths + plot_regression(truth, prediction, directory)
    paths.append(plot_confusion_matrix(truth, prediction, classes or (), directory / "confusion_matrix.png"))
    if task == "binary":
        paths.append(plot_roc_curve(truth, prediction, classes or (), directory / "roc_curve.png"))
    return paths


def _save(figure: plt.Figure, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path

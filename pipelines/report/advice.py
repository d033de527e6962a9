"""Warnings that teach: what a run's numbers say about the run itself (training cut short, a test split too small
to trust, a rare class), each with what to do about it; and a bootstrap interval for the primary metric."""

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ...core.spec import NetworkSpec
from ...models.inference import Prediction
from ...models.livemetrics import roc_auc
from ...models.schema import DataSchema, category_label

log = logging.getLogger(__name__)

SMALL_TEST_ROWS = 50
RARE_CLASS_SHARE = 0.10
BOOTSTRAP_ROUNDS = 500


@dataclass(frozen=True)
class Interval:
    """A metric's value on the test rows and its 95 % bootstrap interval over resamples of those rows."""

    metric: str
    value: float
    low: float
    high: float
    rows: int

    def describe(self) -> str:
        return f"{self.metric} {self.value:.3f} (95% interval {self.low:.3f} to {self.high:.3f}, {self.rows} test rows)"


def primary_score(task: str, truth: np.ndarray, prediction: Prediction, classes: tuple[str, ...]) -> float:
    """The primary metric (ROC AUC, macro F1, RMSE) in NumPy, cheap enough to repeat for a bootstrap."""
    if task == "regression":
        errors = np.asarray(prediction.labels, dtype="float64") - truth.astype("float64")
        return float(np.sqrt(np.mean(errors**2)))
    if task == "binary":
        return roc_auc(truth == classes[1], np.asarray(prediction.probabilities)[:, 1])
    chosen = np.asarray(prediction.labels, dtype=object)
    f1s = []
    for label in classes:
        hits = float(((chosen == label) & (truth == label)).sum())
        predicted, actual = float((chosen == label).sum()), float((truth == label).sum())
        f1s.append(2 * hits / (predicted + actual) if predicted + actual else 0.0)
    return float(np.mean(f1s))


def resampled(prediction: Prediction, pick: np.ndarray) -> Prediction:
    """The prediction of the rows `pick` names (with repeats): one resample of a bootstrap."""
    probabilities = None if prediction.probabilities is None else np.asarray(prediction.probabilities)[pick]
    return Prediction(np.asarray(prediction.labels)[pick], probabilities)


def bootstrap_interval(
    schema: DataSchema,
    truth: pd.Series,
    prediction: Prediction,
    metric: str,
    rounds: int = BOOTSTRAP_ROUNDS,
    seed: int = 0,
) -> Interval:
    """The primary metric and its 2.5 and 97.5 percentiles over `rounds` resamples (with replacement) of the test
    rows; a resample the metric is undefined on (one class only) is skipped."""
    classes = tuple(schema.classes or ())
    actual = truth.to_numpy() if schema.task == "regression" else truth.map(category_label).to_numpy(dtype=object)
    value = primary_score(schema.task, actual, prediction, classes)
    rng = np.random.default_rng(seed)
    rows = len(actual)
    scores = []
    for _ in range(rounds):
        pick = rng.integers(0, rows, rows)
        score = primary_score(schema.task, actual[pick], resampled(prediction, pick), classes)
        if np.isfinite(score):
            scores.append(score)
    low, high = (float(np.percentile(scores, q)) for q in (2.5, 97.5)) if scores else (float("nan"),) * 2
    return Interval(metric, value, low, high, rows)


@dataclass(frozen=True)
class PairedGain:
    """How much better one model is than another on the same test rows (positive: better, in the metric's own
    direction), with a paired bootstrap interval: both scored on each resample of the rows. `low` is the gain's
    (1 - confidence) quantile, so `low > 0` says the gain is above zero with that confidence; `high` is the
    confidence quantile."""

    metric: str
    gain: float
    low: float
    high: float
    rows: int
    confidence: float

    @property
    def sure(self) -> bool:
        """Whether the gain is above zero with the configured confidence."""
        return bool(self.low > 0)

    def describe(self) -> str:
        return (
            f"{self.gain:+.4f} {self.metric} [{self.low:+.4f}, {self.high:+.4f}] "
            f"({self.confidence:.0%} paired bootstrap on {self.rows} test rows)"
        )


def paired_gain(
    schema: DataSchema,
    truth: pd.Series,
    candidate: Prediction,
    incumbent: Prediction,
    metric: str,
    greater_is_better: bool,
    confidence: float,
    rounds: int = BOOTSTRAP_ROUNDS,
    seed: int = 0,
) -> PairedGain:
    """The candidate's gain over the incumbent on the same rows, and its paired bootstrap quantiles: each resample
    scores both models on the same picked rows, so what the rows share (an easy or a hard test set) cancels out and
    only the difference between the models is left. A resample the metric is undefined on is skipped."""
    classes = tuple(schema.classes or ())
    actual = truth.to_numpy() if schema.task == "regression" else truth.map(category_label).to_numpy(dtype=object)
    sign = 1.0 if greater_is_better else -1.0

    def gain_on(pick: np.ndarray | None) -> float:
        def score(prediction: Prediction) -> float:
            if pick is None:
                return primary_score(schema.task, actual, prediction, classes)
            return primary_score(schema.task, actual[pick], resampled(prediction, pick), classes)

        return sign * (score(candidate) - score(incumbent))

    rng = np.random.default_rng(seed)
    rows = len(actual)
    gains = [gain for _ in range(rounds) if np.isfinite(gain := gain_on(rng.integers(0, rows, rows)))]
    if gains:
        low, high = float(np.quantile(gains, 1 - confidence)), float(np.quantile(gains, confidence))
    else:
        low = high = float("nan")
    return PairedGain(metric, gain_on(None), low, high, rows, confidence)


def training_warnings(
    schema: DataSchema,
    target: pd.Series,
    spec: NetworkSpec,
    epochs_run: int,
    best_epoch: int,
    test_rows: int,
    interval: Interval | None,
) -> list[str]:
    """Each thing about this run a user should act on, as one sentence that says what to do."""
    found = []
    if epochs_run >= spec.epochs and best_epoch >= epochs_run:
        found.append(
            f"training stopped at the cap of {spec.epochs} epochs while the validation loss was still improving "
            f"(best epoch {best_epoch} of {epochs_run}); raise --epochs (network.epochs) to let it go on"
        )
    if test_rows < SMALL_TEST_ROWS:
        shown = f": {interval.describe()}" if interval is not None else ""
        found.append(
            f"the test split has only {test_rows} rows, so its metrics are noisy{shown}; use more data or a larger "
            "--test-size before trusting small differences (the champion gate compares on these rows too)"
        )
    if schema.task != "regression" and spec.class_weight != "balanced":
        shares = target.map(category_label).value_counts(normalize=True)
        rare = shares[shares < RARE_CLASS_SHARE]
        if not rare.empty:
            named = ", ".join(f"{label!r} is {share:.1%}" for label, share in rare.items())
            found.append(
                f"class {named} of the rows: the network can score well by ignoring it; pass --class-weight "
                "balanced (network.class_weight) so every class weighs the same, and judge it by recall and F1"
            )
    for warning in found:
        log.warning("%s", warning)
    return found

"""Fast scikit-learn baselines beside the network, on the same split and the same preprocessing: whether the network
earns its place. They are reported, never registered, and never change what is promoted."""

import logging
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from ...models.inference import Prediction
from ...models.preprocessing import fit_preprocessing
from ...models.schema import DataSchema
from ..steps.data import Split
from ..steps.evaluation import evaluate_predictions, metric_label, primary_metric
from .advice import BOOTSTRAP_ROUNDS, PairedGain, paired_gain

log = logging.getLogger(__name__)

# Without paired evidence (no predictions to resample): within this much of the best baseline, "level with" it.
LEVEL = 0.005
# With it: the network is level with a baseline when the 95% paired interval of network - baseline holds zero.
VERDICT_CONFIDENCE = 0.975  # the interval's ends are the 2.5 and 97.5 percentiles
# Per-row metrics the verdict also checks (a baseline ahead beyond its interval is said): +1 higher is better.
SECONDARY = {"classification": {"accuracy": 1.0, "log_loss": -1.0}, "regression": {"mae": -1.0}}
NAMES = {
    "logistic_regression": "logistic regression",
    "ridge": "ridge regression",
    "gradient_boosting": "gradient boosting",
}


@dataclass(frozen=True)
class BaselineReport:
    """Each baseline's test metrics, the seconds they took, and the one-line verdict on the network."""

    scores: dict[str, dict[str, float]]
    seconds: float
    metric: str
    verdict: str
    gap: float | None = None  # the network's primary metric minus the best baseline's, signed so that + is better
    best: str | None = None
    errors: dict[str, str] = field(default_factory=dict)

    def metrics(self) -> dict[str, float]:
        """As MLflow metrics: `baseline.<model>.<metric>`, `baseline.gap` and `baseline.seconds`."""
        flat = {
            f"baseline.{model}.{name}": value for model, scores in self.scores.items() for name, value in scores.items()
        }
        return flat | ({"baseline.gap": self.gap} if self.gap is not None else {}) | {"baseline.seconds": self.seconds}


def baseline_models(task: str, seed: int) -> dict[str, object]:
    """A linear model and histogram gradient boosting, with their defaults (the point is a quick, honest yardstick)."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.linear_model import LogisticRegression, Ridge

    if task == "regression":
        return {"ridge": Ridge(), "gradient_boosting": HistGradientBoostingRegressor(random_state=seed)}
    return {
        "logistic_regression": LogisticRegression(max_iter=1000),
        "gradient_boosting": HistGradientBoostingClassifier(random_state=seed),
    }


def fit_baselines(
    schema: DataSchema,
    split: Split,
    seed: int,
    network_scores: dict[str, float],
    network_prediction: Prediction | None = None,
    rounds: int = BOOTSTRAP_ROUNDS,
) -> BaselineReport:
    """Fit each baseline on the training rows (through the network's own preprocessing, fitted the same way) and
    score it on the test rows with the network's metrics. With the network's own test predictions, the verdict is
    judged on paired intervals over the test rows, not on the point gap."""
    started = time.perf_counter()
    preprocessing = fit_preprocessing(schema, split.train_features, split.train_target)
    train_x = preprocessing.transform(split.train_features)
    test_x = preprocessing.transform(split.test_features)
    train_y = preprocessing.encode_target(split.train_target)
    classes = np.asarray(schema.classes or (), dtype=object)
    scores: dict[str, dict[str, float]] = {}
    predictions: dict[str, Prediction] = {}
    errors: dict[str, str] = {}
    for name, model in baseline_models(schema.task, seed).items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # convergence chatter; the scores say how it went
                model.fit(train_x, train_y)  # type: ignore[attr-defined]
                if schema.task == "regression":
                    values = preprocessing.decode_regression(np.asarray(model.predict(test_x), dtype="float64"))  # type: ignore[attr-defined]
                    prediction = Prediction(values)
                else:
                    probabilities = np.zeros((len(test_x), len(classes)))
                    probabilities[:, model.classes_] = model.predict_proba(test_x)  # type: ignore[attr-defined]
                    prediction = Prediction(classes[np.argmax(probabilities, axis=1)].astype(str), probabilities)
        except Exception as error:  # a baseline that cannot fit is reported, never fatal
            errors[name] = str(error).splitlines()[0][:200]
            log.warning("baseline %s could not be fitted: %s", name, errors[name])
            continue
        scores[name] = evaluate_predictions(schema.task, split.test_target, prediction, schema.classes)
        predictions[name] = prediction
    metric = primary_metric(schema.task)
    evidence, leads = None, None
    scored = {name: values[metric.name] for name, values in scores.items() if metric.name in values}
    if network_prediction is not None and scored and metric.name in network_scores:
        sign = 1.0 if metric.greater_is_better else -1.0
        best_name = max(scored, key=lambda name: sign * scored[name])
        evidence = paired_gain(
            schema,
            split.test_target,
            network_prediction,
            predictions[best_name],
            metric.name,
            metric.greater_is_better,
            VERDICT_CONFIDENCE,
            rounds,
            seed,
        )
        leads = secondary_lead(schema, split, network_prediction, predictions, scores, network_scores, rounds, seed)
    seconds = time.perf_counter() - started
    gap, best, verdict = compare(
        network_scores, scores, metric.name, metric.greater_is_better, evidence, leads, schema.task
    )
    log.info("baselines in %.2f s: %s", seconds, verdict)
    return BaselineReport(scores, seconds, metric.name, verdict, gap, best, errors)


def compare(
    network: dict[str, float],
    baselines: dict[str, dict[str, float]],
    metric: str,
    greater_is_better: bool,
    evidence: PairedGain | None = None,
    leads: str | None = None,
    task: str = "binary",
) -> tuple[float | None, str | None, str]:
    """The gap to the best baseline on `metric` (positive: the network is better), which baseline, and one line.
    With `evidence` (the paired interval of network - best baseline), "level" means the interval holds zero and
    "beats"/"trails" that it does not; `leads` is a clause for a baseline ahead on another metric."""
    scored = {name: scores[metric] for name, scores in baselines.items() if metric in scores}
    if metric not in network or not scored:
        return None, None, f"no baseline could be scored on {metric.replace('_', ' ')}"
    sign = 1.0 if greater_is_better else -1.0
    best = max(scored, key=lambda name: sign * scored[name])
    gap = sign * (network[metric] - scored[best])
    shown = metric_label(metric, task)
    rival = NAMES.get(best, best)
    relative = (
        f" ({abs(gap) / abs(scored[best]):.1%} of its {shown})" if metric in ("rmse", "mae") and scored[best] else ""
    )
    values = f"{shown} {network[metric]:.3f} vs {scored[best]:.3f}"
    if evidence is not None:
        interval = f"95% paired interval [{evidence.low:+.3f}, {evidence.high:+.3f}] on {evidence.rows} test rows"
        level = evidence.low <= 0 <= evidence.high or not np.isfinite([evidence.low, evidence.high]).all()
        ahead = evidence.low > 0
    else:
        interval, level, ahead = "", abs(gap) < LEVEL, gap > 0
    detail = f"; {interval}" if interval else ""
    if level:
        line = f"the network is level with {rival} ({values}{detail})"
        return gap, best, line + (f", but {leads}" if leads else "")
    if ahead:
        return (
            gap,
            best,
            f"the network beats the best baseline, {rival}, by {abs(gap):.3f} {shown}{relative} ({values}{detail})",
        )
    return (
        gap,
        best,
        f"the network trails {rival} by {abs(gap):.3f} {shown}{relative} ({values}{detail}); a simpler model may serve "
        "as well",
    )


def per_row(task: str, truth: np.ndarray, prediction: Prediction, classes: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The secondary metrics as one value per test row, whose mean is the metric (so they resample cheaply)."""
    if task == "regression":
        return {"mae": np.abs(np.asarray(prediction.labels, dtype="float64") - truth.astype("float64"))}
    probabilities = np.clip(np.asarray(prediction.probabilities, dtype="float64"), 1e-15, 1.0)
    index = {label: position for position, label in enumerate(classes)}
    rows = np.arange(len(truth))
    columns = np.array([index.get(label, -1) for label in truth])
    known = columns >= 0
    losses = np.full(len(truth), np.nan)
    losses[known] = -np.log(probabilities[rows[known], columns[known]] / probabilities[known].sum(axis=1))
    return {"accuracy": (np.asarray(prediction.labels, dtype=object) == truth).astype("float64"), "log_loss": losses}


def secondary_lead(
    schema: DataSchema,
    split: Split,
    network_prediction: Prediction,
    predictions: dict[str, Prediction],
    scores: dict[str, dict[str, float]],
    network_scores: dict[str, float],
    rounds: int,
    seed: int,
) -> str | None:
    """A clause naming the first baseline that leads the network on a secondary metric beyond its 95% paired
    interval (the interval of the per-row difference's mean over resamples of the test rows), or None."""
    from ...models.schema import category_label

    kind = "regression" if schema.task == "regression" else "classification"
    classes = tuple(schema.classes or ())
    target = split.test_target
    truth = target.to_numpy() if kind == "regression" else target.map(category_label).to_numpy(dtype=object)
    mine = per_row(schema.task, truth, network_prediction, classes)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(truth), (rounds, len(truth)))
    for name, prediction in predictions.items():
        theirs = per_row(schema.task, truth, prediction, classes)
        for metric, sign in SECONDARY[kind].items():
            difference = sign * (theirs[metric] - mine[metric])  # positive: the baseline is better
            if not np.isfinite(difference).all():
                continue
            low = float(np.quantile(difference[picks].mean(axis=1), 1 - VERDICT_CONFIDENCE))
            if low > 0:
                shown = metric_label(metric, schema.task)
                values = (
                    f"{scores[name].get(metric, float('nan')):.3f} vs {network_scores.get(metric, float('nan')):.3f}"
                )
                return f"{NAMES.get(name, name)} leads on {shown} ({values}, beyond its 95% paired interval)"
    return None

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
from ..steps.evaluation import evaluate_predictions, primary_metric

log = logging.getLogger(__name__)

# Within this much of the best baseline on the primary metric, the network is "level with" it.
LEVEL = 0.005
DISPLAY = {"roc_auc": "ROC AUC", "f1": "F1", "rmse": "RMSE", "mae": "MAE", "accuracy": "accuracy"}
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


def fit_baselines(schema: DataSchema, split: Split, seed: int, network_scores: dict[str, float]) -> BaselineReport:
    """Fit each baseline on the training rows (through the network's own preprocessing, fitted the same way) and
    score it on the test rows with the network's metrics."""
    started = time.perf_counter()
    preprocessing = fit_preprocessing(schema, split.train_features, split.train_target)
    train_x = preprocessing.transform(split.train_features)
    test_x = preprocessing.transform(split.test_features)
    train_y = preprocessing.encode_target(split.train_target)
    classes = np.asarray(schema.classes or (), dtype=object)
    scores: dict[str, dict[str, float]] = {}
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
    seconds = time.perf_counter() - started
    metric = primary_metric(schema.task)
    gap, best, verdict = compare(network_scores, scores, metric.name, metric.greater_is_better)
    log.info("baselines in %.2f s: %s", seconds, verdict)
    return BaselineReport(scores, seconds, metric.name, verdict, gap, best, errors)


def compare(
    network: dict[str, float], baselines: dict[str, dict[str, float]], metric: str, greater_is_better: bool
) -> tuple[float | None, str | None, str]:
    """The gap to the best baseline on `metric` (positive: the network is better), which baseline, and one line."""
    scored = {name: scores[metric] for name, scores in baselines.items() if metric in scores}
    if metric not in network or not scored:
        return None, None, f"no baseline could be scored on {metric.replace('_', ' ')}"
    sign = 1.0 if greater_is_better else -1.0
    best = max(scored, key=lambda name: sign * scored[name])
    gap = sign * (network[metric] - scored[best])
    shown = DISPLAY.get(metric, metric.replace("_", " "))
    rival = NAMES.get(best, best)
    if abs(gap) < LEVEL:
        return gap, best, f"the network is level with {rival} ({shown} {network[metric]:.3f} vs {scored[best]:.3f})"
    if gap > 0:
        return gap, best, f"the network beats the best baseline, {rival}, by {abs(gap):.3f} {shown}"
    return (
        gap,
        best,
        (
            f"the network trails {rival} by {abs(gap):.3f} {shown} ({network[metric]:.3f} vs {scored[best]:.3f}); "
            "a simpler model may serve as well"
        ),
    )

"""Probabilities you can act on: the temperature that calibrates a network's logits on validation rows, the binary
threshold that maximises F1 there, and the measures of calibration (log loss, expected calibration error). NumPy only.
"""

import numpy as np

from .forward import OutputHead

TEMPERATURES = np.geomspace(0.05, 20.0, 121)
ECE_BINS = 15


def probabilities(logits: np.ndarray, activation: str, temperature: float = 1.0) -> np.ndarray:
    """Class probabilities (rows, classes) from logits ((members, rows, units) or (rows, units)) at a temperature:
    the model's own output head, with the binary positive column completed by its complement."""
    answers = OutputHead(activation, temperature)(np.asarray(logits, dtype="float64"))
    if activation == "sigmoid":
        answers = np.column_stack([1.0 - answers[:, 0], answers[:, 0]])
    return answers


def log_loss(chances: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log probability of the true class (labels are class indices)."""
    picked = np.clip(chances[np.arange(len(labels)), labels], 1e-12, 1.0)
    return float(-np.mean(np.log(picked)))


def expected_calibration_error(chances: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    """How far the top-class confidence is from the accuracy, averaged over equal-width confidence bins."""
    confidence = chances.max(axis=1)
    correct = chances.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    error = 0.0
    for index in range(bins):
        inside = which == index
        if inside.any():
            error += inside.mean() * abs(confidence[inside].mean() - correct[inside].mean())
    return float(error)


def fit_temperature(logits: np.ndarray, labels: np.ndarray, activation: str) -> float:
    """The temperature (0.05 to 20) with the lowest validation log loss: a grid, then a golden-section search."""
    losses = [log_loss(probabilities(logits, activation, t), labels) for t in TEMPERATURES]
    best = int(np.argmin(losses))
    low, high = TEMPERATURES[max(best - 1, 0)], TEMPERATURES[min(best + 1, len(TEMPERATURES) - 1)]
    ratio = (np.sqrt(5) - 1) / 2
    for _ in range(30):
        left, right = high - ratio * (high - low), low + ratio * (high - low)
        if log_loss(probabilities(logits, activation, left), labels) < log_loss(
            probabilities(logits, activation, right), labels
        ):
            high = right
        else:
            low = left
    return float((low + high) / 2)


def best_threshold(positive: np.ndarray, labels: np.ndarray) -> float:
    """The probability cut-off for the positive class that gives the best F1 on these rows (ties: the lowest)."""
    candidates = np.unique(np.quantile(positive, np.linspace(0.0, 1.0, 201)))
    truth = labels == 1
    scores = []
    for threshold in candidates:
        chosen = positive >= threshold
        hits = np.sum(chosen & truth)
        scores.append(2 * hits / max(chosen.sum() + truth.sum(), 1))
    return float(candidates[int(np.argmax(scores))])

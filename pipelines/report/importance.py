"""Permutation importance: how much the primary metric on the test rows falls when one feature's values are shuffled
(its link to the target broken, its distribution kept). Works on raw columns, so a date or a one-hot category counts
as one feature, as the user knows it."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ...models.inference import Predictor
from ...models.schema import category_label
from ..steps.evaluation import primary_metric
from .advice import primary_score

MAX_PLOTTED = 20


def input_columns(predictor: Predictor) -> dict[str, list[int]]:
    """Which columns of the network's input each raw feature fills (a number one, a date several, a category its
    one-hot block): shuffling those rows together is shuffling the feature."""
    encoder = predictor.encoder
    columns: dict[str, list[int]] = {}
    for column in predictor.schema.features:
        if column.kind in ("numeric", "datetime"):
            names = set(column.inputs)
            columns[column.name] = [index for index, name in enumerate(encoder.numeric) if name in names]
        elif column.name in encoder.categorical:
            positions = encoder.positions[encoder.categorical.index(column.name)]
            bucket = encoder.unknown[encoder.categorical.index(column.name)] if encoder.unknown else None
            columns[column.name] = sorted({*positions.values(), *([bucket] if bucket is not None else [])})
    return columns


def permutation_importance(
    predictor: Predictor, features: pd.DataFrame, target: pd.Series, repeats: int = 5, seed: int = 0
) -> pd.DataFrame:
    """One row per feature, most important first: the mean and spread of the primary metric's fall over `repeats`
    shuffles of its rows (positive: the model relies on it; about zero: it does not)."""
    schema = predictor.schema
    classes = tuple(schema.classes or ())
    truth = target.to_numpy() if schema.task == "regression" else target.map(category_label).to_numpy(dtype=object)
    sign = 1.0 if primary_metric(schema.task).greater_is_better else -1.0
    matrix = predictor.encode(features)

    def score(inputs: np.ndarray) -> float:
        return primary_score(schema.task, truth, predictor.decode(predictor.raw_outputs(inputs)), classes)

    base = score(matrix)
    rng = np.random.default_rng(seed)
    rows = []
    for name, columns in input_columns(predictor).items():
        falls = []
        for _ in range(repeats):
            shuffled = matrix.copy()
            shuffled[:, columns] = matrix[rng.permutation(len(matrix))][:, columns]
            falls.append(sign * (base - score(shuffled)))
        rows.append({"feature": name, "importance": float(np.nanmean(falls)), "std": float(np.nanstd(falls))})
    frame = pd.DataFrame(rows, columns=["feature", "importance", "std"])
    return frame.sort_values("importance", ascending=False, kind="stable").reset_index(drop=True)


def plot_importance(importance: pd.DataFrame, metric: str, path: Path) -> Path:
    """A horizontal bar per feature (the top 20), with the spread over shuffles as error bars."""
    shown = importance.head(MAX_PLOTTED).iloc[::-1]
    figure, axis = plt.subplots(figsize=(6.4, 0.32 * len(shown) + 1.4))
    axis.barh(shown["feature"].astype(str), shown["importance"], xerr=shown["std"], color="#4c72b0", alpha=0.85)
    axis.axvline(0, color="grey", linewidth=1)
    axis.set_xlabel(f"fall in test {metric.replace('_', ' ')} when shuffled")
    more = f" (top {MAX_PLOTTED} of {len(importance)})" if len(importance) > MAX_PLOTTED else ""
    axis.set_title(f"permutation importance{more}")
    axis.grid(axis="x", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path

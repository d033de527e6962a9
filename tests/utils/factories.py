"""Small generated data sets for tests: a few hundred rows, known structure."""

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.datasets import make_classification, make_regression

from neuroflow.core.spec import NetworkSpec, Task

TINY_NETWORK = NetworkSpec(hidden_units=(8,), epochs=2, batch_size=32, patience=2)


@dataclass(frozen=True)
class Tiny:
    """A tiny trained model and what it was trained from: the schema, the 60/20/20 split and the predictor."""

    schema: Any
    split: Any
    predictor: Any


def train_tiny(
    frame: pd.DataFrame, target: str, task: Task, network: NetworkSpec = TINY_NETWORK, seed: int = 0
) -> Tiny:
    """Learn the schema, split (seed 0) and train `network` with `seed`: the one tiny trained model unit tests build."""
    from neuroflow.models.schema import infer_schema
    from neuroflow.pipelines.steps.data import Dataset, split_data
    from neuroflow.pipelines.steps.training import train_model

    schema = infer_schema(frame, target, task)
    split = split_data(Dataset("tiny", "test", frame, target, task), 0.2, 0.2, seed=0)
    return Tiny(schema, split, train_model(schema, split, network, seed=seed).predictor)


def classification_frame(rows: int = 200, features: int = 5, classes: int = 2, seed: int = 0) -> pd.DataFrame:
    """Numeric features `f0..fN` and an integer `target` with `classes` classes."""
    x, y = make_classification(
        n_samples=rows,
        n_features=features,
        n_informative=min(features, 3),
        n_redundant=0,
        n_classes=classes,
        n_clusters_per_class=1,
        random_state=seed,
    )
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(features)])
    frame["target"] = y
    return frame


def regression_frame(rows: int = 200, features: int = 4, seed: int = 0) -> pd.DataFrame:
    x, y = make_regression(n_samples=rows, n_features=features, noise=5.0, random_state=seed)
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(features)])
    frame["target"] = y * 3 + 100
    return frame


def mixed_frame(rows: int = 300, seed: int = 0) -> pd.DataFrame:
    """Numbers, text categories, booleans, missing values everywhere but the target, and a learnable label."""
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 80, rows).astype(float)
    income = rng.normal(50_000, 15_000, rows)
    city = rng.choice(["paris", "lyon", "nice"], rows)
    member = rng.choice([True, False], rows)
    score = (age - 50) / 20 + (income - 50_000) / 15_000 + (city == "paris") * 1.5 + member * 0.5
    label = np.where(score + rng.normal(0, 0.5, rows) > 0.5, "yes", "no")
    frame = pd.DataFrame({"age": age, "income": income, "city": city, "member": member, "label": label})
    frame["city"] = frame["city"].astype(object)
    frame["member"] = frame["member"].astype(object)
    for column in ("age", "income", "city", "member"):
        frame.loc[rng.choice(rows, rows // 20, replace=False), column] = None
    return frame


def messy_frame(rows: int = 730, seed: int = 0, positives: float = 0.5) -> pd.DataFrame:
    """A table as it comes: a daily ISO `date` (one per row, the label follows the season), a 300-value text column,
    a constant pixel, an all-missing column, and headers padded with spaces (` temp`, ` shop`, ` label `).
    `positives` is the share of the rarer class."""
    rng = np.random.default_rng(seed)
    days = pd.date_range("2021-01-01", periods=rows, freq="D")
    summer = np.cos(2 * np.pi * (days.day_of_year.to_numpy() - 200) / 365.25)
    temperature = 15 + 10 * summer + rng.normal(0, 3, rows)
    shop = rng.choice([f"shop-{i:03d}" for i in range(300)], rows)
    score = summer + rng.normal(0, 0.3, rows)
    label = np.where(score > np.quantile(score, 1 - positives), "sunny", "rainy")
    return pd.DataFrame(
        {
            "date": days.strftime("%Y-%m-%d"),
            " temp": temperature,
            " shop": shop,
            "pixel": 0.0,
            "nothing": np.nan,
            " label ": label,
        }
    )

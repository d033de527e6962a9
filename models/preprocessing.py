"""The preprocessing that travels with the model: raw feature values in, the network's input matrix out."""

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from ..core.spec import Scaling
from .schema import MISSING_CATEGORY, DataSchema, category_label, coerce_features

# Categories seen fewer times than this in training share one "unknown" column with values never seen at all, so the
# network learns what to do with a rare or new value instead of meeting an input it never trained on.
MIN_CATEGORY_COUNT = 5


class RobustScale(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """(x - median) / (75th - 25th percentile), or half the range where the quartiles meet (RealMLP's robust
    scaling); the network's input layer then clips smoothly."""

    def fit(self, values: np.ndarray, target: object = None) -> "RobustScale":
        values = np.asarray(values, dtype="float64")
        low, self.center_, high = np.nanpercentile(values, [25, 50, 75], axis=0)
        spread = high - low
        half_range = (np.nanmax(values, axis=0) - np.nanmin(values, axis=0)) / 2
        scale = np.where(spread > 0, spread, half_range)
        self.scale_ = np.where(scale > 0, scale, 1.0)
        self.n_features_in_ = values.shape[1]
        return self

    def transform(self, values: np.ndarray) -> np.ndarray:
        return (np.asarray(values, dtype="float64") - self.center_) / self.scale_


@dataclass
class Preprocessing:
    """Fitted feature transform plus the target encoding (class order, or regression mean and scale)."""

    schema: DataSchema
    features: ColumnTransformer
    target_mean: float = 0.0
    target_scale: float = 1.0

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """Raw rows to a float32 matrix, exactly as in training."""
        matrix = self.features.transform(coerce_features(frame, self.schema))
        return np.asarray(matrix, dtype=np.float32)

    def encode_target(self, target: pd.Series) -> np.ndarray:
        """Class labels to indices, or regression values to standardised floats."""
        if self.schema.task == "regression":
            return ((target.to_numpy(dtype="float64") - self.target_mean) / self.target_scale).astype(np.float32)
        classes = list(self.schema.classes or ())
        labels = target.map(category_label)
        unknown = sorted(set(labels) - set(classes))
        if unknown:
            raise ValueError(f"target has classes never seen in training: {unknown[:5]}")
        return labels.map({label: index for index, label in enumerate(classes)}).to_numpy(dtype="int64")

    def decode_regression(self, values: np.ndarray) -> np.ndarray:
        return values * self.target_scale + self.target_mean

    @property
    def n_inputs(self) -> int:
        """Width of the network's input: numeric columns plus one-hot columns."""
        return len(self.features.get_feature_names_out())


def build_feature_transform(schema: DataSchema, scaling: Scaling = "standard") -> ColumnTransformer:
    """Median-impute and standardise numbers (a date's derived numbers too); impute and one-hot encode categories,
    rare and unseen ones together."""
    numeric, categorical = schema.numeric_inputs, schema.categorical_inputs
    transformers = []
    if numeric:
        transformers.append(
            (
                "numeric",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="median")),
                        ("scale", RobustScale() if scaling == "robust" else StandardScaler()),
                    ]
                ),
                numeric,
            )
        )
    if categorical:
        encode = Pipeline(
            [
                ("impute", SimpleImputer(strategy="constant", fill_value=MISSING_CATEGORY)),
                (
                    "one_hot",
                    OneHotEncoder(
                        handle_unknown="infrequent_if_exist",
                        min_frequency=MIN_CATEGORY_COUNT,
                        sparse_output=False,
                    ),
                ),
            ]
        )
        transformers.append(("categorical", encode, categorical))
    return ColumnTransformer(transformers, remainder="drop", verbose_feature_names_out=True)


def fit_preprocessing(
    schema: DataSchema, features: pd.DataFrame, target: pd.Series, scaling: Scaling = "standard"
) -> Preprocessing:
    """Fit the feature transform and target scaling on training rows only."""
    transform = build_feature_transform(schema, scaling)
    transform.fit(coerce_features(features, schema))
    if schema.task == "regression":
        values = target.to_numpy(dtype="float64")
        scale = float(values.std()) or 1.0
        return Preprocessing(schema, transform, float(values.mean()), scale)
    return Preprocessing(schema, transform)
